from .. import auth, health
from ..routing import Router

router = Router(__name__)


@router.route("/status/")
def status():
    auth.optional_caller(router.request)
    return health.status()


@router.route("/server/info/")
def server_info():
    auth.optional_caller(router.request)
    return health.server_info()
