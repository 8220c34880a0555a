from chalicelib.http import outputs as out
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import subscription_json
from chalicelib.services import accounts

router = Router(__name__)


@router.route("/subscriptions/{username}/current/",
              doc=Doc("The plan and storage of oneself or of one's organization",
                      returns=out.SubscriptionOut))
def current_subscription(caller, username):
    return subscription_json(accounts.subscription(caller.user, username))
