from .. import accounts, auth
from ..routing import Router
from ..serializers import subscription_json

router = Router(__name__)


@router.route("/subscriptions/{username}/current/")
def current_subscription(username):
    caller = auth.require_caller(router.request)
    return subscription_json(accounts.subscription(caller.user, username))
