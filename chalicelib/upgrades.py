"""What the upgrade tasks (recount, reorder) share: they go over every project once. A Scan, so
an administration task run after upgrading, never a request path."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.models import Project


def every_project(task: Callable[[Project], None]) -> int:
    """Run `task` on every project; how many there were."""
    count = 0
    for project in Project.scan():  # scan-ok: an upgrade task
        task(project)
        count += 1
    return count
