"""Project thumbnails: a PNG or JPEG of at most 5 MiB and 10000 px a side, one per project."""

from __future__ import annotations

from typing import IO

from pynamodb.exceptions import UpdateError

from chalicelib.adapters import storage
from chalicelib.errors import ObjectNotFound, ValidationError
from chalicelib.models import Project
from chalicelib.models.projects import is_live

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 10000
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _content_type_of(stream: IO[bytes], size: int) -> str:
    from PIL import Image, UnidentifiedImageError  # here: few requests need it, every cold start would

    if size > MAX_BYTES:
        raise ValidationError("A thumbnail is at most 5 MiB.")
    try:
        with Image.open(stream) as image:
            kind, (width, height) = image.format, image.size
            image.verify()
    except Image.DecompressionBombError:  # a header claiming billions of pixels
        raise ValidationError(f"A thumbnail is at most {MAX_SIDE} pixels on each side.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError("A thumbnail must be a PNG or JPEG image.") from None
    finally:
        stream.seek(0)
    if kind not in CONTENT_TYPES:
        raise ValidationError("A thumbnail must be a PNG or JPEG image.")
    if max(width, height) > MAX_SIDE:
        raise ValidationError(f"A thumbnail is at most {MAX_SIDE} pixels on each side.")
    return CONTENT_TYPES[kind]


def store(project: Project, image: IO[bytes], size: int) -> None:
    content_type = _content_type_of(image, size)
    key = storage.thumbnail_key(project.id)
    version = storage.put_object(key, image, content_type)
    previous = project.thumbnail_version
    try:
        project.update(actions=[
            Project.thumbnail_version.set(version),
            Project.thumbnail_content_type.set(content_type),
        ], condition=is_live())
    except UpdateError:
        storage.delete_version(key, version)
        raise ObjectNotFound(f"There is no project `{project.id}`.") from None
    if previous:
        storage.delete_version(key, previous)


def url(project: Project) -> str:
    if not project.thumbnail_version:
        raise ObjectNotFound("This project has no thumbnail.")
    return storage.presigned_get(
        storage.thumbnail_key(project.id),
        version_id=project.thumbnail_version,
        content_type=project.thumbnail_content_type,
    )
