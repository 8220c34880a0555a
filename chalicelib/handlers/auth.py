from chalice import Response

from .. import accounts, auth
from ..request_data import body_fields, get_str
from ..routing import Router
from ..serializers import login_json, user_json

router = Router(__name__)


@router.route("/auth/login/", methods=["POST"])
@router.route("/auth/token/", methods=["POST"])
def login():
    request = router.request
    auth.optional_caller(request)  # a stale token is refused even here, as QFieldCloud does
    data = body_fields(request)
    password = get_str(data, "password", required=True)
    user = accounts.authenticate_credentials(
        get_str(data, "username"), get_str(data, "email"), password
    )
    key, token = auth.issue_token(user, request.headers.get("user-agent", ""))
    return login_json(user, key, token.expires_at)


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
    return [{"type": "credentials", "id": "credentials", "name": "Username / Password"}]
