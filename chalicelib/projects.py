"""Projects: create, read, list, update (rename, owner transfer), delete."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from . import quota, storage
from .accounts import find_user, user_key
from .auth import Caller
from .errors import (
    ObjectNotFound,
    OverQuota,
    PermissionDenied,
    ProjectAlreadyExists,
    QgisProjectFileNotAllowed,
    ValidationError,
)
from .models import Collaborator, Project, ProjectFile, ProjectName, UploadSession, User
from .models.base import Transaction, utcnow
from .models.projects import PUBLIC_PARTITION
from .permissions import Action, ProjectRole, Role, parse_role, project_role, require, role_from
from .request_data import get_bool, get_str
from .serializers import project_json

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
SHARED_DATASETS = "shared_datasets"
INPUT_PROJECT_TYPES = ("regular", "template")
PUBLIC_ROLES = ("reader", "reporter", "editor")
FLAG_FIELDS = (
    "is_featured",
    "is_attachment_download_on_demand",
    "has_restricted_projectfiles",
    "overwrite_conflicts",
)
ORDERING_FIELDS = ("owner", "name", "created_at")


def get_project(project_id: str) -> Project:
    try:
        return Project.get(project_id)
    except DoesNotExist:
        raise ObjectNotFound(f"There is no project `{project_id}`.") from None


def project_for(caller: Caller, project_id: str, action: Action) -> tuple[Project, ProjectRole]:
    """The project, if it exists (404) and the caller may perform `action` on it (403)."""
    project = get_project(project_id)
    return project, require(caller.user, project, action)


def validate_name(name: str | None) -> str:
    if not name or not NAME_PATTERN.match(name):
        raise ValidationError(
            "A project name has 1 to 255 letters, digits, `-`, `_` or `.`, and no spaces."
        )
    return name


def _is_public_from(data: dict[str, Any]) -> bool | None:
    if "is_public" in data:
        return get_bool(data, "is_public")
    private = get_bool(data, "private")
    return None if private is None else not private


def _project_type_from(data: dict[str, Any], name: str, current: str | None) -> str:
    if name == SHARED_DATASETS:
        return SHARED_DATASETS
    requested = get_str(data, "project_type")
    if requested is None:
        return "regular" if current in (None, SHARED_DATASETS) else current
    if requested not in INPUT_PROJECT_TYPES:
        raise ValidationError(f"`project_type` must be one of: {', '.join(INPUT_PROJECT_TYPES)}.")
    return requested


def _public_role_from(data: dict[str, Any], current: str) -> str:
    value = get_str(data, "public_collaborator_role")
    if value is None:
        return current
    role = parse_role(value, "public_collaborator_role")
    if role > Role.EDITOR:
        raise ValidationError(f"`public_collaborator_role` must be one of: {', '.join(PUBLIC_ROLES)}.")
    return role.label


def _apply_fields(project: Project, data: dict[str, Any]) -> None:
    """Set the plain fields present in `data` (name and owner are handled by the callers)."""
    description = get_str(data, "description")
    if description is not None:
        project.description = description
    is_public = _is_public_from(data)
    if is_public is not None:
        project.is_public = is_public
    project.public_partition = PUBLIC_PARTITION if project.is_public else None
    for field in FLAG_FIELDS:
        value = get_bool(data, field)
        if value is not None:
            setattr(project, field, value)
    project.public_collaborator_role = _public_role_from(data, project.public_collaborator_role)


def _owner_for(caller: Caller, owner_name: str | None) -> User:
    if owner_name is None or user_key(owner_name) == caller.key:
        return caller.user
    owner = find_user(owner_name)
    if owner is None:
        raise ObjectNotFound(f"There is no user `{owner_name}`.")
    return owner


def create_project(caller: Caller, data: dict[str, Any]) -> Project:
    name = validate_name(get_str(data, "name", required=True))
    owner = _owner_for(caller, get_str(data, "owner"))
    if owner.username_key != caller.key:
        raise PermissionDenied("You can only create projects for yourself.")
    now = utcnow()
    project = Project(
        str(uuid.uuid4()),
        name=name,
        owner=owner.username,
        owner_key=owner.username_key,
        created_at=now,
        updated_at=now,
    )
    project.project_type = _project_type_from(data, name, None)
    _apply_fields(project, data)
    tx = Transaction()
    try:
        with tx:
            tx.save(
                ProjectName(ProjectName.key_for(owner.username_key, name), project_id=project.id),
                condition=ProjectName.owner_and_name.does_not_exist(),
                label="name",
            )
            tx.save(project, condition=Project.id.does_not_exist())
    except TransactWriteError as exc:
        if "name" in tx.failed(exc):
            raise ProjectAlreadyExists(
                f"`{owner.username}` already has a project named `{name}`."
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


def update_project(caller: Caller, project: Project, data: dict[str, Any], *, full: bool) -> Project:
    """PATCH (or PUT, which needs `name`): rename, transfer, and the plain fields, atomically."""
    before = dict(project.attribute_values)
    old_name, old_owner_key = project.name, project.owner_key
    name = get_str(data, "name", required=full)
    name = validate_name(name) if name is not None else old_name
    new_owner = _owner_for(caller, get_str(data, "owner")) if "owner" in data else None
    transfer = new_owner is not None and new_owner.username_key != old_owner_key

    project_type = _project_type_from(data, name, project.project_type)
    if project_type == SHARED_DATASETS and project.the_qgis_file_name:
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
                condition=(Project.name == old_name) & (Project.owner_key == old_owner_key),
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
            raise ValidationError("The project was renamed or transferred meanwhile; retry.") from None
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


def delete_project(project: Project) -> None:
    """Remove the project's items from every table and all its S3 objects and versions.

    The project item goes last, so a failure part way leaves a project that can be deleted again.
    """
    for model, items in (
        (ProjectFile, ProjectFile.query(project.id)),
        (Collaborator, Collaborator.query(project.id)),
        (UploadSession, UploadSession.by_project.query(project.id)),
    ):
        with model.batch_write() as batch:
            for item in items:
                batch.delete(item)
    storage.delete_everything_under(storage.project_prefix(project.id))
    with Transaction() as tx:
        tx.delete(ProjectName(ProjectName.key_for(project.owner_key, project.name)))
        tx.delete(project)
    quota.release(project.owner_key, int(project.file_storage_bytes or 0))


def _public_projects() -> Iterable[Project]:
    return Project.public.query(PUBLIC_PARTITION)


def _collaborations(caller: Caller) -> dict[str, Collaborator]:
    """The caller's collaborator rows, by project id (one Query on the user's index)."""
    return {c.project_id: c for c in Collaborator.by_collaborator.query(caller.key)}


def _visible_projects(caller: Caller, include_public: bool) -> dict[str, tuple[Project, ProjectRole]]:
    """Every project the caller has a role on: a few Queries, never a Scan of the table."""
    found: dict[str, tuple[Project, ProjectRole]] = {}
    user = caller.user
    for project in Project.by_owner.query(caller.key):
        found[project.id] = (project, role_from(user, project, None))
    collaborations = _collaborations(caller)
    ids = [pid for pid in collaborations if pid not in found]
    for project in Project.batch_get(ids):
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


def list_projects(
    caller: Caller,
    *,
    include_public: bool,
    owner: str | None,
    name: str | None,
    search: str | None,
    ordering: str | None,
) -> list[tuple[Project, ProjectRole]]:
    items = [
        (project, role)
        for project, role in _visible_projects(caller, include_public).values()
        if include_public or role.origin != "public"
    ]
    if owner:
        items = [item for item in items if item[0].owner_key == user_key(owner)]
    if name:
        items = [item for item in items if item[0].name.casefold() == name.casefold()]
    if search:
        items = [item for item in items if _matches_search(item[0], search)]
    return order(items, ordering)


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
    if project.project_type != SHARED_DATASETS and (
        not project.the_qgis_file_name or project.processing_failed
    ):
        return "failed"
    return "ok"


def needs_repackaging(project: Project) -> bool:
    packaged, updated = project.data_last_packaged_at, project.data_last_updated_at
    return packaged is None or updated is None or packaged < updated


def _shared_datasets_ids(owner_keys: set[str]) -> dict[str, str]:
    keys = [ProjectName.key_for(owner_key, SHARED_DATASETS) for owner_key in owner_keys]
    return {
        claim.owner_and_name.rsplit("/", 1)[0]: claim.project_id
        for claim in ProjectName.batch_get(keys)
    }


def describe(items: Sequence[tuple[Project, ProjectRole | None]]) -> list[dict[str, Any]]:
    """The JSON of each project, with its shared-datasets sibling looked up in one batch."""
    shared = _shared_datasets_ids({project.owner_key for project, _ in items})
    return [
        project_json(
            project,
            role,
            status=status_of(project),
            needs_repackaging=needs_repackaging(project),
            shared_datasets_project_id=shared.get(project.owner_key),
        )
        for project, role in items
    ]


def role_of(caller: Caller, project: Project) -> ProjectRole | None:
    return project_role(caller.user, project)
