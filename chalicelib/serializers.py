"""The JSON shapes of the API's resources, field for field as the clients read them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .models import Collaborator, FileVersion, Project, ProjectFile, User
from .permissions import ProjectRole


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def login_json(user: User, token_key: str, expires_at: datetime) -> dict[str, Any]:
    # `type` is a string here only, as in QFieldCloud's login response.
    return {
        **user_json(user),
        "token": token_key,
        "expires_at": timestamp(expires_at),
        "type": str(user.account_type),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "type": user.account_type,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name,
        "avatar_url": None,
    }


def project_json(
    project: Project,
    role: ProjectRole | None,
    *,
    status: str,
    needs_repackaging: bool,
    shared_datasets_project_id: str | None,
) -> dict[str, Any]:
    body = {
        "id": project.id,
        "name": project.name,
        "owner": project.owner,
        "description": project.description or "",
        "project_type": project.project_type,
        "is_public": project.is_public,
        "private": not project.is_public,
        "public_collaborator_role": project.public_collaborator_role,
        "created_at": timestamp(project.created_at),
        "updated_at": timestamp(project.updated_at),
        "data_last_packaged_at": timestamp(project.data_last_packaged_at),
        "data_last_updated_at": timestamp(project.data_last_updated_at),
        "restricted_data_last_updated_at": timestamp(project.restricted_data_last_updated_at),
        "can_repackage": project.project_type != "template",
        "needs_repackaging": needs_repackaging,
        "status": status,
        "shared_datasets_project_id": shared_datasets_project_id,
        "is_shared_datasets_project": project.project_type == "shared_datasets",
        "is_featured": project.is_featured,
        "is_attachment_download_on_demand": project.is_attachment_download_on_demand,
        "has_restricted_projectfiles": project.has_restricted_projectfiles,
        "overwrite_conflicts": project.overwrite_conflicts,
        "file_storage_bytes": int(project.file_storage_bytes or 0),
        "the_qgis_file_name": project.the_qgis_file_name,
    }
    if role is not None:
        body["user_role"] = role.role.label
        body["user_role_origin"] = role.origin.value
    return body


def collaborator_json(collaborator: Collaborator) -> dict[str, Any]:
    return {
        "project_id": collaborator.project_id,
        "collaborator": collaborator.collaborator,
        "role": collaborator.role,
        "created_by": collaborator.created_by,
        "updated_by": collaborator.updated_by,
        "created_at": timestamp(collaborator.created_at),
        "updated_at": timestamp(collaborator.updated_at),
    }


def version_display(version: FileVersion) -> str:
    return "v" + version.uploaded_at.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def file_version_json(version: FileVersion, is_latest: bool) -> dict[str, Any]:
    return {
        "version_id": version.version_id,
        "size": int(version.size),
        "md5sum": version.md5sum,
        "sha256": version.sha256,
        "last_modified": timestamp(version.uploaded_at),
        "uploaded_at": timestamp(version.uploaded_at),
        "is_latest": is_latest,
        "display": version_display(version),
    }


def file_json(item: ProjectFile) -> dict[str, Any]:
    latest = item.latest
    return {
        "name": item.name,
        "size": int(latest.size),
        "md5sum": latest.md5sum,
        "sha256": latest.sha256,
        "last_modified": timestamp(latest.uploaded_at),
        "uploaded_at": timestamp(item.uploaded_at),
        "is_attachment": item.is_attachment,
        "versions": [
            file_version_json(version, is_latest=version is latest)
            for version in reversed(item.versions)
        ],
    }


def uploaded_json(name: str, version: FileVersion) -> dict[str, Any]:
    return {
        "name": name,
        "version_id": version.version_id,
        "size": int(version.size),
        "md5sum": version.md5sum,
        "sha256": version.sha256,
        "uploaded_at": timestamp(version.uploaded_at),
    }


def subscription_json(user: User, total_bytes: int) -> dict[str, Any]:
    """The account's plan: one plan for everyone here, with the account's storage quota."""
    return {
        "plan_display_name": "Self-hosted",
        "plan_code": "self_hosted",
        "plan_is_premium": True,
        "status": "active_paid",
        "active_since": timestamp(user.date_joined),
        "active_until": None,
        "storage_used_bytes": int(user.storage_used_bytes or 0),
        "active_storage_total_bytes": total_bytes,
        "plan_storage_threshold_warning_bytes": total_bytes * 9 // 10,
        "plan_storage_threshold_critical_bytes": total_bytes * 97 // 100,
    }
