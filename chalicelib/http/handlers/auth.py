from chalice import Response

from chalicelib.errors import TooManyLoginAttempts
from chalicelib.http import outputs as out
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import auth_providers_json, login_json, logout_json, user_json
from chalicelib.services import auth
from chalicelib.services.inputs import Login

router = Router(__name__)


LOGIN = Doc("Log in: a token for a username (or email) and password", returns=out.LoginOut, body=Login,
            auth="optional", errors=(TooManyLoginAttempts,))


@router.route("/auth/login/", methods=["POST"], doc=LOGIN)
@router.route("/auth/token/", methods=["POST"], doc=LOGIN)
def login(caller):
    """`caller` is not used: a stale token is refused even here (the router checks it), as
    QFieldCloud does."""
    request = router.request
    source_address = (request.context.get("identity") or {}).get("sourceIp")
    session = auth.login(body(request, Login), request.headers.get("user-agent", ""), source_address)
    return login_json(session)


@router.route("/auth/user/", doc=Doc("The caller", returns=out.UserOut))
def current_user(caller):
    return user_json(caller.user)


@router.route("/auth/logout/", methods=["GET", "POST"],
              doc=Doc("Log out: revoke all the caller's tokens", returns=out.LogoutOut, auth="optional"))
def logout(caller):
    if caller is not None:
        auth.revoke_all_tokens(caller.user)
    return Response(body=logout_json(), status_code=200)


@router.route("/auth/providers/", doc=Doc("How one logs in (deprecated: server/info/)",
                                          returns=list[out.AuthProviderOut], auth="none"))
def providers():
    return auth_providers_json()
