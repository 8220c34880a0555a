import io
import zipfile

import pytest

from chalicelib.errors import InvalidQgisProjectFile, ValidationError
from chalicelib.models import Project
from chalicelib.rules import file_rules


@pytest.mark.parametrize("name", [
    "a.txt", "DCIM/photo é 1.jpg", "data/sub/points.csv", "x" * 255, "CONSOLE.txt", "a..b", "aux.txt",
])
def test_valid_names(name):
    assert file_rules.validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", " a", "a ", "../etc/passwd", "a/../b", "/abs", "a//b", "a\\b", "nul\x00byte", "a/.",
    "x" * 256, "CON", "aux", "what?", "tab\there", "ends.",
])
def test_invalid_names(name):
    with pytest.raises(ValidationError):
        file_rules.validate_name(name)


def test_attachment_and_restricted_classification():
    project = Project("p", name="p", owner="a", owner_key="a", has_restricted_projectfiles=True,
                      the_qgis_file_name="maps/survey.qgs")
    assert file_rules.is_attachment(project, "DCIM/1.jpg")
    assert file_rules.is_attachment(project, "DCIMx.txt")
    assert not file_rules.is_attachment(project, "data/DCIM.txt")
    for name in ("other.qgz", "maps/survey.qgd", "maps/survey_attachments.zip", "maps/survey.qml"):
        assert file_rules.is_restricted(project, name), name
    assert not file_rules.is_restricted(project, "maps/other.qml")
    project.has_restricted_projectfiles = False
    assert not file_rules.is_restricted(project, "other.qgz")


def _qgz(content: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("project.qgs", content)
    buffer.seek(0)
    return buffer


def test_qgis_project_check():
    good = b'<!DOCTYPE qgis><qgis version="3.22.16" projectname="x"><title/></qgis>'
    file_rules.check_qgis_project("p.qgs", io.BytesIO(good))
    file_rules.check_qgis_project("p.qgz", _qgz(good))
    for name, stream in (("p.qgs", io.BytesIO(b"Hello!")), ("p.qgz", io.BytesIO(good)),
                         ("p.qgs", io.BytesIO(b"<other/>")), ("p.qgz", _qgz(b"nope"))):
        with pytest.raises(InvalidQgisProjectFile):
            file_rules.check_qgis_project(name, stream)
