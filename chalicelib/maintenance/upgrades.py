"""The upgrade tasks' common ground: Scans over a whole table, run once after upgrading (the local
stack runs them when it adds what they fill in), never on a request path. `every_project` is
what recount and reorder go over; `fill_directory` gives old accounts their directory entry."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.models import Project, User
from chalicelib.models.users import directory_partition_of


def every_project(task: Callable[[Project], None]) -> int:
    """Run `task` on every project; how many there were."""
    count = 0
    for project in Project.scan():  # scan-ok: an upgrade task
        task(project)
        count += 1
    return count


def fill_directory() -> int:
    """Give persons and organizations made before the `directory` index their entry in it. A
    Scan: run once after an upgrade (the local stack does it when it adds the index), never on
    a request path."""
    filled = 0
    for user in User.scan(User.directory_partition.does_not_exist()):  # scan-ok: an upgrade task
        if user.is_person or user.is_organization:
            user.update(actions=[User.directory_partition.set(directory_partition_of(user.username_key))])
            filled += 1
    return filled
