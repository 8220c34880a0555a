"""The JSON shapes of the API's resources, field for field as the clients read them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .accounts import Subscription
from .auth import Session
from .health import Health
from .jobs import JobReport
from .models import Collaborator, Delta, FileVersion, Job, Membership, ProjectFile, User
from .models.deltas import DeltaStatus
from .models.files import ListedFile, ListedVersion
from .models.projects import ProjectType
from .organizations import OrganizationView
from .packages import Package
from .permissions import membership_origin, membership_role_label
from .projects import ProjectView
from .teams import TeamView
from .uploads import UploadState
from .users import AccountView


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def login_json(session: Session) -> dict[str, Any]:
    # `type` is a string here only, as in QFieldCloud's login response.
    return {
        **user_json(session.user),
        "token": session.token_key,
        "expires_at": timestamp(session.expires_at),
        "type": str(session.user.account_type),
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


def public_user_json(user: User) -> dict[str, Any]:
    """What anyone may see of an account (QFieldCloud's PublicInfoUserSerializer)."""
    return {
        "username": user.username,
        "type": user.account_type,
        "full_name": user.full_name,
        "avatar_url": None,
        "username_display": user.username.rsplit("/", 1)[-1] if user.is_team else user.username,
    }


def organization_json(view: OrganizationView) -> dict[str, Any]:
    organization, membership = view.organization, view.caller_membership
    return {
        "username": organization.username,
        "type": organization.account_type,
        "email": organization.email,
        "avatar_url": None,
        "members": view.public_members,
        "organization_owner": organization.organization_owner,
        "membership_role": membership_role_label(membership.role) if membership else None,
        "membership_role_origin": membership_origin(membership.role) if membership else None,
        "membership_is_public": membership.is_public if membership else None,
        "teams": view.teams,
        "default_project_role_for_members": organization.default_project_role_for_members,
    }


def account_json(view: AccountView) -> dict[str, Any]:
    if view.organization is not None:
        return organization_json(view.organization)
    return user_json(view.account) if view.complete else public_user_json(view.account)


def member_json(membership: Membership) -> dict[str, Any]:
    return {
        "organization": membership.organization,
        "member": membership.member,
        "role": membership.role,
        "is_public": membership.is_public,
    }


def team_json(view: TeamView) -> dict[str, Any]:
    return {
        "team": view.team.name,
        "organization": view.organization.username,
        "members": view.team.member_names,
    }


def team_member_json(username: str) -> dict[str, Any]:
    return {"member": username}


def project_json(view: ProjectView) -> dict[str, Any]:
    project, role = view.project, view.role
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
        "can_repackage": project.project_type != ProjectType.TEMPLATE,
        "needs_repackaging": view.needs_repackaging,
        "status": view.status,
        "status_code": view.status_code,
        "shared_datasets_project_id": view.shared_datasets_project_id,
        "is_shared_datasets_project": project.project_type == ProjectType.SHARED_DATASETS,
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


def version_display(version: FileVersion | ListedVersion) -> str:
    return "v" + version.uploaded_at.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def file_version_json(version: FileVersion | ListedVersion, is_latest: bool) -> dict[str, Any]:
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


def file_json(item: ProjectFile | ListedFile) -> dict[str, Any]:
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


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    user, total_bytes = subscription.account, subscription.storage_total_bytes
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
        "max_premium_collaborators_per_private_project":
            subscription.max_premium_collaborators_per_private_project,
        "max_organization_members": subscription.max_organization_members,
    }


def auth_providers_json() -> list[dict[str, Any]]:
    """How one logs in here: username and password only (QField's login screen reads this)."""
    return [{"type": "credentials", "id": "credentials", "name": "Username / Password"}]


def status_json(health: Health) -> dict[str, Any]:
    return {
        "database": "ok" if health.database_ok else "error",
        "storage": "ok" if health.storage_ok else "error",
        "status_page_url": None,
        "incident_message": None,
        "incident_timestamp_utc": None,
        "maintenance_message": None,
        "maintenance_start_timestamp_utc": None,
        "maintenance_end_timestamp_utc": None,
    }


def server_info_json() -> dict[str, Any]:
    return {
        "whitelabel": {"site_title": "QFieldCloud (serverless)", "logo_navbar": None,
                       "logo_main": None, "favicon": None},
        "auth_providers": auth_providers_json(),
        "signup_url": None,
    }


def upload_state_json(state: UploadState) -> dict[str, Any]:
    session = state.session
    return {
        "upload_id": session.upload_id,
        "project_id": session.project_id,
        "name": session.name,
        "size": int(session.size),
        "part_size": int(session.part_size),
        "state": session.state,
        "expires_at": timestamp(session.expires_at),
        "uploaded_parts": [
            {"part_number": part.number, "size": part.size, "etag": part.etag} for part in state.uploaded
        ],
        "parts": [{"part_number": part.number, "size": part.size, "url": part.url} for part in state.missing],
    }


def file_metadata_json(item: ProjectFile, content_type: str) -> dict[str, Any]:
    return {**file_json(item), "content_type": content_type}


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "project_id": job.project_id,
        "created_by": job.created_by,
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "started_at": timestamp(job.started_at),
        "finished_at": timestamp(job.finished_at),
    }


def job_report_json(report: JobReport) -> dict[str, Any]:
    return {**job_json(report.job), "feedback": report.feedback, "output": report.output}


def _package_file_json(name: str, size: int, md5sum: str, sha256: str, uploaded_at: datetime | None,
                       is_attachment: bool) -> dict[str, Any]:
    return {
        "name": name,
        "size": size,
        "md5sum": md5sum,
        "sha256": sha256,
        "uploaded_at": timestamp(uploaded_at),
        "last_modified": timestamp(uploaded_at),
        "is_attachment": is_attachment,
    }


def package_json(package: Package) -> dict[str, Any]:
    job = package.job
    files = [_package_file_json(f.name, int(f.size), f.md5sum, f.sha256, job.finished_at, False)
             for f in package.package_files]
    files += [_package_file_json(item.name, int(item.latest.size), item.latest.md5sum,
                                 item.latest.sha256, item.latest.uploaded_at, True)
              for item in package.attachments]
    return {
        "files": files,
        "layers": package.layers,
        "status": job.status,
        "package_id": job.id,
        "packaged_at": timestamp(package.packaged_at),
        "data_last_updated_at": timestamp(package.data_last_updated_at),
    }


def delta_json(delta: Delta) -> dict[str, Any]:
    status = DeltaStatus(delta.status)
    shown = "BUSY" if status == DeltaStatus.STARTED else status.name
    return {
        "id": delta.id,
        "deltafile_id": delta.deltafile_id,
        "created_by": delta.created_by,
        "created_at": timestamp(delta.created_at),
        "updated_at": timestamp(delta.updated_at),
        "status": f"STATUS_{shown}",
        # As QFieldCloud renders it: the feedback printed as a Python value.
        "output": str(delta.feedback) if delta.feedback is not None else None,
        "last_status": status.value,
        "last_feedback": delta.feedback,
        "last_modified_pk": delta.modified_pk,
        "content": delta.content,
    }
