"""The typed inputs of the API: what each request means once read, whatever its encoding.

Handlers build these with `request_data.body(...)`/`query(...)` and hand them to one service
function. The field rules live here once: a value that breaks one becomes 400
`validation_error` naming the field (`errors.as_api_error`). Booleans accept what both clients
send (`true/false`, `1/0`, `True/False`); unknown fields are ignored (clients send extras).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from chalicelib.models.roles import Role
from chalicelib.services.accounts import EMAIL_PATTERN, USERNAME_PATTERN

PROJECT_NAME_PATTERN = r"^[a-zA-Z0-9_.\-]{1,255}$"
# Bounds that keep every value a valid DynamoDB key and every item far below DynamoDB's 400 KB.
MAX_ACCOUNT_NAME_CHARS = 150  # usernames, organizations (docs/api.md, "Conventions")
MAX_EMAIL_CHARS = 254  # RFC 5321
MAX_DESCRIPTION_CHARS = 16_384
TEAM_NAME_PATTERN = r"^[a-zA-Z0-9_.\-]{1,150}$"


class Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


def _role(value: Any) -> Role:
    return value if isinstance(value, Role) else Role.from_label(value)


def _public_role(value: Any) -> Role:
    role = _role(value)
    if role > Role.EDITOR:
        raise ValueError("must be one of: reader, reporter, editor")
    return role


def _blank_as_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _canonical_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError("must be a UUID") from None


def _member_role(value: Any) -> str:
    label = value.strip().lower() if isinstance(value, str) else value
    if label not in ("admin", "creator", "member"):
        raise ValueError("must be one of: admin, creator, member")
    return label


def _optional_role(value: Any) -> Role | None:
    """An organization's default project role: a role, or empty/null for none."""
    return None if value in (None, "", "null", "none") else _role(value)


def _labels(*labels: str, nullable: bool = False) -> WithJsonSchema:
    """The JSON Schema of a value read from a label (the OpenAPI document's view of it)."""
    schema: dict[str, Any] = {"type": "string", "enum": list(labels)}
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]} if nullable else schema)


ROLE_LABELS = tuple(role.label for role in Role)
RoleInput = Annotated[Role, BeforeValidator(_role), _labels(*ROLE_LABELS)]
MemberRoleInput = Annotated[str, BeforeValidator(_member_role), _labels("admin", "creator", "member")]
OptionalRole = Annotated[Role | None, BeforeValidator(_optional_role), _labels(*ROLE_LABELS, nullable=True)]
TeamName = Annotated[str, StringConstraints(pattern=TEAM_NAME_PATTERN)]
PublicRole = Annotated[Role, BeforeValidator(_public_role), _labels("reader", "reporter", "editor")]
ProjectName = Annotated[str, StringConstraints(pattern=PROJECT_NAME_PATTERN)]
# An account named in a body (an owner, a collaborator): not blank, not longer than a username.
AccountName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ACCOUNT_NAME_CHARS)]
# A login name or email; a blank one counts as not given.
LoginName = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_ACCOUNT_NAME_CHARS)] | None,
    BeforeValidator(_blank_as_none)]
LoginEmail = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_EMAIL_CHARS)] | None,
    BeforeValidator(_blank_as_none)]
# A person named by username or email (a new member, a team member): not blank, not longer than
# an email (a blank one was a DynamoDB key error: 500).
AccountOrEmail = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_EMAIL_CHARS)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS)]
# A new account's name, password and email: the services check them (accounts.validate_*, also
# for accounts made on the command line); the document states the rules.
NewUsername = Annotated[str, WithJsonSchema({"type": "string", "pattern": USERNAME_PATTERN.pattern})]
NewPassword = Annotated[str, WithJsonSchema({"type": "string", "minLength": 8})]
NewEmail = Annotated[str, WithJsonSchema(
    {"anyOf": [{"const": ""}, {"type": "string", "pattern": EMAIL_PATTERN.pattern}]})]
Uuid = Annotated[str, BeforeValidator(_canonical_uuid), WithJsonSchema({"type": "string", "format": "uuid"})]


class Login(Input):
    username: LoginName = None
    email: LoginEmail = None
    password: str


class ProjectFields(Input):
    """What a create and an update have in common. `None` means "not given"."""

    description: Description | None = None
    is_public: bool | None = None
    private: bool | None = None  # QField's legacy spelling of `not is_public`
    project_type: Literal["regular", "template"] | None = None
    public_collaborator_role: PublicRole | None = None
    is_featured: bool | None = None
    is_attachment_download_on_demand: bool | None = None
    has_restricted_projectfiles: bool | None = None
    overwrite_conflicts: bool | None = None
    owner: AccountName | None = None

    @property
    def public(self) -> bool | None:
        if self.is_public is not None:
            return self.is_public
        return None if self.private is None else not self.private

    def flags(self) -> dict[str, bool]:
        """The boolean settings that were given."""
        names = ("is_featured", "is_attachment_download_on_demand", "has_restricted_projectfiles",
                 "overwrite_conflicts")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class ProjectCreate(ProjectFields):
    name: ProjectName


