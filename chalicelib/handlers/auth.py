from chalice import Response

from .. import auth
from ..inputs import Login
from ..request_data import body
from ..routing import Router
from ..serializers import auth_providers_json, login_json, user_json

router = Router(__name__)


@router.route("/auth/login/", methods=["POST"])
@router.route("/auth/token/", methods=["POST"])
def login():
    request = router.request
    auth.optional_caller(request)  # a stale token is refused even here, as QFieldCloud does
    source_address = (request.context.get("identity") or {}).get("sourceIp")
    session = auth.login(body(request, Login), request.headers.get("user-agent", ""), source_address)
    return login_json(session)


@router.route("/auth/user/")
def current_user():
    return user_json(auth.require_caller(router.request).user)


@router.route("/auth/logout/", methods=["GET", "POST"])
def logout():
    caller = auth.optional_caller(router.request)
    if caller is not None:
        auth.revoke_all_tokens(caller.user)
    return Response(body={"detail": "Successfully logged out."}, status_code=200)


@router.route("/auth/providers/")
def providers():
    return auth_providers_json()
