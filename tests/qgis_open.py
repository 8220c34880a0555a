"""Opens a QGIS project with plain PyQGIS, independently of the job code, and prints one JSON
line describing its layers: `python tests/qgis_open.py PROJECT_FILE`. Tests run it in a fresh
process to check that a package opens as QField would open it."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(path: str) -> None:
    from qgis.core import QgsApplication, QgsProject, QgsVectorLayer

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    opened = project.read(path)
    layers = {}
    for layer_id, layer in project.mapLayers().items():
        vector = isinstance(layer, QgsVectorLayer)
        layers[layer_id] = {
            "name": layer.name(),
            "valid": layer.isValid(),
            "provider": layer.providerType(),
            "source": layer.source(),
            "features": layer.featureCount() if vector and layer.isValid() else None,
            "properties": {key: layer.customProperty(key) for key in layer.customPropertyKeys()},
        }
    print(json.dumps({"opened": opened, "layers": layers}), flush=True)
    os._exit(0)  # QGIS 3.22 may crash while tearing down; the answer is out


if __name__ == "__main__":
    main(sys.argv[1])
