from chalice import Response

from .. import auth, health
from ..routing import Router
from ..serializers import server_info_json, status_json

router = Router(__name__)


@router.route("/status/")
def status():
    auth.optional_caller(router.request)
    return status_json(health.check())


@router.route("/server/info/")
def server_info():
    auth.optional_caller(router.request)
    # QFieldCloud caches this page for 60 s; clients may too.
    return Response(body=server_info_json(), status_code=200, headers={"Cache-Control": "max-age=60"})
