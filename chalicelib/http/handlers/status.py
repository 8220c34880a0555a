from chalice import Response

from chalicelib.config import settings
from chalicelib.http import outputs as out
from chalicelib.http.pagination import console_url
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import server_info_json, status_json
from chalicelib.services import health

router = Router(__name__)


@router.route("/status/", doc=Doc("Whether the database and the storage answer", returns=out.StatusOut,
                                  auth="optional"))
def status(caller):
    """`caller` is not used: a bad token is refused even here (the router checks it)."""
    return status_json(health.check())


@router.route("/server/info/", doc=Doc("The server's name and login methods", returns=out.ServerInfoOut,
                                       auth="optional"))
def server_info(caller):
    """`caller` is not used: a bad token is refused even here (the router checks it)."""
    signup_url = console_url(router.request) + "#/signup" if settings.signup_enabled else None
    info = server_info_json(signup_url, password_reset_enabled=settings.mail_sender is not None)
    # QFieldCloud caches this page for 60 s; clients may too.
    return Response(body=info, status_code=200, headers={"Cache-Control": "max-age=60"})
