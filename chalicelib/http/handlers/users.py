from chalice import Response

from chalicelib.errors import ObjectAlreadyExists
from chalicelib.http import outputs as out
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import body, query
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import (
    account_json,
    account_state_json,
    detail_json,
    organization_json,
    public_user_json,
)
from chalicelib.services import organizations, passwords, users
from chalicelib.services.inputs import PasswordSet, UserCreate, UserSearchQuery, UserUpdate

router = Router(__name__)


@router.route("/users/", methods=["GET"], doc=Doc(
    "Search accounts by the start of their username", returns=list[out.PublicUserOut], query=UserSearchQuery,
    paginated=True))
def search_users(caller):
    request = router.request
    found = users.search(caller, query(request, UserSearchQuery))
    return paginate(request, found, lambda page: [public_user_json(user) for user in page])


@router.route("/users/", methods=["POST"], doc=Doc(
    "Create a person (staff only)", returns=out.PublicUserOut, status=201, body=UserCreate,
    errors=(ObjectAlreadyExists,)))
def create_user(caller):
    request = router.request
    user = users.create_person(caller, body(request, UserCreate))
    return Response(body=public_user_json(user), status_code=201)


@router.route("/users/{username}/", methods=["GET"], doc=Doc("An account", returns=out.AccountOut))
def get_user(caller, username):
    return account_json(users.account_view(caller, username))


@router.route("/users/{username}/", methods=["PUT", "PATCH"], doc=Doc(
    "Change oneself, or an organization one manages", returns=out.AccountOut, body=UserUpdate))
def update_user(caller, username):
    request = router.request
    return account_json(users.update_account(caller, username, body(request, UserUpdate)))


@router.route("/users/{username}/organizations/", doc=Doc("The caller's own organizations",
                                                         returns=list[out.OrganizationOut]))
def user_organizations(caller, username):
    return [organization_json(view) for view in organizations.organizations_of(caller, username)]


@router.route("/users/{username}/password/", methods=["POST"], doc=Doc(
    "Set a person's password (staff only): every token of theirs is revoked", returns=out.DetailOut,
    body=PasswordSet))
def set_password(caller, username):
    user = passwords.set_by_staff(caller, username, body(router.request, PasswordSet))
    return detail_json(f"The password of {user.username} is set; their sessions are signed out.")


@router.route("/users/{username}/deactivate/", methods=["POST"], doc=Doc(
    "Deactivate a person (staff only): they cannot log in and their tokens are revoked",
    returns=out.AccountStateOut))
def deactivate_user(caller, username):
    return account_state_json(users.set_active(caller, username, active=False))


@router.route("/users/{username}/activate/", methods=["POST"], doc=Doc(
    "Activate a deactivated person again (staff only)", returns=out.AccountStateOut))
def activate_user(caller, username):
    return account_state_json(users.set_active(caller, username, active=True))
