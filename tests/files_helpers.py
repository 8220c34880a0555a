"""Helpers shared by the file tests: what is stored where, to prove nothing is left behind."""

from __future__ import annotations

from functools import cache

from tests.shared_data import testdata


@cache
def qgs() -> bytes:
    """A small, valid QGIS project (a memory layer: it needs no data files)."""
    return (testdata() / "app" / "self_contained.qgs").read_bytes()


def stored_state(project_id: str, owner: str = "alice") -> dict:
    """Every trace a project's files leave: S3 versions, file items, counters."""
    from chalicelib import aws, storage
    from chalicelib.config import settings
    from chalicelib.models import Project, ProjectFile, UploadSession, User

    listing = aws.s3().list_object_versions(
        Bucket=settings.bucket, Prefix=storage.project_prefix(project_id) + "files/")
    return {
        "s3": sorted((v["Key"], v["VersionId"]) for v in listing.get("Versions", [])),
        "items": sorted((f.name, len(f.versions)) for f in ProjectFile.query(project_id)),
        "project_bytes": int(Project.get(project_id).file_storage_bytes),
        "owner_bytes": int(User.get(owner).storage_used_bytes),
        "uploads": UploadSession.by_project.count(project_id),
        "qgis": Project.get(project_id).the_qgis_file_name,
    }


def upload(client, project_id: str, name: str, content: bytes, **kwargs):
    from urllib.parse import quote

    return client.post(f"files/{project_id}/{quote(name)}/", files={"file": ("ignored", content)},
                       **kwargs)
