"""The JSON shapes of the API's resources, field for field as the clients read them.

Each function fills one model of `outputs` (the shape's one home, from which the
OpenAPI document is derived) and returns its JSON-ready dump.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.http import outputs as out
from chalicelib.http.pagination import JsonItems
from chalicelib.models import AuthToken, Collaborator, Delta, FileVersion, Job, Membership, ProjectFile, User
from chalicelib.models.deltas import DeltaStatus
from chalicelib.models.files import ListedFile
from chalicelib.models.projects import ProjectType
from chalicelib.models.shapes import compact_json, file_versions, utc_timestamp
from chalicelib.rules.permissions import membership_origin, membership_role_label
from chalicelib.services.accounts import Subscription
from chalicelib.services.auth import Session
from chalicelib.services.health import Health
from chalicelib.services.jobs import JobReport
from chalicelib.services.organizations import OrganizationView
from chalicelib.services.packages import Package
from chalicelib.services.projects import ProjectView
from chalicelib.services.teams import TeamView
from chalicelib.services.uploads import UploadState
from chalicelib.services.users import AccountView


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else utc_timestamp(value)


def login_json(session: Session) -> dict[str, Any]:
    user = session.user
    return out.LoginOut(
        username=user.username, type=str(user.account_type), email=user.email,
        first_name=user.first_name, last_name=user.last_name, full_name=user.full_name,
        avatar_url=None, token=session.token_key, expires_at=session.expires_at,
    ).dump()


def logout_json() -> dict[str, Any]:
    return out.LogoutOut(detail="Successfully logged out.").dump()


def detail_json(detail: str) -> dict[str, Any]:
    return out.DetailOut(detail=detail).dump()


def tokens_json(tokens: Sequence[AuthToken], current_hash: str | None) -> list[dict[str, Any]]:
    return [out.TokenOut(id=token.token_hash, client_type=token.client_type, user_agent=token.user_agent,
                         created_at=token.created_at, last_used_at=token.last_used_at,
                         expires_at=token.expires_at, is_current=token.token_hash == current_hash).dump()
            for token in tokens]


def account_state_json(user: User) -> dict[str, Any]:
    return out.AccountStateOut(username=user.username, is_active=bool(user.is_active)).dump()


def link_json(url: str, expires_at: datetime) -> dict[str, Any]:
    return out.LinkOut(url=url, expires_at=expires_at).dump()


def _user(user: User) -> out.UserOut:
    return out.UserOut(username=user.username, type=user.account_type, email=user.email,
                       first_name=user.first_name, last_name=user.last_name,
                       full_name=user.full_name, avatar_url=None, is_staff=bool(user.is_staff))


def user_json(user: User) -> dict[str, Any]:
    return _user(user).dump()


def _public_user(user: User) -> out.PublicUserOut:
    """What anyone may see of an account (QFieldCloud's PublicInfoUserSerializer)."""
    return out.PublicUserOut(
        username=user.username, type=user.account_type, full_name=user.full_name, avatar_url=None,
        username_display=user.username.rsplit("/", 1)[-1] if user.is_team else user.username,
    )


def public_user_json(user: User) -> dict[str, Any]:
    return _public_user(user).dump()


def _organization(view: OrganizationView) -> out.OrganizationOut:
    organization, membership = view.organization, view.caller_membership
    return out.OrganizationOut(
        username=organization.username,
        type=organization.account_type,
        email=organization.email,
        avatar_url=None,
        members=view.public_members,
        organization_owner=organization.organization_owner,
        membership_role=membership_role_label(membership.role) if membership else None,
        membership_role_origin=membership_origin(membership.role) if membership else None,
        membership_is_public=membership.is_public if membership else None,
        teams=view.teams,
        default_project_role_for_members=organization.default_project_role_for_members,
    )


def organization_json(view: OrganizationView) -> dict[str, Any]:
    return _organization(view).dump()


def account_json(view: AccountView) -> dict[str, Any]:
    if view.organization is not None:
        return organization_json(view.organization)
    return user_json(view.account) if view.complete else public_user_json(view.account)


def member_json(membership: Membership) -> dict[str, Any]:
    return out.MemberOut(organization=membership.organization, member=membership.member,
                         role=membership.role, is_public=membership.is_public).dump()


def team_json(view: TeamView) -> dict[str, Any]:
    return out.TeamOut(team=view.team.name, organization=view.organization.username,
                       members=view.team.member_names).dump()


def team_member_json(username: str) -> dict[str, Any]:
    return out.TeamMemberOut(member=username).dump()


def project_json(view: ProjectView) -> dict[str, Any]:
    project, role = view.project, view.role
    fields: dict[str, Any] = {}
    if role is not None:
        fields = {"user_role": role.role.label, "user_role_origin": role.origin.value}
    return out.ProjectOut(
        id=project.id,
        name=project.name,
        owner=project.owner,
        description=project.description or "",
        project_type=project.project_type,
        is_public=project.is_public,
        private=not project.is_public,
        public_collaborator_role=project.public_collaborator_role,
        created_at=project.created_at,
        updated_at=project.updated_at,
        data_last_packaged_at=project.data_last_packaged_at,
        data_last_updated_at=project.data_last_updated_at,
        restricted_data_last_updated_at=project.restricted_data_last_updated_at,
        can_repackage=project.project_type != ProjectType.TEMPLATE,
        needs_repackaging=view.needs_repackaging,
        status=view.status,
        status_code=view.status_code,
        shared_datasets_project_id=view.shared_datasets_project_id,
        is_shared_datasets_project=project.project_type == ProjectType.SHARED_DATASETS,
        is_featured=project.is_featured,
        is_attachment_download_on_demand=project.is_attachment_download_on_demand,
        has_restricted_projectfiles=project.has_restricted_projectfiles,
        overwrite_conflicts=project.overwrite_conflicts,
        file_storage_bytes=int(project.file_storage_bytes or 0),
        the_qgis_file_name=project.the_qgis_file_name,
        **fields,
    ).dump()


def collaborator_json(collaborator: Collaborator) -> dict[str, Any]:
    return out.CollaboratorOut(
        project_id=collaborator.project_id,
        collaborator=collaborator.collaborator,
        role=collaborator.role,
        created_by=collaborator.created_by,
        updated_by=collaborator.updated_by,
        created_at=collaborator.created_at,
        updated_at=collaborator.updated_at,
    ).dump()


def file_json(item: ProjectFile) -> dict[str, Any]:
    return out.FileOut(**_file_fields(item)).dump()


def file_metadata_json(item: ProjectFile, content_type: str) -> dict[str, Any]:
    return out.FileMetadataOut(**_file_fields(item), content_type=content_type).dump()


def _file_fields(item: ProjectFile) -> dict[str, Any]:
    return {**dict(file_versions(item.versions)), "name": item.name, "uploaded_at": item.uploaded_at,
            "is_attachment": item.is_attachment}


def file_entries_json(page: Sequence[ListedFile | ProjectFile]) -> JsonItems:
    """A page of the files list as JSON text: each entry is the file's own fields followed by its
    versions as the item stores them (`ListedFile.listed`), spliced in unparsed, so that a page
    costs per file, not per version. Items stored in another form go through `file_json`."""
    return JsonItems(",".join(_listed_file_text(item) for item in page))


def _listed_file_text(item: ListedFile | ProjectFile) -> str:
    if isinstance(item, ProjectFile):
        return compact_json(file_json(item))
    # FileOut's own fields (name, uploaded_at, is_attachment), then FileVersionsOut's.
    own = compact_json({"name": item.name, "uploaded_at": utc_timestamp(item.uploaded_at),
                         "is_attachment": item.is_attachment})
    return own[:-1] + "," + item.listed[1:]


def uploaded_json(name: str, version: FileVersion) -> dict[str, Any]:
    return out.UploadedOut(
        name=name,
        version_id=version.version_id,
        size=int(version.size),
        md5sum=version.md5sum,
        sha256=version.sha256,
        uploaded_at=version.uploaded_at,
    ).dump()


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    user, total_bytes = subscription.account, subscription.storage_total_bytes
    return out.SubscriptionOut(
        plan_display_name="Self-hosted",
        plan_code="self_hosted",
        plan_is_premium=True,
        status="active_paid",
        active_since=user.date_joined,
        active_until=None,
        storage_used_bytes=int(user.storage_used_bytes or 0),
        active_storage_total_bytes=total_bytes,
        plan_storage_threshold_warning_bytes=total_bytes * 9 // 10,
        plan_storage_threshold_critical_bytes=total_bytes * 97 // 100,
        max_premium_collaborators_per_private_project=(
            subscription.max_premium_collaborators_per_private_project),
        max_organization_members=subscription.max_organization_members,
    ).dump()


def _auth_providers() -> list[out.AuthProviderOut]:
    """How one logs in here: username and password only (QField's login screen reads this)."""
    return [out.AuthProviderOut(type="credentials", id="credentials", name="Username / Password")]


def auth_providers_json() -> list[dict[str, Any]]:
    return [provider.dump() for provider in _auth_providers()]


def status_json(health: Health) -> dict[str, Any]:
    return out.StatusOut(
        database="ok" if health.database_ok else "error",
        storage="ok" if health.storage_ok else "error",
        status_page_url=None,
        incident_message=None,
        incident_timestamp_utc=None,
        maintenance_message=None,
        maintenance_start_timestamp_utc=None,
        maintenance_end_timestamp_utc=None,
    ).dump()


def server_info_json(signup_url: str | None, password_reset_enabled: bool) -> dict[str, Any]:
    return out.ServerInfoOut(
        whitelabel=out.WhitelabelOut(site_title="QFieldCloud (serverless)", logo_navbar=None,
                                     logo_main=None, favicon=None),
        auth_providers=_auth_providers(),
        signup_url=signup_url,
        password_reset_enabled=password_reset_enabled,
    ).dump()


def upload_state_json(state: UploadState) -> dict[str, Any]:
    session = state.session
    return out.UploadStateOut(
        upload_id=session.upload_id,
        project_id=session.project_id,
        name=session.name,
        size=int(session.size),
        part_size=int(session.part_size),
        state=session.state,
        expires_at=session.expires_at,
        uploaded_parts=[out.UploadedPartOut(part_number=part.number, size=part.size, etag=part.etag)
                        for part in state.uploaded],
        parts=[out.UploadPartOut(part_number=part.number, size=part.size, url=part.url)
               for part in state.missing],
    ).dump()


def _job_fields(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "project_id": job.project_id,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def job_json(job: Job) -> dict[str, Any]:
    return out.JobOut(**_job_fields(job)).dump()


def job_report_text(report: JobReport) -> str:
    """A job with its report, as JSON text: JobReportOut's own fields, then the report as stored
    (JSON text, spliced in unparsed), so that a report of any depth can be answered."""
    own = compact_json(out.JobReportFieldsOut(
        **_job_fields(report.job), feedback_url=report.feedback_url, output=report.output).dump())
    return f'{own[:-1]},"feedback":{report.feedback_json or "null"}}}'


def _package_file(name: str, size: int, md5sum: str, sha256: str, uploaded_at: datetime | None,
                  is_attachment: bool) -> out.PackageFileOut:
    return out.PackageFileOut(name=name, size=size, md5sum=md5sum, sha256=sha256,
                              uploaded_at=uploaded_at, last_modified=uploaded_at,
                              is_attachment=is_attachment)


def package_text(package: Package) -> str:
    """The latest package as JSON text: PackageOut's own fields, then its layers as the package
    job reported them (JSON text already, spliced in)."""
    job = package.job
    files = [_package_file(f.name, int(f.size), f.md5sum, f.sha256, job.finished_at, False)
             for f in package.package_files]
    files += [_package_file(item.name, int(item.latest.size), item.latest.md5sum,
                            item.latest.sha256, item.latest.uploaded_at, True)
              for item in package.attachments]
    own = compact_json(out.PackageFieldsOut(
        files=files,
        status=job.status,
        package_id=job.id,
        packaged_at=package.packaged_at,
        data_last_updated_at=package.data_last_updated_at,
    ).dump())
    return f'{own[:-1]},"layers":{package.layers_json}}}'


def delta_entries_json(page: Sequence[Delta]) -> JsonItems:
    """A page of deltas as JSON text: each entry's own fields, followed by the delta and its last
    report as they are stored (JSON text, spliced in unparsed), so that any stored delta can be
    listed, however deeply its values nest."""
    return JsonItems(",".join(_delta_text(delta) for delta in page))


def _delta_text(delta: Delta) -> str:
    status = DeltaStatus(delta.status)
    shown = "BUSY" if status == DeltaStatus.STARTED else status.name
    own = compact_json(out.DeltaFieldsOut(
        id=delta.id,
        deltafile_id=delta.deltafile_id,
        created_by=delta.created_by,
        created_at=delta.created_at,
        updated_at=delta.updated_at,
        status=f"STATUS_{shown}",
        # The last report as JSON text (QFieldCloud prints it as a Python value: docs/api.md).
        output=delta.feedback_json,
        last_status=status,
        last_modified_pk=delta.modified_pk,
    ).dump())
    # DeltaOut's own fields.
    return f'{own[:-1]},"last_feedback":{delta.feedback_json or "null"},"content":{delta.content_json}}}'
