"""Targeted edits of a QGIS project file's XML, for the packaged project.

The packaged project is the uploaded file with a few changes (layers repointed to the packaged
data, removed layers gone with everything that refers to them, QField's custom properties), not a
project re-saved by QGIS. A QGIS save is never byte-identical twice (attributes come out in hash
order, fresh ids appear), and the worker's QGIS may be older than the one that saved the project
and would drop what it does not know. So what packaging does not change stays exactly as saved:
`theMapCanvas`, layouts, forms, styles.

Only files already accepted by `project_file.check_project_file` are parsed here; the parser is
set to neither resolve entities nor touch the network all the same.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)

# Everything in a project that refers to a layer by id (layouts resolve theirs and skip missing).
_LAYER_REFERENCES = (
    "projectlayers/maplayer[id=$id]",
    "layer-tree-group//layer-tree-layer[@id=$id]",
    "layer-tree-group/custom-order/item[.=$id]",
    "layerorder/layer[@id=$id]",
    "legend/legendlayer[.//legendlayerfile/@layerid=$id]",
    "snapping-settings/individual-layer-settings/layer-setting[@id=$id]",
    "visibility-presets/visibility-preset/*[@id=$id]",
    "relations/relation[@referencingLayer=$id or @referencedLayer=$id]",
)


class ProjectXml:
    def __init__(self, xml: bytes):
        self.root = etree.fromstring(xml, _PARSER)
        self._has_declaration = xml.lstrip().startswith(b"<?xml")

    def write(self, path: Path) -> None:
        xml = etree.tostring(self.root.getroottree(), encoding="UTF-8", xml_declaration=self._has_declaration)
        path.write_bytes(xml + b"\n")

    def remove_layer(self, layer_id: str) -> None:
        for path in _LAYER_REFERENCES:
            for element in self.root.xpath(path, id=layer_id):
                element.getparent().remove(element)

    def remove_empty_groups(self) -> None:
        """Drop legend groups left without any layer, innermost first."""
        for group in reversed(self.root.xpath("layer-tree-group//layer-tree-group")):
            if not group.xpath(".//layer-tree-layer"):
                group.getparent().remove(group)

    def set_datasource(self, layer_id: str, datasource: str, provider: str) -> None:
        layer = self._maplayer(layer_id)
        layer.find("datasource").text = datasource
        provider_element = layer.find("provider")
        provider_element.text = provider
        provider_element.set("encoding", "UTF-8")
        for node in self.root.xpath("layer-tree-group//layer-tree-layer[@id=$id]", id=layer_id):
            node.set("source", datasource)
            node.set("providerKey", provider)

    def point_nowhere(self, layer_id: str, provider: str) -> None:
        """Leave the layer in the project with a source QGIS cannot open (`provider` exists by
        no such name). A layer embedded from another project file becomes a layer of this one."""
        for layer in self.root.xpath("projectlayers/maplayer[id=$id or @id=$id]", id=layer_id):
            if layer.get("embedded") == "1":
                for attribute in ("embedded", "project"):
                    layer.attrib.pop(attribute, None)
                layer.set("type", layer.get("type") or "vector")
                etree.SubElement(layer, "id").text = layer_id
                names = self.root.xpath("layer-tree-group//layer-tree-layer[@id=$id]/@name", id=layer_id)
                etree.SubElement(layer, "layername").text = names[0] if names else layer_id
            for tag, text in (("datasource", ""), ("provider", provider)):
                element = self._child(layer, tag)
                element.text = text

    def unembed_groups(self) -> None:
        """Groups embedded from another project file stay as plain (empty) groups of this one."""
        for group in self.root.xpath("//layer-tree-group[@embedded]"):
            for attribute in ("embedded", "project"):
                group.attrib.pop(attribute, None)

    def set_read_only(self, layer_id: str) -> None:
        self._maplayer(layer_id).set("readOnly", "1")

    def set_layer_property(self, layer_id: str, key: str, value: str | bool) -> None:
        for holder in self._layer_and_styles(layer_id, "customproperties"):
            self._set_custom_property(holder, key, value)

    def _set_custom_property(self, holder: etree._Element, key: str, value: str | bool) -> None:
        """In whichever of QGIS's two formats `holder` uses: an `<Option type="Map">` (QGIS 3.20+)
        or the older `<property key value>` elements."""
        properties = self._child(holder, "customproperties")
        text = ("true" if value else "false") if isinstance(value, bool) else value
        if properties.find("property") is not None:
            self._replace(properties, "property[@key=$key]", key,
                          etree.Element("property", {"key": key, "value": text}))
            return
        options = self._child(properties, "Option")
        options.set("type", "Map")
        option_type = "bool" if isinstance(value, bool) else "QString"
        self._replace(options, "Option[@name=$key]", key,
                      etree.Element("Option", {"name": key, "type": option_type, "value": text}))

    def hide_field(self, layer_id: str, field_name: str) -> None:
        """Show a field nowhere in QField's forms (a feature id the original layer did not have)."""
        for holder in self._layer_and_styles(layer_id, "fieldConfiguration"):
            field = self._replace(self._child(holder, "fieldConfiguration"), "field[@name=$key]", field_name,
                                  etree.Element("field", {"name": field_name, "configurationFlags": "None"}))
            widget = etree.SubElement(field, "editWidget", type="Hidden")
            etree.SubElement(etree.SubElement(widget, "config"), "Option")

    def write_entry(self, scope: str, key: str, value: str) -> None:
        """Set a project entry (`QgsProject.writeEntry(scope, key, value)`) holding a string."""
        properties = self._child(self.root, "properties")
        entry = self._child(self._child(properties, scope), key)
        entry.attrib.clear()
        entry.set("type", "QString")
        entry.text = value

    def disable_provider_side_editing(self) -> None:
        """No default values evaluated by the data provider and no transaction groups: offline
        layers live in a local GeoPackage, not in the database that would provide them."""
        for tag in ("evaluateDefaultValues", "autotransaction"):
            for element in self.root.findall(tag):
                element.set("active", "0")
        for element in self.root.findall("transaction"):
            element.set("mode", "Disabled")
        for element in self.root.findall("projectFlags"):
            flags = [flag for flag in element.get("set", "").split(",")
                     if flag and flag != "EvaluateDefaultValuesOnProviderSide"]
            element.set("set", ",".join(flags))

    def _maplayer(self, layer_id: str) -> etree._Element:
        return self.root.xpath("projectlayers/maplayer[id=$id]", id=layer_id)[0]

    def _layer_and_styles(self, layer_id: str, part: str) -> list[etree._Element]:
        """A layer's element and its styles stored for map themes that hold `part`: QGIS puts a
        stored style back, custom properties and form settings included, when its theme is
        applied, so what packaging sets on a layer must be set there too."""
        layer = self._maplayer(layer_id)
        return [layer, *layer.xpath(f"map-layer-style-manager/map-layer-style/qgis[{part}]")]

    @staticmethod
    def _child(parent: etree._Element, tag: str) -> etree._Element:
        child = parent.find(tag)
        return child if child is not None else etree.SubElement(parent, tag)

    @staticmethod
    def _replace(parent: etree._Element, path: str, key: str, element: etree._Element) -> etree._Element:
        """`element` in place of what `path` (with `$key`) finds under `parent`, else appended."""
        existing = parent.xpath(path, key=key)
        if existing:
            existing[0].addnext(element)
            for old in existing:
                parent.remove(old)
        else:
            parent.append(element)
        return element
