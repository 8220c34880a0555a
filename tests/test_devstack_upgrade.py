"""The local stack keeps its data across upgrades: a table made by an older version gets the
indexes a newer model declares, and the users the `directory` index needs are entered in it."""


def test_a_kept_table_gets_new_indexes_and_old_users_are_searchable(aws):
    from chalicelib.models import User
    from chalicelib.models.base import shared_connection
    from chalicelib.services import accounts
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


def test_kept_projects_and_rows_get_their_list_order_with_the_new_indexes(users):
    from chalicelib.models import Collaborator, Project
    from chalicelib.models.base import shared_connection
    from devstack.resources import ensure_tables

    alice, bob = users("alice"), users("bob")
    pid = alice.create_project("old")["id"]
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    # As an older version left them: no order, no indexes by it.
    Project.get(pid).update(actions=[Project.list_order.remove()])
    Collaborator.get(pid, "bob").update(actions=[Collaborator.project_order.remove()])
    client = shared_connection().client
    for model, index in ((Project, "by-owner-in-order"), (Project, "public-in-order"),
                         (Collaborator, "by-collaborator-in-order")):
        client.update_table(TableName=model.Meta.table_name,
                            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
    ensure_tables()
    assert Collaborator.get(pid, "bob").project_order == Project.get(pid).list_order is not None
    assert [p["name"] for p in bob.get("projects/?limit=5").json()] == ["old"]
    assert [p["name"] for p in alice.get("projects/?limit=5").json()] == ["old"]
