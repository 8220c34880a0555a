"""`GET projects/` and `projects/public/` in the default order, at the cost of a page.

The default order (featured first, then owner, name, id) is `Project.list_order`. Every project a
caller sees sits in one of a few partitions sorted by it: their own projects and those of the
organizations they see whole (`projects.by-owner-in-order`), the rows of their collaborations and
of their teams' (`collaborators.by-collaborator-in-order`, by the copy `project_order`), and with
`include_public` the public projects (`projects.public-in-order`). A page is their k-way merge
after the key the page before ended on: each source is read with `Limit` = page + 1, since a
project of the page is within the first page + 1 items of every source holding it; that also
tells whether more follow. More reads happen only when projects drop out (being deleted, no role
left, public ones without `include_public`). The roles come from the rows read with the page
(every row of a project of the page is within what its source read) and the caller's memberships.

A collaborator row whose `project_order` differs from its project's `list_order` (a rename whose
rewrite of the rows has not landed yet, or was cut off: collaborators.follow_project_order) is
skipped: the project is briefly missing from a collaborator's list rather than listed twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chalicelib.models import Collaborator, Project, User
from chalicelib.models.base import get_many
from chalicelib.models.collaborators import team_collaborator_key
from chalicelib.models.listing import KeyOrdered, KeyRange
from chalicelib.models.projects import PUBLIC_PARTITION
from chalicelib.models.roles import Origin
from chalicelib.rules.permissions import CallerTies, ProjectRole, memberships_of, role_from, teams_that_count

Item = tuple[Project, ProjectRole]
Read = Project | Collaborator
RESOLVE_BATCH = 100  # the projects of collaborator rows: one BatchGetItem


class _Source:
    """Where one partition's read stands: what was read and not yet merged, and whether more
    may follow."""

    def __init__(self, keys: KeyRange, key_of: Callable[[Read], str | None], after: str | None):
        self.keys, self.key_of, self.after = keys, key_of, after
        self.buffer: deque[Read] = deque()
        self.more = True

    def needs_read(self) -> bool:
        return not self.buffer and self.more

    def read(self, limit: int | None) -> None:
        items, self.more = self.keys.read(self.after, limit)
        self.buffer.extend(items)
        if items:
            self.after = self.key_of(items[-1])


@dataclass
class _Entry:
    """One key of the merge: the project if a projects index held it, and the rows at that key."""

    key: str
    project: Project | None = None
    rows: list[Collaborator] = field(default_factory=list)

    @property
    def project_id(self) -> str:
        return self.project.id if self.project is not None else self.rows[0].project_id


def _project_source(keys: KeyRange) -> tuple[KeyRange, Callable[[Read], str | None]]:
    return keys, lambda project: project.list_order


def _row_source(keys: KeyRange) -> tuple[KeyRange, Callable[[Read], str | None]]:
    return keys, lambda row: row.project_order


def owner_projects(owner_key: str) -> KeyRange:
    return KeyRange(Project, Project.by_owner_in_order, owner_key, Project.list_order)


def public_projects() -> KeyRange:
    return KeyRange(Project, Project.public_in_order, PUBLIC_PARTITION, Project.list_order)


def rows_of(collaborator_key: str) -> KeyRange:
    return KeyRange(Collaborator, Collaborator.by_collaborator_in_order, collaborator_key,
                    Collaborator.project_order)


class ProjectList(KeyOrdered[Item]):
    """The projects `user` has a role on (and the public ones with `include_public`), or with
    `public_only` the public projects alone, with the caller's role on each."""

    def __init__(self, user: User, include_public: bool, public_only: bool = False):
        self.user = user
        self.include_public = include_public or public_only
        self.public_only = public_only
        memberships, organizations = memberships_of(user.username_key)
        self.ties = CallerTies({}, memberships, organizations, {})
        self.team_keys = [team_collaborator_key(team) for team in teams_that_count(memberships)]
        self.identity = "|".join(("projects", user.username_key, "public" if public_only
                                  else "with-public" if include_public else "own"))
        if public_only:
            self.sources = [_project_source(public_projects())]
            return
        owners = [user.username_key, *self.ties.organizations_seen_whole()]
        self.sources = ([_project_source(owner_projects(key)) for key in owners]
                        + [_row_source(rows_of(key)) for key in [user.username_key, *self.team_keys]])
        if include_public:
            self.sources.append(_project_source(public_projects()))

    def _start(self, after: str | None) -> list[_Source]:
        return [_Source(keys, key_of, after) for keys, key_of in self.sources]

    @staticmethod
    def _take(sources: list[_Source], count: int | None, limit: int | None) -> list[_Entry]:
        """The next `count` keys of the merge, reading a source (`limit` items) when it has
        nothing left to merge. Without `count`: up to where a source read before needs another."""
        taken: list[_Entry] = []
        if count is None:
            for source in sources:
                if source.needs_read():
                    source.read(limit)
        while count is None or len(taken) < count:
            for source in sources:
                if source.needs_read():
                    if count is None:
                        return taken
                    source.read(limit)
            heads = [(source.key_of(source.buffer[0]), source) for source in sources if source.buffer]
            if not heads:
                break
            key = min(head for head, _ in heads)
            entry = _Entry(key)
            for head, source in heads:
                if head == key:
                    read = source.buffer.popleft()
                    if isinstance(read, Project):
                        entry.project = read
                    else:
                        entry.rows.append(read)
            taken.append(entry)
        return taken

    def _resolve(self, entries: list[_Entry]) -> list[Item]:
        """The projects of the entries that the caller has a role on, with the role. Projects
        known only by collaborator rows are read (one BatchGetItem per RESOLVE_BATCH)."""
        wanted = [(Project, entry.project_id) for entry in entries if entry.project is None]
        fetched = get_many(wanted, consistent_read=False)
        if self.public_only:  # the rows were not read with the page: the caller's, for the roles
            found = [entry.project for entry in entries]
            keys = [self.user.username_key, *self.team_keys]
            rows = get_many([(Collaborator, project.id, key) for project in found for key in keys],
                            consistent_read=False)
            for entry in entries:
                entry.rows = [row for key in keys
                              if (row := rows.get(Collaborator, entry.project_id, key)) is not None]
        items: list[Item] = []
        for entry in entries:
            project = entry.project or fetched.get(Project, entry.project_id)
            if project is None or project.deleting_since is not None:
                continue
            if entry.project is None and project.list_order != entry.key:
                continue  # rows not moved yet to where the project now sorts
            role = self._role(project, entry.rows)
            if role is not None and (self.include_public or role.origin != Origin.PUBLIC):
                items.append((project, role))
        return items

    def _role(self, project: Project, rows: list[Collaborator]) -> ProjectRole | None:
        own = [row for row in rows if row.collaborator_key == self.user.username_key]
        teams = [row for row in rows if row.team_id is not None]
        ties = CallerTies({project.id: own[0]} if own else {}, self.ties.memberships,
                          self.ties.organizations, {project.id: teams})
        return role_from(self.user, project, ties.ties(project))

    def page(self, after: str | None, limit: int) -> tuple[list[Item], str | None, bool]:
        sources = self._start(after)
        found: list[Item] = []
        seen: set[str] = set()
        while len(found) <= limit:
            entries = self._take(sources, limit + 1 - len(found), limit + 1)
            if not entries:
                break
            for item in self._resolve(entries):
                if item[0].id not in seen:  # an index not caught up with a rename yet
                    seen.add(item[0].id)
                    found.append(item)
        page = found[:limit]
        return page, page[-1][0].list_order if page else None, len(found) > limit

    def __iter__(self) -> Iterator[Item]:
        sources = self._start(None)
        while True:
            entries = self._take(sources, None, None)
            if not entries:
                return
            for start in range(0, len(entries), RESOLVE_BATCH):
                yield from self._resolve(entries[start:start + RESOLVE_BATCH])