class ProjectUpdate(ProjectFields):
    """PATCH: every field optional. PUT uses `ProjectReplace`, which requires the name."""

    name: ProjectName | None = None


class ProjectReplace(ProjectUpdate):
    name: ProjectName


class ProjectListQuery(Input):
    include_public: bool = False
    owner: str | None = None
    name: str | None = None
    search: str | None = None
    ordering: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_include_public(cls, data: Any) -> Any:
        # The SDK's hyphenated form: only `1` includes public projects, as upstream.
        if isinstance(data, dict) and data.get("include_public") is None and "include-public" in data:
            return {**data, "include_public": data["include-public"] == "1"}
        return data


class OrderingQuery(Input):
    ordering: str | None = None


class CollaboratorAdd(Input):
    collaborator: AccountName
    role: RoleInput = Field("reader", validate_default=True)  # a label, as the document shows it


class CollaboratorChange(Input):
    role: RoleInput


class UserCreate(Input):
    """POST users/ (staff): the SDK's `create-user` sends username, password and email."""

    username: NewUsername
    password: NewPassword
    email: NewEmail
    first_name: str = ""
    last_name: str = ""


class UserUpdate(Input):
    """PUT/PATCH users/<u>/. `username` may be sent (it is part of the user object) but not
    changed; `default_project_role_for_members` applies to organizations only."""

    username: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    default_project_role_for_members: OptionalRole = None
    # Never changed here (services/users.py refuses it and names the password endpoints); read
    # so that a client sending it learns that, instead of a 200 that changed nothing.
    password: str | None = Field(None, description="Refused: see auth/password/change/")

    def given(self) -> set[str]:
        return set(self.model_fields_set)


class PasswordChange(Input):
    """POST auth/password/change/: one's own password, with the current one."""

    current_password: str
    new_password: NewPassword


class PasswordSet(Input):
    """POST users/<u>/password/ (staff): another person's password, without the current one."""

    new_password: NewPassword


class PasswordResetRequest(Input):
    """POST auth/password/reset/: the account to mail a reset link to, by email or username."""

    email: LoginEmail = None
    username: LoginName = None


class PasswordResetConfirm(Input):
    """POST auth/password/reset/confirm/: the token of the mailed link and the new password."""

    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    new_password: NewPassword


class SignUp(Input):
    """POST auth/signup/ (when the operator enables it): a new person, signed in at once."""

    username: NewUsername
    email: Annotated[str, WithJsonSchema({"type": "string", "pattern": EMAIL_PATTERN.pattern})]
    password: NewPassword
    first_name: Annotated[str, StringConstraints(max_length=MAX_ACCOUNT_NAME_CHARS)] = ""
    last_name: Annotated[str, StringConstraints(max_length=MAX_ACCOUNT_NAME_CHARS)] = ""


class UserSearchQuery(Input):
    """GET users/ (docs/api.md, "Searching users")."""

    q: str = ""
    project: Uuid | None = None
    organization: str | None = None
    invert: bool = False
    exclude_organizations: bool = False
    exclude_teams: bool = False


class OrganizationCreate(Input):
    """POST organizations/ (an addition: QFieldCloud creates organizations in its web admin)."""

    username: NewUsername
    email: NewEmail = ""


class MemberAdd(Input):
    member: AccountOrEmail
    role: MemberRoleInput = "member"
    is_public: bool = False


class MemberChange(Input):
    """PATCH members/<org>/<u>/; PUT uses `MemberReplace`, which requires the role."""

    role: MemberRoleInput | None = None
    is_public: bool | None = None


class MemberReplace(MemberChange):
    role: MemberRoleInput


class TeamInput(Input):
    """POST a team, or PUT its new name."""

    team: TeamName


class TeamMemberAdd(Input):
    """A username, or the email of a person."""

    member: AccountOrEmail


class UploadBegin(Input):
    name: str
    size: int


class UploadCompletion(Input):
    sha256: str | None = Field(
        None, pattern="^[0-9a-f]{64}$",
        description="The file's SHA-256 as the client computed it (lowercase hex). Given, the "
                    "version is recorded at once and the server checks the stored bytes against "
                    "it in the background, removing the version if they differ; without it, the "
                    "server reads the bytes back before answering.")


OptionalUuid = Annotated[Uuid | None, BeforeValidator(_blank_as_none)]


