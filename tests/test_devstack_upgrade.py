"""The local stack keeps its data across upgrades: a table made by an older version gets the
indexes a newer model declares, and the users the `directory` index needs are entered in it."""


def test_a_kept_table_gets_new_indexes_and_old_users_are_searchable(aws):
    from chalicelib import accounts
    from chalicelib.models import User
    from chalicelib.models.base import shared_connection
    from devstack.resources import ensure_tables

    accounts.create_user("oldie", "long enough password")
    User.get("oldie").update(actions=[User.directory_partition.remove()])  # as an old version left it
    client = shared_connection().client
    client.update_table(TableName=User.Meta.table_name,
                        GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "directory"}}])
    ensure_tables()
    indexes = client.describe_table(TableName=User.Meta.table_name)["Table"]["GlobalSecondaryIndexes"]
    assert "directory" in {index["IndexName"] for index in indexes}
    assert [user.username for user in User.by_directory.query("o")] == ["oldie"]
