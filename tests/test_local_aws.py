"""What the local AWS stand-in adds to moto (devstack/moto_atomic.py) keeps DynamoDB's meaning:
a cancelled transaction leaves no trace, whatever it touched before the failing condition."""

import pytest
from pynamodb.exceptions import TransactWriteError


def test_a_cancelled_transaction_undoes_every_item_it_touched(aws):
    from chalicelib.models import Delta
    from chalicelib.models.base import Transaction

    existing = Delta("p", "kept", seq="1", deltafile_id="f", client_id="c", created_by="a", content={"v": 1})
    existing.save()
    changed = Delta("p", "kept", seq="1", deltafile_id="f", client_id="c", created_by="a", content={"v": 2})
    new = Delta("p", "new", seq="2", deltafile_id="f", client_id="c", created_by="a", content={"v": 3})
    with pytest.raises(TransactWriteError), Transaction() as tx:
        tx.save(new)  # applied by moto before the failing condition below
        tx.save(changed, condition=Delta.id.does_not_exist())
    assert [d.id for d in Delta.query("p")] == ["kept"]
    assert Delta.get("p", "kept").content == {"v": 1}