class VersionQuery(Input):
    """Which version of a file: `version` or its alias `version_id` (the latest if neither)."""

    version: OptionalUuid = None
    version_id: OptionalUuid = None

    @property
    def wanted(self) -> str | None:
        return self.version or self.version_id


class FileRestore(Input):
    """POST files/restore/<project>/<path>/: the version to copy as the file's newest version."""

    version_id: Uuid


class FileDownload(Input):
    """How a client asks for a file: which version, which bytes, what it already has."""

    version: Uuid | None = None
    range: str | None = None
    if_none_match: str | None = None
    user_agent: str = ""


JobTypeName = Literal["package", "delta_apply", "process_projectfile"]


class JobCreate(Input):
    project_id: Uuid
    type: JobTypeName
    force: bool = False


class JobListQuery(Input):
    project_id: Uuid
    type: JobTypeName | None = None


# A delta's parts that make up the key of a feature its client created
# (`models.deltas.client_key`: `<clientId>__<localLayerId>__<localPk>`), a DynamoDB sort key of at
# most 1024 bytes of UTF-8.
MAX_CLIENT_ID_BYTES = 128  # QField sends a UUID (36)
MAX_LAYER_ID_BYTES = 512  # QGIS makes `<layer name>_<uuid>`
MAX_PK_BYTES = 256
assert MAX_CLIENT_ID_BYTES + MAX_LAYER_ID_BYTES + MAX_PK_BYTES + len("____") <= 1024
# How deep lists and objects may nest in a delta, the delta itself being one level (an attribute
# value inside `new.attributes` gets 13): far below what breaks a parser or a renderer, and half
# the 32 levels DynamoDB allows in an item, should deltas ever be stored as maps.
MAX_DELTA_DEPTH = 16


def _utf8_of_at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode text (it holds a lone surrogate)") from None
        if size > limit:
            raise ValueError(f"is at most {limit} bytes long in UTF-8")
        return value

    return AfterValidator(check)


def nesting_depth(value: Any, limit: int) -> int:
    """How many levels of lists and objects `value` has (a scalar has none), counted up to
    `limit + 1` at most, level by level (no recursion, whatever the input)."""
    depth, level = 0, [value]
    while depth <= limit:
        level = [item for item in level if isinstance(item, dict | list)]
        if not level:
            break
        depth += 1
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)]
    return depth


ClientId = Annotated[str, _utf8_of_at_most(MAX_CLIENT_ID_BYTES)]
LayerId = Annotated[str, _utf8_of_at_most(MAX_LAYER_ID_BYTES)]
FeaturePk = Annotated[str, _utf8_of_at_most(MAX_PK_BYTES)]


class FeatureState(BaseModel):
    """A feature before (`old`) or after (`new`) a delta; nothing else may be in it."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    geometry: str | None = None
    attributes: dict[str, Any] | None = None
    files_sha256: dict[str, Any] | None = None
    is_snapshot: bool | None = None


class DeltaInput(BaseModel):
    """One delta of a deltafile (QField's format, docker-app/qfieldcloud/core/deltafile_01.json in
    https://github.com/opengisch/QFieldCloud; docs/jobs.md, "Deltas"); extra keys are kept."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    uuid: Uuid  # the delta's key: a UUID as QField sends, stored in canonical (lowercase) form
    clientId: ClientId  # optional in the upstream schema, but every client sends it and it is needed
    localPk: FeaturePk
    sourcePk: FeaturePk
    localLayerId: LayerId
    sourceLayerId: LayerId
    method: Literal["create", "patch", "delete"]
    old: FeatureState | None = None
    new: FeatureState | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        if nesting_depth(data, MAX_DELTA_DEPTH) > MAX_DELTA_DEPTH:
            raise ValueError(f"nests deeper than {MAX_DELTA_DEPTH} levels of lists and objects")
        return data

    @property
    def layer_id(self) -> str:
        """The layer the delta edits: its source layer, or the local one (QGIS keeps ids)."""
        return self.sourceLayerId or self.localLayerId


class Deltafile(BaseModel):
    """A deltafile, version 1.0. `contents` are the deltas exactly as uploaded: what is stored."""

    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)
    # One deltafile is stored in one request; more deltas than this go in several files.
    MAX_DELTAS: ClassVar[int] = 10_000

    version: Literal["1.0"]
    project: Uuid
    id: Uuid  # the deltafile's id, canonical as in the URLs that name it
    deltas: list[DeltaInput]
    files: list[str]

    @model_validator(mode="after")
    def _unique_files(self) -> Deltafile:
        if len(set(self.files)) != len(self.files):
            raise ValueError("`files` must not repeat a name")
        return self

    def contents(self) -> list[dict[str, Any]]:
        return [delta.model_dump(exclude_unset=True) for delta in self.deltas]
