"""The typed outputs of the API: the one home of every response shape.

`serializers` fills these models from the services' results and dumps them to the JSON the
handlers return; `openapi` derives the document's response schemas from them. A field the
clients read is declared here once, with its type: a serializer that sends something else fails
its own validation (a 500 in tests) instead of drifting from the document.

Conventions: every field a response always carries is required (no default); a field that is
sometimes absent has a default and is left out when the serializer does not set it (`dump`
leaves unset fields out). Timestamps are ISO 8601 in UTC with `Z`. The base `Output` and the
versions of a file, which the files table stores rendered, are in `models.shapes`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from chalicelib.models.deltas import DeltaStatus
from chalicelib.models.jobs import JobStatus, JobType
from chalicelib.models.projects import ProjectType
from chalicelib.models.roles import Origin
from chalicelib.models.shapes import FileVersionsOut, Md5sum, Output, Timestamp

AccountType = Annotated[Literal[1, 2, 3], Field(description="1 person, 2 organization, 3 team")]
RoleLabel = Literal["reader", "reporter", "editor", "manager", "admin"]
MemberRoleLabel = Literal["owner", "admin", "creator", "member"]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


class ErrorOut(Output):
    """Every error: a machine code (the table in docs/api.md) and a message for people."""

    code: str
    message: str


class UserOut(Output):
    """A person as they see themselves."""

    username: str
    type: AccountType
    email: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    avatar_url: None
    is_staff: bool = Field(description="Staff manage users (an addition of this server)")


class LoginOut(Output):
    """The caller and a new token; `type` is a string here only, as in QFieldCloud."""

    username: str
    type: Literal["1", "2", "3"]
    email: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    avatar_url: None
    token: str
    expires_at: Timestamp


class LogoutOut(Output):
    detail: str


class DetailOut(Output):
    """What was done, in words for people."""

    detail: str


class TokenOut(Output):
    """One of the caller's tokens (never its key, which only the login showed)."""

    id: str = Field(description="The token's SHA-256: what `DELETE auth/tokens/<id>/` takes")
    client_type: str
    user_agent: str
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="To within five minutes")
    expires_at: Timestamp
    is_current: bool = Field(description="The token of this request")


class AccountStateOut(Output):
    username: str
    is_active: bool


class LinkOut(Output):
    """A short-lived presigned URL that needs no auth header (for a browser to follow)."""

    url: str
    expires_at: Timestamp


class PublicUserOut(Output):
    """What anyone may see of an account (QFieldCloud's PublicInfoUserSerializer)."""

    username: str
    type: AccountType
    full_name: str | None
    avatar_url: None
    username_display: str


class OrganizationOut(Output):
    """An organization as one of its owner, admins or members sees it."""

    username: str
    type: AccountType
    email: str | None
    avatar_url: None
    members: list[str] = Field(description="Its public members")
    organization_owner: str | None
    membership_role: MemberRoleLabel | None = Field(description="The caller's role in it")
    membership_role_origin: str | None
    membership_is_public: bool | None
    teams: list[str]
    default_project_role_for_members: RoleLabel | None


AccountOut = Annotated[
    OrganizationOut | UserOut | PublicUserOut,
    Field(description="Oneself completely, an organization its owner and members may see, "
                      "anyone else by public information"),
]


class MemberOut(Output):
    organization: str
    member: str
    role: MemberRoleLabel
    is_public: bool


class TeamOut(Output):
    team: str
    organization: str
    members: list[str]


class TeamMemberOut(Output):
    member: str


class ProjectOut(Output):
    """A project as one caller sees it."""

    id: Uuid
    name: str
    owner: str
    description: str
    project_type: ProjectType
    is_public: bool
    private: bool
    public_collaborator_role: RoleLabel | None
    created_at: Timestamp | None
    updated_at: Timestamp | None
    data_last_packaged_at: Timestamp | None
    data_last_updated_at: Timestamp | None
    restricted_data_last_updated_at: Timestamp | None
    can_repackage: bool
    needs_repackaging: bool
    status: Literal["ok", "busy", "failed"]
    status_code: Literal["ok", "busy", "failed_process_projectfile", "too_many_collaborators"]
    shared_datasets_project_id: Uuid | None
    is_shared_datasets_project: bool
    is_featured: bool
    is_attachment_download_on_demand: bool
    has_restricted_projectfiles: bool
    overwrite_conflicts: bool
    file_storage_bytes: int
    the_qgis_file_name: str | None
    user_role: RoleLabel | None = None
    user_role_origin: Origin | None = None


