"""Every origin of a project role, with every role it can give, against every project action;
and every account action against every role towards an account.

The expectations are written out here from QFieldCloud's matrices (docs/api.md, "Roles"),
not derived from chalicelib.rules.permissions, so that a wrong entry in the code's tables fails a test.

Project worlds: a person's project (`proprietor`), or the project of the organization `acme`
(owner `orgowner`), private or public with each `public_collaborator_role`. Callers hold the
roles through each origin: the owner, the organization's owner and admin, direct collaborators,
teams that collaborate, the organization's default role for members, the public role; and
callers who must get nothing: a member without ties, a creator (of other projects), a member who
was removed, a former member whose collaborator row was left behind, a stranger, anonymous.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from functools import cache

import pytest
from PIL import Image

from tests.files_helpers import qgs

ROLES = ["reader", "reporter", "editor", "manager", "admin"]
RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}


@cache
def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()


# action: (request, minimum role, status when allowed)
ACTIONS = {
    "list_files": (lambda c, pid: c.get(f"files/{pid}/"), "reader", 200),
    "download_file": (lambda c, pid: c.get(f"files/{pid}/data.csv/"), "reader", 302),
    "file_metadata": (lambda c, pid: c.get(f"files/metadata/{pid}/data.csv/"), "reader", 200),
    "upload_attachment": (lambda c, pid: c.post(f"files/{pid}/DCIM/new.jpg/", files={"file": b"jpg"}),
                          "reporter", 201),
    "upload_file": (lambda c, pid: c.post(f"files/{pid}/new.csv/", files={"file": b"a,b"}), "editor", 201),
    "upload_project_file": (lambda c, pid: c.post(f"files/{pid}/project.qgs/", files={"file": qgs()}),
                            "editor", 201),
    "begin_presigned_upload": (lambda c, pid: c.post(f"uploads/{pid}/", json={"name": "x.tif", "size": 9}),
                               "editor", 201),
    "delete_file": (lambda c, pid: c.delete(f"files/{pid}/data.csv/"), "editor", 204),
    "get_project": (lambda c, pid: c.get(f"projects/{pid}/"), "reader", 200),
    "patch_project": (lambda c, pid: c.patch(f"projects/{pid}/", data={"description": "x"}),
                      "manager", 200),
    "put_project": (lambda c, pid: c.put(f"projects/{pid}/", data={"name": f"renamed-{pid}"}),
                    "manager", 200),
    "delete_project": (lambda c, pid: c.delete(f"projects/{pid}/"), "manager", 204),
    "upload_thumbnail": (lambda c, pid: c.post(f"projects/{pid}/thumbnail/",
                                               files={"thumbnail": ("t.png", _png())}), "reporter", 204),
    "download_thumbnail": (lambda c, pid: c.get(f"files/thumbnails/{pid}/"), "reader", 302),
    "list_collaborators": (lambda c, pid: c.get(f"collaborators/{pid}/"), "manager", 200),
    "add_collaborator": (lambda c, pid: c.post(f"collaborators/{pid}/",
                                               data={"collaborator": "newcomer", "role": "reader"}),
                         "manager", 201),
    "get_collaborator": (lambda c, pid: c.get(f"collaborators/{pid}/reader/"), "manager", 200),
    "patch_collaborator": (lambda c, pid: c.patch(f"collaborators/{pid}/reader/", data={"role": "editor"}),
                           "manager", 200),
    "remove_collaborator": (lambda c, pid: c.delete(f"collaborators/{pid}/reader/"), "manager", 204),
    "list_jobs": (lambda c, pid: c.get(f"jobs/?project_id={pid}"), "reader", 200),
    "list_deltas": (lambda c, pid: c.get(f"deltas/{pid}/"), "reporter", 200),
    "latest_package": (lambda c, pid: c.get(f"packages/{pid}/latest/"), "reader", 400),  # never packaged
}
READ_ONLY = {"get_project", "download_thumbnail", "list_collaborators", "get_collaborator",
             "list_files", "download_file", "file_metadata", "list_jobs", "list_deltas", "latest_package"}


@dataclass
class Caller:
    """A caller, the role and origin they must get, and the organization's default role for
    members while they call (the origin `organization_member` needs it; others need it unset)."""

    label: str
    username: str | None  # None: anonymous
    role: str | None
    origin: str | None = None
    default_role: str | None = None


def _callers(kind: str, public_role: str | None) -> list[Caller]:
    public = [Caller("stranger", "stranger", public_role, "public" if public_role else None)]
    direct = [Caller(f"collaborator_{role}", role, role, "collaborator") for role in ROLES]
    if kind == "personal":
        owner = [Caller("project_owner", "proprietor", "admin", "project_owner")]
        callers = owner + direct + public
    else:
        no_ties = [
            Caller("member", "plainmember", public_role, "public" if public_role else None),
            Caller("creator", "orgcreator", public_role, "public" if public_role else None),
            Caller("removed_member", "leaver", public_role, "public" if public_role else None),
            Caller("stale_collaborator_row", "staleformer", public_role, "public" if public_role else None),
        ]
        callers = [
            Caller("organization_owner", "orgowner", "admin", "organization_owner"),
            Caller("organization_admin", "orgadmin", "admin", "organization_admin"),
            *direct,
            *[Caller(f"team_member_{role}", f"team_{role}", role, "team_member") for role in ROLES],
            # Rank, not strength: a direct reader in an editor team stays a reader.
            Caller("collaborator_reader_in_editor_team", "readerinteam", "reader", "collaborator"),
            # A team's reader outranks the organization's default role, even `admin`.
            Caller("team_reader_with_default_admin", "team_reader", "reader", "team_member",
                   default_role="admin"),
            *[Caller(f"organization_member_{role}", "plainmember", role, "organization_member",
                     default_role=role) for role in ROLES],
            *no_ties,
            *public,
        ]
    callers.append(Caller("anonymous", None, None))
    if public_role is not None:
        # Only the callers whose outcome the public role changes, and direct readers: their
        # origin outranks `public`, so they stay readers even where the public role is higher.
        callers = [c for c in callers if c.origin in ("public", None) or c.label.startswith(
            "collaborator_reader")]
    return callers


@dataclass
class World:
    kind: str
    public_role: str | None
    clients: dict = field(default_factory=dict)
    team_ids: dict = field(default_factory=dict)


def _build_world(users, api, kind: str, public_role: str | None) -> World:
    """The people, and for an organization its members and teams (team `t_<role>` holds
    `team_<role>`; `team_editor` also holds `readerinteam`)."""
    world = World(kind, public_role)
    owner = "proprietor" if kind == "personal" else "orgowner"
    names = {owner, "stranger", "newcomer", *ROLES}
    if kind == "organization":
        names |= {"orgadmin", "orgcreator", "plainmember", "leaver", "staleformer", "readerinteam",
                  *(f"team_{role}" for role in ROLES)}
    for name in sorted(names):
        world.clients[name] = users(name)
    world.clients[None] = api.as_anonymous()
    if kind == "organization":
        boss = world.clients["orgowner"]
        assert boss.post("organizations/", json={"username": "acme"}).status == 201
        roles = {"orgadmin": "admin", "orgcreator": "creator"}
        for name in sorted(names - {"orgowner", "stranger", "staleformer"}):
            added = boss.post("members/acme/", json={"member": name, "role": roles.get(name, "member")})
            assert added.status == 201, added.content
        for role in ROLES:
            created = boss.post("organizations/acme/teams/", json={"team": f"t_{role}"})
            assert created.status == 201
            members = [f"team_{role}"] + (["readerinteam", "leaver"] if role == "editor" else [])
            for member in members:
                assert boss.post(f"organizations/acme/teams/t_{role}/members/",
                                 json={"member": member}).status == 201
            from chalicelib.models import User

            world.team_ids[role] = User.get(f"@acme/t_{role}").team_id
        # `leaver` was a member and in a team, and is removed the way an admin does it; the
        # projects made afterwards still carry a row of theirs, as if the removal had been cut
        # off before cleaning it up.
        assert boss.delete("members/acme/leaver/").status == 204
    return world


def _make_project(world: World) -> str:
    """A project with a file, a QGIS file, a thumbnail and its collaborator rows (written through
    the models: the HTTP paths for these are tested elsewhere, and this runs hundreds of times)."""
    from chalicelib.adapters import storage
    from chalicelib.models import Collaborator, Project
    from chalicelib.models.collaborators import team_collaborator_key

    if world.kind == "personal":
        owner, fields = world.clients["proprietor"], {}
    else:
        owner, fields = world.clients["orgowner"], {"owner": "acme"}
    public = {"is_public": True, "public_collaborator_role": world.public_role} if world.public_role else {}
    pid = owner.create_project(f"p-{uuid.uuid4()}", **fields, **public)["id"]
    assert owner.post(f"files/{pid}/data.csv/", files={"file": b"x,y"}).status == 201
    assert owner.post(f"files/{pid}/project.qgs/", files={"file": qgs()}).status == 201
    rows = {role: role for role in ROLES}
    if world.kind == "organization":
        rows |= {"readerinteam": "reader", "leaver": "editor", "staleformer": "editor"}
        rows |= {team_collaborator_key(world.team_ids[role]): role for role in ROLES}
    order = Project.get(pid).list_order
    with Collaborator.batch_write() as batch:
        for key, role in rows.items():
            batch.save(Collaborator(pid, key, collaborator=key, role=role, project_order=order))
    version = storage.put_object(storage.thumbnail_key(pid), _png(), "image/png")
    Project.get(pid).update(actions=[Project.thumbnail_version.set(version)])
    return pid


def _set_default_role(role: str | None) -> None:
    from chalicelib.models import User

    organization = User.get("acme")
    if organization.default_project_role_for_members == role:
        return
    organization.update(actions=[User.default_project_role_for_members.set(role) if role
                                 else User.default_project_role_for_members.remove()])


WORLDS = [("personal", None), ("personal", "reporter"), ("organization", None),
          ("organization", "reader"), ("organization", "reporter"), ("organization", "editor")]


@pytest.mark.parametrize(("kind", "public_role"), WORLDS,
                         ids=[f"{kind}-{role or 'private'}" for kind, role in WORLDS])
def test_project_permission_matrix(users, api, kind, public_role):
    world = _build_world(users, api, kind, public_role)
    callers = _callers(kind, public_role)
    pid = _make_project(world)
    wrong = {}
    for caller in callers:  # the role and origin each caller sees
        if caller.username is None or world.kind == "personal" and caller.default_role:
            continue
        if kind == "organization":
            _set_default_role(caller.default_role)
        reply = world.clients[caller.username].get(f"projects/{pid}/")
        got = (reply.json()["user_role"], reply.json()["user_role_origin"]) if reply.status == 200 else None
        expected = (caller.role, caller.origin) if caller.role else None
        if got != expected:
            wrong[f"role of {caller.label}"] = (got, expected)
    for action, (request, minimum, success) in ACTIONS.items():
        for caller in sorted(callers, key=lambda c: RANK.get(c.role, 0)):  # refusals change nothing
            if kind == "organization":
                _set_default_role(caller.default_role)
            reply = request(world.clients[caller.username], pid)
            if caller.username is None:
                expected = (401, "not_authenticated")
            elif caller.role is not None and RANK[caller.role] >= RANK[minimum]:
                expected = (success, "invalid_job" if success == 400 else None)
            else:
                expected = (403, "permission_denied")
            if (reply.status, reply.code) != expected:
                wrong[f"{action} by {caller.label}"] = ((reply.status, reply.code), expected)
            if reply.status < 300 and action not in READ_ONLY:
                pid = _make_project(world)  # the action changed the project: start afresh
    assert not wrong, wrong


def test_project_lists_show_every_origin(users, api):
    world = _build_world(users, api, "organization", None)
    pid = _make_project(world)
    _set_default_role(None)
    for caller in _callers("organization", None):
        if caller.username is None or caller.default_role:
            continue
        listed = world.clients[caller.username].get("projects/").json()
        roles = [(p["user_role"], p["user_role_origin"]) for p in listed if p["id"] == pid]
        assert roles == ([(caller.role, caller.origin)] if caller.role else []), caller.label
    _set_default_role("reporter")
    listed = world.clients["plainmember"].get("projects/").json()
    assert [(p["id"], p["user_role"], p["user_role_origin"]) for p in listed] == [
        (pid, "reporter", "organization_member")]


def test_a_stranger_cannot_see_a_private_project_anywhere(users, api):
    world = _build_world(users, api, "organization", None)
    pid = _make_project(world)
    for name in ("stranger", "plainmember", "leaver", "staleformer"):
        client = world.clients[name]
        assert pid not in [p["id"] for p in client.get("projects/?include_public=1").json()]
        assert pid not in [p["id"] for p in client.get("projects/public/").json()]
        assert client.get(f"projects/{pid}/").status == 403
        assert client.get(f"collaborators/{pid}/").status == 403
    assert world.clients[None].get("projects/").status == 401
    assert world.clients[None].get("projects/public/").status == 401


def test_a_removed_member_loses_access_at_once(users):
    """bob reaches the project as a direct editor, through a team and through the default role;
    once removed from the organization, the very next request is refused."""
    alice, bob = users("alice"), users("bob")
    alice.post("organizations/", json={"username": "acme"})
    alice.post("members/acme/", json={"member": "bob"})
    alice.patch("users/acme/", json={"default_project_role_for_members": "reader"})
    alice.post("organizations/acme/teams/", json={"team": "field"})
    alice.post("organizations/acme/teams/field/members/", json={"member": "bob"})
    pid = alice.create_project("map", owner="acme")["id"]
    alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "editor"})
    alice.post(f"collaborators/{pid}/", json={"collaborator": "@acme/field", "role": "manager"})
    assert bob.get(f"projects/{pid}/").json()["user_role"] == "editor"
    assert bob.patch(f"projects/{pid}/", json={"description": "mine"}).status == 403
    assert alice.delete("members/acme/bob/").status == 204
    assert bob.get(f"projects/{pid}/").status == 403
    assert bob.get(f"files/{pid}/").status == 403
    assert pid not in [p["id"] for p in bob.get("projects/").json()]


def test_too_many_collaborators_fail_the_project_and_invalidate_their_roles(users, override_settings):
    alice, bob = users("alice"), users("bob")
    users("carol")
    pid = alice.create_project("crowded")["id"]
    alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "editor"})
    alice.post(f"collaborators/{pid}/", json={"collaborator": "carol", "role": "reader"})
    assert bob.get(f"projects/{pid}/").json()["status_code"] == "failed_process_projectfile"
    from chalicelib.models import Project

    Project.get(pid).update(actions=[Project.the_qgis_file_name.set("p.qgs")])  # as if processed
    assert bob.get(f"projects/{pid}/").json()["status_code"] == "ok"
    override_settings(max_premium_collaborators_per_private_project=1)
    body = alice.get(f"projects/{pid}/").json()
    assert (body["status"], body["status_code"]) == ("failed", "too_many_collaborators")
    assert bob.get(f"projects/{pid}/").code == "permission_denied"  # the role is not valid
    assert bob.get(f"files/{pid}/").status == 200  # only retrieving the project needs a valid one
    assert alice.delete(f"collaborators/{pid}/carol/").status == 204
    assert bob.get(f"projects/{pid}/").json()["status_code"] == "ok"
    alice.patch(f"projects/{pid}/", json={"is_public": True})
    alice.post(f"collaborators/{pid}/", json={"collaborator": "carol", "role": "reader"})
    assert bob.get(f"projects/{pid}/").status == 200  # public projects have no limit


# --- Account actions (docs/api.md, "Roles"): who may act on an account -------------------------
# Callers towards the person `alice` and the organization `acme` (owned by `orgowner`).
ACCOUNT_CALLERS = ["self", "organization_owner", "organization_admin", "organization_creator",
                   "organization_member", "other", "staff", "anonymous"]
CALLER_NAMES = {"self": "alice", "organization_owner": "orgowner", "organization_admin": "orgadmin",
                "organization_creator": "orgcreator", "organization_member": "plainmember",
                "other": "bob", "staff": "root", "anonymous": None}
ORG_PEOPLE = {"organization_owner", "organization_admin", "organization_creator", "organization_member"}
ORG_STAFF = {"organization_owner", "organization_admin"}
SIGNED_IN = set(ACCOUNT_CALLERS) - {"anonymous"}


class AccountWorld:
    """Targets made afresh for each request, so that every caller finds the same state."""

    def __init__(self, clients, upload):
        self.clients, self.upload, self.count = clients, upload, 0

    def fresh(self, prefix: str) -> str:
        from chalicelib.services import accounts

        self.count += 1
        name = f"{prefix}{self.count}"
        accounts.create_user(name, "long enough password", email=f"{name}@example.com")
        return name

    def fresh_member(self) -> str:
        name = self.fresh("member")
        assert self.clients["orgowner"].post("members/acme/", json={"member": name}).status == 201
        return name

    def fresh_team(self) -> str:
        self.count += 1
        name = f"team{self.count}"
        assert self.clients["orgowner"].post("organizations/acme/teams/", json={"team": name}).status == 201
        return name

    def fresh_team_member(self) -> tuple[str, str]:
        team, member = self.fresh_team(), self.fresh_member()
        path = f"organizations/acme/teams/{team}/members/"
        assert self.clients["orgowner"].post(path, json={"member": member}).status == 201
        return team, member


# action: (request, callers allowed, status when allowed, status when refused)
ACCOUNT_ACTIONS = {
    "read_subscription_of_a_person": (lambda c, w: c.get("subscriptions/alice/current/"), {"self"}, 200, 403),
    "read_subscription_of_an_organization": (lambda c, w: c.get("subscriptions/acme/current/"),
                                             ORG_PEOPLE, 200, 403),
    "create_project_for_a_person": (
        lambda c, w: c.post("projects/", json={"name": f"p-{uuid.uuid4()}", "owner": "alice"}),
        {"self"}, 201, 403),
    "create_project_for_an_organization": (
        lambda c, w: c.post("projects/", json={"name": f"p-{uuid.uuid4()}", "owner": "acme"}),
        ORG_STAFF | {"organization_creator"}, 201, 403),
    "use_an_upload_session": (lambda c, w: c.get(f"uploads/{w.upload[0]}/{w.upload[1]}/"),
                              {"self"}, 200, 404),  # someone else's session is not shown to exist
    "search_users": (lambda c, w: c.get("users/?q=al"), SIGNED_IN, 200, 403),
    "create_a_user": (lambda c, w: c.post("users/", data={
        "username": f"u{uuid.uuid4().hex[:8]}", "password": "long enough password",
        "email": f"{uuid.uuid4().hex[:8]}@example.com"}), {"staff"}, 201, 403),
    "set_a_password": (lambda c, w: c.post(f"users/{w.fresh('pw')}/password/", json={
        "new_password": "another long password"}), {"staff"}, 200, 403),
    "deactivate_a_person": (lambda c, w: c.post(f"users/{w.fresh('off')}/deactivate/"), {"staff"}, 200, 403),
    "activate_a_person": (lambda c, w: c.post(f"users/{w.fresh('on')}/activate/"), {"staff"}, 200, 403),
    "read_a_person": (lambda c, w: c.get("users/alice/"), SIGNED_IN, 200, 403),
    "read_an_organization": (lambda c, w: c.get("users/acme/"), ORG_PEOPLE, 200, 404),
    "update_a_person": (lambda c, w: c.patch("users/alice/", json={"first_name": "A"}), {"self"}, 200, 403),
    "update_an_organization": (lambda c, w: c.patch("users/acme/", json={"email": "x@acme.org"}),
                               ORG_STAFF, 200, 403),
    "list_organizations_of_a_person": (lambda c, w: c.get("users/alice/organizations/"), {"self"}, 200, 403),
    "create_an_organization": (lambda c, w: c.post("organizations/", json={
        "username": f"o{uuid.uuid4().hex[:8]}"}), SIGNED_IN, 201, 403),
    "list_members": (lambda c, w: c.get("members/acme/"), SIGNED_IN, 200, 403),
    "get_a_member": (lambda c, w: c.get("members/acme/plainmember/"), SIGNED_IN, 200, 403),
    "add_a_member": (lambda c, w: c.post("members/acme/", json={"member": w.fresh("new")}),
                     ORG_STAFF, 201, 403),
    "patch_a_member": (lambda c, w: c.patch(f"members/acme/{w.fresh_member()}/", json={"role": "admin"}),
                       ORG_STAFF, 200, 403),
    "put_a_member": (lambda c, w: c.put(f"members/acme/{w.fresh_member()}/", json={"role": "creator"}),
                     ORG_STAFF, 200, 403),
    "remove_a_member": (lambda c, w: c.delete(f"members/acme/{w.fresh_member()}/"), ORG_STAFF, 204, 403),
    "list_teams": (lambda c, w: c.get("organizations/acme/teams/"), SIGNED_IN, 200, 403),
    "get_a_team": (lambda c, w: c.get("organizations/acme/teams/crew/"), SIGNED_IN, 200, 403),
    "list_team_members": (lambda c, w: c.get("organizations/acme/teams/crew/members/"), SIGNED_IN, 200, 403),
    "create_a_team": (lambda c, w: c.post("organizations/acme/teams/", json={
        "team": f"t{uuid.uuid4().hex[:8]}"}), ORG_STAFF, 201, 403),
    "rename_a_team": (lambda c, w: c.put(f"organizations/acme/teams/{w.fresh_team()}/", json={
        "team": f"t{uuid.uuid4().hex[:8]}"}), ORG_STAFF, 200, 403),
    "patch_a_team": (lambda c, w: c.patch("organizations/acme/teams/crew/", json={"team": "x"}),
                     set(), 200, 403),  # nobody
    "delete_a_team": (lambda c, w: c.delete(f"organizations/acme/teams/{w.fresh_team()}/"),
                      ORG_STAFF, 204, 403),
    "add_a_team_member": (lambda c, w: c.post("organizations/acme/teams/crew/members/", json={
        "member": w.fresh_member()}), ORG_STAFF, 201, 403),
    "remove_a_team_member": (
        lambda c, w: c.delete("organizations/acme/teams/{}/members/{}/".format(*w.fresh_team_member())),
        ORG_STAFF, 204, 403),
}


@pytest.fixture
def account_world(users, api):
    clients = {name: users(name, is_staff=name == "root")
               for name in CALLER_NAMES.values() if name is not None}
    clients[None] = api.as_anonymous()
    boss = clients["orgowner"]
    assert boss.post("organizations/", json={"username": "acme"}).status == 201
    for name, role in (("orgadmin", "admin"), ("orgcreator", "creator"), ("plainmember", "member")):
        assert boss.post("members/acme/", json={"member": name, "role": role}).status == 201
    assert boss.post("organizations/acme/teams/", json={"team": "crew"}).status == 201
    alice = clients["alice"]
    pid = alice.create_project("shared")["id"]
    for name in sorted(set(clients) - {"alice", None}):  # all may upload: only the session is alice's
        added = alice.post(f"collaborators/{pid}/", json={"collaborator": name, "role": "editor"})
        assert added.status == 201
    upload_id = alice.post(f"uploads/{pid}/", json={"name": "big.tif", "size": 9}).json()["upload_id"]
    return AccountWorld(clients, (pid, upload_id))


@pytest.mark.parametrize("action", sorted(ACCOUNT_ACTIONS))
def test_account_permission_matrix(account_world, action):
    request, allowed, success, refused = ACCOUNT_ACTIONS[action]
    outcomes = {}
    for caller in ACCOUNT_CALLERS:
        reply = request(account_world.clients[CALLER_NAMES[caller]], account_world)
        if caller == "anonymous":
            expected = 401
        elif caller in allowed:
            expected = success
        else:
            expected = refused
        outcomes[caller] = (reply.status, expected)
    wrong = {caller: got for caller, (got, expected) in outcomes.items() if got != expected}
    assert not wrong, f"{action}: {outcomes}"


def test_only_oneself_sees_ones_email(account_world):
    clients = account_world.clients
    assert clients["alice"].get("users/alice/").json()["email"] == "alice@example.com"
    assert "email" not in clients["bob"].get("users/alice/").json()
    assert clients["root"].get("users/nobody/").status == 404
