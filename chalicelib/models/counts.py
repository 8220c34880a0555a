from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist

from chalicelib.models.base import Table, TableMeta, Transaction


class ListCount(Table):
    """How many items a list holds, changed in the same transaction as the items, so that a paged
    list's `X-Total-Count` is one GetItem and never a read of the list. `list_id` names the list
    (`count_id` builds it): `jobs/<project>`, `jobs/<project>/<type>`, `deltas/<project>`,
    `deltafile/<project>/<deltafile>`, and `active-jobs/<owner key>`, the jobs not done yet of an
    owner's projects (what the owner's job limit reads). A project's files are counted on the
    project itself (`Project.file_count`), which every file change updates anyway."""

    class Meta(TableMeta):
        table = "list-counts"

    list_id = UnicodeAttribute(hash_key=True)
    count = NumberAttribute(default=0)

    @classmethod
    def add(cls, tx: Transaction, list_id: str, delta: int) -> None:
        """Count `delta` more items in `tx` (the counter starts at zero)."""
        tx.update(cls(list_id), actions=[cls.count.add(delta)])

    @classmethod
    def of(cls, list_id: str) -> int:
        try:
            return int(cls.get(list_id).count)
        except DoesNotExist:
            return 0


def count_id(*parts: str) -> str:
    return "/".join(parts)
