from .. import accounts, auth, quota
from ..errors import PermissionDenied
from ..routing import Router
from ..serializers import subscription_json

router = Router(__name__)


@router.route("/subscriptions/{username}/current/")
def current_subscription(username):
    caller = auth.require_caller(router.request)
    if accounts.user_key(username) != caller.key:
        raise PermissionDenied("You can only see your own subscription.")
    user = caller.user
    return subscription_json(user, quota.quota_bytes(user))
