"""Sets `Project.list_order` and its copies on the collaborator rows (`project_order`) from what is
stored, for data written before they existed or rows a cut-off rename left behind. An
administration task, not a request path: it reads every project (a Scan) and each project's rows.
Run it once after upgrading (`python -m chalicelib.maintenance.admin reorder`; the local stack
does it when it adds the indexes that page `GET projects/`)."""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.maintenance.upgrades import every_project
from chalicelib.models import Project
from chalicelib.models.projects import has_list_order
from chalicelib.services.collaborators import follow_project_order


def reorder_project(project: Project) -> None:
    order = project.current_list_order()
    if project.list_order != order:
        try:
            project.update(actions=[Project.list_order.set(order)],
                           condition=has_list_order(project.list_order))
        except UpdateError:
            return  # changed meanwhile: that change set the order and moves the rows
    follow_project_order(project)


def reorder_all() -> int:
    """Every project and its rows in their list order; how many projects there were."""
    return every_project(reorder_project)
