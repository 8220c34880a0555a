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
    return server_info_json()
