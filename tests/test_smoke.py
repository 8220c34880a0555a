def test_login_and_create_project(users):
    alice = users("alice")
    project = alice.create_project("first")
    reply = alice.get(f"projects/{project['id']}/")
    assert reply.status == 200
    assert reply.json()["name"] == "first"
