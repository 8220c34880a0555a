"""What a deployment does to the data after the stack: the upgrade tasks an update needs, and the
first staff user of a new stack. Both run here, with the operator's credentials, through the
app's own code (chalicelib) pointed at the stack's tables and bucket.

Which task follows which schema change (as the local stack decides it, devstack/resources.py):
- a `users` index added (the directory): persons and organizations get their directory entry;
- a `projects` or `collaborators` index added (the paged project list): every project gets its
  list order, and its collaborator rows their copy of it (`reorder`);
- the `list-counts` table created in an existing stack: the lists are counted from what is
  stored (`recount`).
The tasks read every project (a Scan): administration work after an update, never a request path.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.models import Collaborator, ListCount, Project, User

from .tables import table_logical_id
from .target import Target

ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class UpgradeTask:
    name: str
    run: Callable[[], int]
    done: str  # what it did, with {count}


def _recount() -> int:
    from chalicelib.maintenance.recount import recount_all

    return recount_all()


def _reorder() -> int:
    from chalicelib.maintenance.reorder import reorder_all

    return reorder_all()


def _fill_directory() -> int:
    from chalicelib.maintenance.upgrades import fill_directory

    return fill_directory()


RECOUNT = UpgradeTask("recount", _recount, "Counted the lists of {count} projects.")
FILL_DIRECTORY = UpgradeTask("directory", _fill_directory, "Put {count} accounts in the user directory.")
REORDER = UpgradeTask("reorder", _reorder, "Put {count} projects in their list order.")


def tasks_for(added_indexes: dict[str, set[str]], added_tables: set[str]) -> list[UpgradeTask]:
    """The tasks an update needs, by the tables it created and the indexes it added (by logical id)."""
    indexed = set(added_indexes)
    tasks = []
    if table_logical_id(ListCount) in added_tables:
        tasks.append(RECOUNT)
    if table_logical_id(User) in indexed:
        tasks.append(FILL_DIRECTORY)
    if indexed & {table_logical_id(Project), table_logical_id(Collaborator)}:
        tasks.append(REORDER)
    return tasks


def point_the_app_at(target: Target, outputs: dict[str, str]) -> None:
    """chalicelib's settings for the deployed stack: its tables and bucket, in its region, through
    the same endpoint as the deployment; production password hashing."""
    from chalicelib import config

    os.environ["AWS_DEFAULT_REGION"] = target.region
    os.environ["QFC_TABLE_PREFIX"] = outputs["TablePrefix"]
    os.environ["QFC_BUCKET"] = outputs["BucketName"]
    os.environ.pop("QFC_PASSWORD_HASH_CHEAP", None)
    if target.endpoint_url:
        os.environ["QFC_AWS_ENDPOINT_URL"] = target.endpoint_url
    else:
        os.environ.pop("QFC_AWS_ENDPOINT_URL", None)
    credentials = target.session.get_credentials()
    if credentials is not None:  # a profile's credentials, for the app's own clients
        frozen = credentials.get_frozen_credentials()
        os.environ["AWS_ACCESS_KEY_ID"] = frozen.access_key
        os.environ["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
        if frozen.token:
            os.environ["AWS_SESSION_TOKEN"] = frozen.token
    config.reload()


def create_first_admin() -> str | None:
    """Creates the staff user `admin` with a new random password, which is returned (shown once,
    stored nowhere); None when the user exists already."""
    from chalicelib.services import accounts

    if accounts.find_user(ADMIN_USERNAME) is not None:
        return None
    password = secrets.token_urlsafe(18)
    accounts.create_user(ADMIN_USERNAME, password, is_staff=True)
    return password