class CollaboratorOut(Output):
    project_id: Uuid
    collaborator: str
    role: RoleLabel
    created_by: str | None
    updated_by: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class FileOut(FileVersionsOut):
    """A project file: its versions' fields and its own."""

    name: str
    uploaded_at: Timestamp
    is_attachment: bool


class FileMetadataOut(FileOut):
    content_type: str


class UploadedOut(Output):
    """The version an upload made."""

    name: str
    version_id: str
    size: int
    md5sum: Md5sum
    sha256: str
    uploaded_at: Timestamp


class SubscriptionOut(Output):
    plan_display_name: str
    plan_code: str
    plan_is_premium: bool
    status: str
    active_since: Timestamp | None
    active_until: Timestamp | None
    storage_used_bytes: int
    active_storage_total_bytes: int
    plan_storage_threshold_warning_bytes: int
    plan_storage_threshold_critical_bytes: int
    max_premium_collaborators_per_private_project: int = Field(description="-1: no limit")
    max_organization_members: int | None = Field(description="Organizations only; -1: no limit")


class AuthProviderOut(Output):
    type: str
    id: str
    name: str


class WhitelabelOut(Output):
    site_title: str
    logo_navbar: str | None
    logo_main: str | None
    favicon: str | None


class ServerInfoOut(Output):
    whitelabel: WhitelabelOut
    auth_providers: list[AuthProviderOut]
    signup_url: str | None = Field(description="The web console's sign-up page, when sign-up is enabled")
    password_reset_enabled: bool = Field(description="Whether `auth/password/reset/` mails links "
                                                     "(an addition of this server)")


class StatusOut(Output):
    database: Literal["ok", "error"]
    storage: Literal["ok", "error"]
    status_page_url: str | None
    incident_message: str | None
    incident_timestamp_utc: str | None
    maintenance_message: str | None
    maintenance_start_timestamp_utc: str | None
    maintenance_end_timestamp_utc: str | None


class UploadedPartOut(Output):
    part_number: int
    size: int
    etag: str


class UploadPartOut(Output):
    """A part still missing, and the presigned URL to PUT its bytes to (no auth header)."""

    part_number: int
    size: int
    url: str


class UploadStateOut(Output):
    upload_id: Uuid
    project_id: Uuid
    name: str
    size: int
    part_size: int
    state: str
    expires_at: Timestamp | None
    uploaded_parts: list[UploadedPartOut]
    parts: list[UploadPartOut]


class JobOut(Output):
    id: Uuid
    type: JobType
    status: JobStatus
    project_id: Uuid
    created_by: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None


class JobReportFieldsOut(JobOut):
    """A job with its report but for the report itself (JobReportOut), which is sent as stored."""

    feedback_url: str | None = Field(
        description="Set when `feedback` is a summary: a presigned URL (valid 10 minutes, no auth "
                    "header) of the whole document")
    output: str | None = Field(description="The job's log")


class JobReportOut(JobReportFieldsOut):
    feedback: dict[str, Any] | None = Field(
        description="QFieldCloud's feedback-v2 document; when its JSON is larger than 1 MiB, its "
                    "summary: the workflow's ids and names, `steps` with `id`, `name` and `stage` "
                    "only, and the `error` fields (texts cut at 16,384 characters), without "
                    "`outputs` and the steps' `returns`")


class PackageFileOut(Output):
    name: str
    size: int
    md5sum: Md5sum
    sha256: str
    uploaded_at: Timestamp | None
    last_modified: Timestamp | None
    is_attachment: bool


class PackageFieldsOut(Output):
    """The latest package but for its layers (PackageOut), which are sent as the job reported them."""

    files: list[PackageFileOut]
    status: JobStatus
    package_id: Uuid
    packaged_at: Timestamp | None
    data_last_updated_at: Timestamp | None


class PackageOut(PackageFieldsOut):
    layers: dict[str, Any] | None = Field(
        description="The project's layers as packaged, by id; without each layer's `fields` when "
                    "they are larger than 1 MiB")


DeltaStatusLabel = Literal[tuple(  # type: ignore[misc]
    "STATUS_" + ("BUSY" if status == DeltaStatus.STARTED else status.name) for status in DeltaStatus)]


class DeltaFieldsOut(Output):
    """A delta's entry but for the delta itself and the last report (DeltaOut), which the lists
    send as they are stored."""

    id: str
    deltafile_id: str
    created_by: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None
    status: DeltaStatusLabel
    output: str | None = Field(description="The last report (`last_feedback`) as JSON text")
    last_status: DeltaStatus
    last_modified_pk: str | None


class DeltaOut(DeltaFieldsOut):
    last_feedback: Any
    content: dict[str, Any] = Field(description="The delta as uploaded")
