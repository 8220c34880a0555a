"""Projects: create, read, list, update (rename, owner transfer), delete."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from . import quota
from .accounts import get_user, user_key
from .auth import Caller
from .errors import Conflict, ObjectNotFound, OverQuota, ProjectAlreadyExists, QgisProjectFileNotAllowed
from .inputs import ProjectCreate, ProjectFields, ProjectListQuery, ProjectUpdate
from .models import Collaborator, Project, ProjectName, User
from .models.base import Transaction, utcnow
from .models.projects import PUBLIC_PARTITION, ProjectType, is_live
from .permissions import (
    AccountAction,
    Action,
    ProjectRole,
    project_role,
    require,
    require_on_account,
    role_from,
)

SHARED_DATASETS_NAME = "shared_datasets"
ORDERING_FIELDS = ("owner", "name", "created_at")


@dataclass(frozen=True)
class ProjectView:
    """A project as one caller sees it: what the API shows beside the stored fields."""

    project: Project
    role: ProjectRole | None
    status: str
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
    return get_user(owner_name)


def create_project(caller: Caller, data: ProjectCreate) -> Project:
    owner = _owner_for(caller, data.owner)
    require_on_account(caller.user, owner.username_key, AccountAction.CREATE_PROJECT)
    now = utcnow()
    project = Project(
        str(uuid.uuid4()),
        name=data.name,
        owner=owner.username,
        owner_key=owner.username_key,
        created_at=now,
        updated_at=now,
    )
    project.project_type = _project_type(data.name, data.project_type, None)
    _apply_fields(project, data)
    tx = Transaction()
    try:
        with tx:
            tx.save(
                ProjectName(ProjectName.key_for(owner.username_key, data.name), project_id=project.id),
                condition=ProjectName.owner_and_name.does_not_exist(),
                label="name",
            )
            tx.save(project, condition=Project.id.does_not_exist())
    except TransactWriteError as exc:
        if "name" in tx.failed(exc):
            raise ProjectAlreadyExists(
                f"`{owner.username}` already has a project named `{data.name}`."
            ) from None
        raise
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

    project_type = _project_type(name, data.project_type, project.project_type)
    if project_type == ProjectType.SHARED_DATASETS and project.the_qgis_file_name:
        raise QgisProjectFileNotAllowed(
            "A project holding a QGIS project file cannot become `shared_datasets`."
        )
    project.project_type = project_type
    _apply_fields(project, data)
    project.name = name
    if transfer:
        project.owner, project.owner_key = new_owner.username, new_owner.username_key
    project.updated_at = utcnow()
    renamed = (name, project.owner_key) != (old_name, old_owner_key)
    stored_bytes = int(project.file_storage_bytes or 0)

    tx = Transaction()
    try:
        with tx:
            tx.update(
                project,
                actions=_changes(project, before),
                condition=is_live() & (Project.name == old_name) & (Project.owner_key == old_owner_key),
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
    return project


def _public_projects() -> Iterable[Project]:
    return (p for p in Project.public.query(PUBLIC_PARTITION) if p.deleting_since is None)


def _collaborations(caller: Caller) -> dict[str, Collaborator]:
    """The caller's collaborator rows, by project id (one Query on the user's index)."""
    return {c.project_id: c for c in Collaborator.by_collaborator.query(caller.key)}


def _visible_projects(caller: Caller, include_public: bool) -> dict[str, tuple[Project, ProjectRole]]:
    """Every project the caller has a role on: a few Queries, never a Scan of the table."""
    found: dict[str, tuple[Project, ProjectRole]] = {}
    user = caller.user
    for project in Project.by_owner.query(caller.key):
        if project.deleting_since is None:
            found[project.id] = (project, role_from(user, project, None))
    collaborations = _collaborations(caller)
    ids = [pid for pid in collaborations if pid not in found]
    for project in Project.batch_get(ids):
        if project.deleting_since is not None:
            continue
        found[project.id] = (project, role_from(user, project, collaborations[project.id]))
    if include_public:
        for project in _public_projects():
            if project.id not in found:
                found[project.id] = (project, role_from(user, project, None))
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


def order(items: list[tuple[Project, ProjectRole]], ordering: str | None) -> list:
    """Sort by `ordering` (`owner`, `name`, `created_at`, `-` for descending, comma-separated);
    by default featured projects first, then owner and name."""
    fields = [f.strip() for f in (ordering or "").split(",") if f.strip().lstrip("-") in ORDERING_FIELDS]
    items = sorted(items, key=lambda item: item[0].id)
    if not fields:
        items.sort(key=lambda item: (item[0].owner_key, item[0].name.casefold()))
        items.sort(key=lambda item: not item[0].is_featured)
        return items
    for field in reversed(fields):
        items.sort(key=_sort_key(field.lstrip("-")), reverse=field.startswith("-"))
    return items


def list_projects(caller: Caller, query: ProjectListQuery) -> list[tuple[Project, ProjectRole]]:
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


def list_public_projects(caller: Caller, ordering: str | None) -> list[tuple[Project, ProjectRole]]:
    collaborations = _collaborations(caller)
    items = [
        (project, role_from(caller.user, project, collaborations.get(project.id)))
        for project in _public_projects()
    ]
    return order(items, ordering)


def status_of(project: Project) -> str:
    if project.active_jobs:
        return "busy"
    if project.project_type != ProjectType.SHARED_DATASETS and (
        not project.the_qgis_file_name or project.processing_failed
    ):
        return "failed"
    return "ok"


def needs_repackaging(project: Project) -> bool:
    """Whether a new package would differ from the last one (reference §3.5)."""
    packaged, updated = project.data_last_packaged_at, project.data_last_updated_at
    return (project.has_online_vector_data or packaged is None or updated is None
            or packaged < updated)


def _shared_datasets_ids(owner_keys: set[str]) -> dict[str, str]:
    keys = [ProjectName.key_for(owner_key, SHARED_DATASETS_NAME) for owner_key in owner_keys]
    return {
        claim.owner_and_name.rsplit("/", 1)[0]: claim.project_id
        for claim in ProjectName.batch_get(keys)
    }


def shared_datasets_of(project: Project) -> Project | None:
    """The owner's `shared_datasets` project, where the project's `localized:` layers live."""
    project_id = _shared_datasets_ids({project.owner_key}).get(project.owner_key)
    if project_id is None or project_id == project.id:
        return None
    try:
        return get_project(project_id)
    except ObjectNotFound:
        return None


def views(items: Sequence[tuple[Project, ProjectRole | None]]) -> list[ProjectView]:
    """How each project looks to its caller, the shared-datasets siblings looked up in one batch."""
    shared = _shared_datasets_ids({project.owner_key for project, _ in items})
    return [
        ProjectView(
            project,
            role,
            status=status_of(project),
            needs_repackaging=needs_repackaging(project),
            shared_datasets_project_id=shared.get(project.owner_key),
        )
        for project, role in items
    ]


def view(caller: Caller, project: Project) -> ProjectView:
    return views([(project, project_role(caller.user, project))])[0]
