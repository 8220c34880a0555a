from chalice import Response

from chalicelib.errors import NotEnabled, ObjectAlreadyExists, TooManyLoginAttempts
from chalicelib.http import outputs as out
from chalicelib.http.client_address import client_address
from chalicelib.http.pagination import console_url
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import (
    auth_providers_json,
    detail_json,
    login_json,
    logout_json,
    tokens_json,
    user_json,
)
from chalicelib.services import auth, passwords
from chalicelib.services.inputs import (
    Login,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    SignUp,
)

router = Router(__name__)


LOGIN = Doc("Log in: a token for a username (or email) and password", returns=out.LoginOut, body=Login,
            auth="optional", errors=(TooManyLoginAttempts,))


@router.route("/auth/login/", methods=["POST"], doc=LOGIN)
@router.route("/auth/token/", methods=["POST"], doc=LOGIN)
def login(caller):
    """`caller` is not used: a stale token is refused even here (the router checks it), as
    QFieldCloud does."""
    request = router.request
    user_agent = request.headers.get("user-agent", "")
    session = auth.login(body(request, Login), user_agent, client_address(request))
    return login_json(session)


@router.route("/auth/signup/", methods=["POST"], doc=Doc(
    "Sign up: a new person, logged in at once (when the operator enables it)", returns=out.LoginOut,
    status=201, body=SignUp, auth="none", errors=(NotEnabled, ObjectAlreadyExists)))
def sign_up():
    request = router.request
    session = auth.sign_up(body(request, SignUp), request.headers.get("user-agent", ""))
    return Response(body=login_json(session), status_code=201)


@router.route("/auth/password/change/", methods=["POST"], doc=Doc(
    "Change one's own password: every other token of the caller is revoked", returns=out.DetailOut,
    body=PasswordChange, errors=(TooManyLoginAttempts,)))
def change_password(caller):
    request = router.request
    passwords.change_own(caller, body(request, PasswordChange), client_address(request))
    return detail_json("Your password is changed; your other sessions are signed out.")


@router.route("/auth/password/reset/", methods=["POST"], doc=Doc(
    "Ask for a password reset link by e-mail (when the operator configures a sender)",
    returns=out.DetailOut, status=202, body=PasswordResetRequest, auth="none", errors=(NotEnabled,),
    description="The answer is the same whether or not the account exists."))
def request_password_reset():
    request = router.request
    passwords.request_reset(body(request, PasswordResetRequest), console_url(request))
    return Response(body=detail_json("If the account exists and has an e-mail address, a reset link "
                                     "is on its way there."), status_code=202)


@router.route("/auth/password/reset/confirm/", methods=["POST"], doc=Doc(
    "Set a new password with the token of a reset link: every token of the account is revoked",
    returns=out.DetailOut, body=PasswordResetConfirm, auth="none", errors=(NotEnabled,)))
def confirm_password_reset():
    passwords.confirm_reset(body(router.request, PasswordResetConfirm))
    return detail_json("Your password is set; log in with it.")


@router.route("/auth/tokens/", doc=Doc("The caller's tokens (their ids, never their keys)",
                                       returns=list[out.TokenOut]))
def list_tokens(caller):
    return tokens_json(auth.tokens_of(caller), caller.token_hash)


@router.route("/auth/tokens/{token_id}/", methods=["DELETE"], doc=Doc("Revoke one of the caller's tokens",
                                                                       status=204))
def revoke_token(caller, token_id):
    auth.revoke_token(caller, token_id)
    return Response(body="", status_code=204)


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
