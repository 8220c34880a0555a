from chalice import Response

from chalicelib.http import outputs as out
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
    # QFieldCloud caches this page for 60 s; clients may too.
    return Response(body=server_info_json(), status_code=200, headers={"Cache-Control": "max-age=60"})
