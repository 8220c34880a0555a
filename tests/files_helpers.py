"""Helpers shared by the file tests: what is stored where, to prove nothing is left behind."""

from __future__ import annotations

from functools import cache

import requests

from tests.shared_data import testdata


@cache
def qgs() -> bytes:
    """A small, valid QGIS project (a memory layer: it needs no data files)."""
    return (testdata() / "app" / "self_contained.qgs").read_bytes()


def stored_state(project_id: str, owner: str = "alice") -> dict:
    """Every trace a project's files leave: S3 versions, file items, counters."""
    from chalicelib.adapters import aws, storage
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


def everything() -> dict:
    """Every item of every table (by key; login attempts left out, they count refusals too),
    the storage counters, and every S3 object version, delete marker and multipart upload:
    what a refused request must leave exactly as it was."""
    from chalicelib.adapters import aws
    from chalicelib.config import settings
    from chalicelib.models import ALL_MODELS, LoginAttempts, Project, User

    items = {}
    for model in ALL_MODELS:
        if model is LoginAttempts:
            continue
        keys = [name for name, attribute in model.get_attributes().items()
                if attribute.is_hash_key or attribute.is_range_key]
        items[model.Meta.table] = sorted(tuple(str(getattr(item, key)) for key in keys)
                                         for item in model.scan())
    s3 = aws.s3()
    versions = s3.list_object_versions(Bucket=settings.bucket)
    return {
        "items": items,
        "user_bytes": {u.username_key: int(u.storage_used_bytes) for u in User.scan()},
        "project_bytes": {p.id: int(p.file_storage_bytes) for p in Project.scan()},
        "s3": sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", [])
                     + versions.get("DeleteMarkers", [])),
        "multipart": len(s3.list_multipart_uploads(Bucket=settings.bucket).get("Uploads", [])),
    }


def follow(reply, **kwargs) -> requests.Response:
    """The download a 302 points to (S3's presigned URL)."""
    assert reply.status == 302, reply.content
    return requests.get(reply.headers["Location"], timeout=30, **kwargs)
