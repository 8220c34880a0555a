"""Projects: create, read, list, update (rename, owner transfer), delete."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.errors import (
    Conflict,
    ObjectNotFound,
    OverQuota,
    ProjectAlreadyExists,
    QgisProjectFileNotAllowed,
    ValidationError,
)
from chalicelib.models import Collaborator, Project, ProjectName, User
from chalicelib.models.base import Transaction, get_many, transaction, utcnow
from chalicelib.models.projects import PUBLIC_PARTITION, ProjectType, has_list_order, is_live
from chalicelib.models.roles import Role
from chalicelib.rules import plans, quota
from chalicelib.rules.permissions import (
    AccountAction,
    Action,
    CallerTies,
    ProjectRole,
    joins_new_project_as_admin,
    project_role,
    read_caller_ties,
    require,
    require_on_account,
    role_from,
)
from chalicelib.services import collaborators
from chalicelib.services.accounts import get_user, user_key
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import ProjectCreate, ProjectFields, ProjectListQuery, ProjectUpdate
from chalicelib.services.project_list import ProjectList

SHARED_DATASETS_NAME = "shared_datasets"
Item = tuple[Project, ProjectRole]
ORDERING_FIELDS = ("owner", "name", "created_at")


@dataclass(frozen=True)
class ProjectView:
    """A project as one caller sees it: what the API shows beside the stored fields.
    `status_code` says why a project is `failed` (docs/api.md, "Endpoints")."""

    project: Project
    role: ProjectRole | None
    status: str
    status_code: str
    needs_repackaging: bool
    shared_datasets_project_id: str | None


def get_project(project_id: str) -> Project:
    try:
        project = Project.get(project_id)
    except DoesNotExist:
        project = None
    if project is None or project.deleting_since is not None:  # a deleted one is gone at once
        raise ObjectNotFound(f"There is no project `{project_id}`.")
    return project


def project_for(caller: Caller, project_id: str, action: Action) -> tuple[Project, ProjectRole]:
    """The project, if it exists (404) and the caller may perform `action` on it (403)."""
    project = get_project(project_id)
    return project, require(caller.user, project, action)


def _project_type(name: str, requested: str | None, current: str | None) -> str:
    if name == SHARED_DATASETS_NAME:
        return ProjectType.SHARED_DATASETS
    if requested is None:
        return ProjectType.REGULAR if current in (None, ProjectType.SHARED_DATASETS) else current
    return requested


def _apply_fields(project: Project, data: ProjectFields) -> None:
    """Set the plain fields given in `data` (name and owner are handled by the callers)."""
    if data.description is not None:
        project.description = data.description
    if data.public is not None:
        project.is_public = data.public
    project.public_partition = PUBLIC_PARTITION if project.is_public else None
    for field, value in data.flags().items():
        setattr(project, field, value)
    if data.public_collaborator_role is not None:
        project.public_collaborator_role = data.public_collaborator_role.label


def _owner_for(caller: Caller, owner_name: str | None) -> User:
    if owner_name is None or user_key(owner_name) == caller.key:
        return caller.user
    owner = get_user(owner_name)
    if owner.is_team:
        raise ValidationError("A team cannot own projects; its organization can.")
    return owner


def create_project(caller: Caller, data: ProjectCreate) -> Project:
    """A new project. An organization's `creator` (not its owner or an admin) who creates one for
    the organization becomes its admin collaborator, in the same transaction."""
    owner = _owner_for(caller, data.owner)
    roles = require_on_account(caller.user, owner.username_key, AccountAction.CREATE_PROJECT)
    now = utcnow()
    project = Project(
        str(uuid.uuid4()),
        name=data.name,
        owner=owner.username,
        owner_key=owner.username_key,
        owner_is_organization=owner.is_organization,
        created_at=now,
        updated_at=now,
    )
    project.project_type = _project_type(data.name, data.project_type, None)
    _apply_fields(project, data)
    project.list_order = project.current_list_order()
    creator = None
    if joins_new_project_as_admin(roles):
        creator = Collaborator(project.id, caller.key, collaborator=caller.username,
                               role=Role.ADMIN.label, created_by=caller.username,
                               updated_by=caller.username, created_at=now, updated_at=now,
                               project_order=project.list_order)
        project.person_collaborators = 1
    taken = ProjectAlreadyExists(f"`{owner.username}` already has a project named `{data.name}`.")
    with transaction({"name": taken}) as tx:
        tx.save(
            ProjectName(ProjectName.key_for(owner.username_key, data.name), project_id=project.id),
            condition=ProjectName.owner_and_name.does_not_exist(),
            label="name",
        )
        tx.save(project, condition=Project.id.does_not_exist())
        if creator is not None:
            tx.save(creator, condition=Collaborator.collaborator_key.does_not_exist())
    return project


def _changes(project: Project, before: dict[str, Any]) -> list:
    """UpdateItem actions for the attributes that differ from `before`: a PATCH never rewrites
    the counters that uploads update concurrently."""
    actions = []
    for name, attribute in Project.get_attributes().items():
        value = project.attribute_values.get(name)
        if value != before.get(name):
            actions.append(attribute.remove() if value is None else attribute.set(value))
    return actions


def update_project(caller: Caller, project: Project, data: ProjectUpdate) -> Project:
    """PATCH or PUT: rename, transfer, and the plain fields, atomically."""
    before = dict(project.attribute_values)
    old_name, old_owner_key = project.name, project.owner_key
    name = data.name or old_name
    new_owner = _owner_for(caller, data.owner) if data.owner is not None else None
    transfer = new_owner is not None and new_owner.username_key != old_owner_key
    if transfer:
        require(caller.user, project, Action.TRANSFER_PROJECT)

    # The name is compared in any case here, as QFieldCloud's serializer does.
    if name.casefold() == SHARED_DATASETS_NAME and project.the_qgis_file_name:
        raise QgisProjectFileNotAllowed(
            "A project holding a QGIS project file cannot become `shared_datasets`."
        )
    project.project_type = _project_type(name, data.project_type, project.project_type)
    _apply_fields(project, data)
    project.name = name
    if transfer:
        project.owner, project.owner_key = new_owner.username, new_owner.username_key
        project.owner_is_organization = new_owner.is_organization
    project.updated_at = utcnow()
    project.list_order = project.current_list_order()
    renamed = (name, project.owner_key) != (old_name, old_owner_key)
    stored_bytes = int(project.file_storage_bytes or 0)

    tx = Transaction()
    try:
        with tx:
            tx.update(
                project,
                actions=_changes(project, before),
                # The order read: a concurrent change of `is_featured` must not be left out of it.
                condition=is_live() & (Project.name == old_name) & (Project.owner_key == old_owner_key)
                & has_list_order(before.get("list_order")),
                label="project",
            )
            if renamed:
                tx.delete(ProjectName(ProjectName.key_for(old_owner_key, old_name)))
                tx.save(
                    ProjectName(ProjectName.key_for(project.owner_key, name), project_id=project.id),
                    condition=ProjectName.owner_and_name.does_not_exist(),
                    label="name",
                )
            if transfer:
                tx.update(User(old_owner_key), actions=[User.storage_used_bytes.add(-stored_bytes)])
                tx.update(
                    new_owner,
                    actions=[User.storage_used_bytes.add(stored_bytes)],
                    condition=quota.over_quota_condition(new_owner, stored_bytes),
                    label="quota",
                )
    except TransactWriteError as exc:
        failed = tx.failed(exc)
        if "project" in failed:
            raise Conflict("The project was renamed or transferred meanwhile; retry.") from None
        if "name" in failed:
            raise ProjectAlreadyExists(
                f"`{project.owner}` already has a project named `{name}`."
            ) from None
        if "quota" in failed:
            raise OverQuota(
                f"The project's {stored_bytes} bytes do not fit in `{new_owner.username}`'s quota."
            ) from None
        raise
    if project.list_order != before.get("list_order"):
        collaborators.follow_project_order(project)
    return project


def _public_projects() -> Iterable[Project]:
    return (p for p in Project.public.query(PUBLIC_PARTITION) if p.deleting_since is None)


def _visible_projects(caller: Caller, include_public: bool) -> dict[str, tuple[Project, ProjectRole]]:
    """Every project the caller has a role on, never a Scan: the caller's own projects, those of
    the organizations they see whole, those they or their teams collaborate on (one batch), and
    the public ones when asked."""
    user = caller.user
    ties = read_caller_ties(user)
    candidates: dict[str, Project] = {}
    for owner_key in [caller.key, *ties.organizations_seen_whole()]:
        candidates.update((p.id, p) for p in Project.by_owner.query(owner_key))
    missing = [pid for pid in sorted(ties.project_ids()) if pid not in candidates]
    candidates.update((p.id, p) for p in Project.batch_get(missing))
    # A project being deleted is gone for everyone at once (project_deletion).
    candidates = {pid: p for pid, p in candidates.items() if p.deleting_since is None}
    if include_public:
        candidates.update((p.id, p) for p in _public_projects() if p.id not in candidates)
    return _with_roles(user, ties, candidates.values())


def _with_roles(user: User, ties: CallerTies, projects: Iterable[Project]) -> dict:
    found = {}
    for project in projects:
        role = role_from(user, project, ties.ties(project))
        if role is not None:  # e.g. a collaborator row left on an organization one has left
            found[project.id] = (project, role)
    return found


def _matches_search(project: Project, search: str) -> bool:
    terms = [term for term in re.split(r"[\s,]+", search.casefold()) if term]
    haystacks = (project.owner.casefold(), project.name.casefold())
    return all(any(term in text for text in haystacks) for term in terms)


def _sort_key(field: str):
    if field == "owner":
        return lambda item: item[0].owner_key
    if field == "name":
        return lambda item: item[0].name.casefold()
    return lambda item: item[0].created_at


def _ordering_fields(ordering: str | None) -> list[str]:
    return [f.strip() for f in (ordering or "").split(",") if f.strip().lstrip("-") in ORDERING_FIELDS]


def order(items: list[tuple[Project, ProjectRole]], ordering: str | None) -> list:
    """Sort by `ordering` (`owner`, `name`, `created_at`, `-` for descending, comma-separated);
    by default featured projects first, then owner and name."""
    fields = _ordering_fields(ordering)
    if not fields:
        return sorted(items, key=lambda item: item[0].current_list_order())
    items = sorted(items, key=lambda item: item[0].id)
    for field in reversed(fields):
        items.sort(key=_sort_key(field.lstrip("-")), reverse=field.startswith("-"))
    return items


def list_projects(caller: Caller, query: ProjectListQuery) -> ProjectList | list[Item]:
    """In the default order, read a page at a time (project_list); filtered or in another order,
    assembled and sorted here."""
    if not (query.owner or query.name or query.search or _ordering_fields(query.ordering)):
        return ProjectList(caller.user, query.include_public)
    items = [
        (project, role)
        for project, role in _visible_projects(caller, query.include_public).values()
        if query.include_public or role.origin != "public"
    ]
    if query.owner:
        items = [item for item in items if item[0].owner_key == user_key(query.owner)]
    if query.name:
        items = [item for item in items if item[0].name.casefold() == query.name.casefold()]
    if query.search:
        items = [item for item in items if _matches_search(item[0], query.search)]
    return order(items, query.ordering)


def list_public_projects(caller: Caller, ordering: str | None) -> ProjectList | list[Item]:
    if not _ordering_fields(ordering):
        return ProjectList(caller.user, include_public=True, public_only=True)
    ties = read_caller_ties(caller.user)
    return order(list(_with_roles(caller.user, ties, _public_projects()).values()), ordering)


def status_of(project: Project, owner: User | None) -> tuple[str, str]:
    """`status` and its reason: busy while a job is active; failed without a processed QGIS
    file (shared-datasets projects need none) or with more collaborators than the plan allows."""
    if project.active_jobs:
        return "busy", "busy"
    if project.project_type != ProjectType.SHARED_DATASETS and (
        not project.the_qgis_file_name or project.processing_failed
    ):
        return "failed", "failed_process_projectfile"
    if plans.too_many_collaborators(project, owner):
        return "failed", "too_many_collaborators"
    return "ok", "ok"


def needs_repackaging(project: Project) -> bool:
    """Whether a new package would differ from the last one (docs/jobs.md, "Packages")."""
    packaged, updated = project.data_last_packaged_at, project.data_last_updated_at
    return (project.has_online_vector_data or packaged is None or updated is None
            or packaged < updated)


def shared_datasets_of(project: Project) -> Project | None:
    """The owner's `shared_datasets` project, where the project's `localized:` layers live."""
    try:
        claim = ProjectName.get(ProjectName.key_for(project.owner_key, SHARED_DATASETS_NAME))
        shared = get_project(claim.project_id)
    except (DoesNotExist, ObjectNotFound):
        return None
    return None if shared.id == project.id else shared


def views(items: Sequence[tuple[Project, ProjectRole | None]],
          owners: dict[str, tuple[User | None, ProjectName | None]] | None = None) -> list[ProjectView]:
    """How each project looks to its caller: the owners (their plans) and their shared-datasets
    claims are read in one batch for all of them, and kept in `owners` (by owner key) when given,
    for the next batch of the same list."""
    owners = {} if owners is None else owners
    missing = sorted({project.owner_key for project, _ in items} - owners.keys())
    claims = {key: ProjectName.key_for(key, SHARED_DATASETS_NAME) for key in missing}
    fetched = get_many([(User, key) for key in missing]
                       + [(ProjectName, claim) for claim in claims.values()], consistent_read=False)
    owners.update((key, (fetched.get(User, key), fetched.get(ProjectName, claims[key]))) for key in missing)
    found = []
    for project, role in items:
        owner, shared = owners[project.owner_key]
        status, status_code = status_of(project, owner)
        found.append(ProjectView(
            project,
            role,
            status=status,
            status_code=status_code,
            needs_repackaging=needs_repackaging(project),
            shared_datasets_project_id=shared.project_id if shared else None,
        ))
    return found


def view(caller: Caller, project: Project) -> ProjectView:
    return views([(project, project_role(caller.user, project))])[0]
