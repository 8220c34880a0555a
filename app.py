"""The Chalice app: builds it, registers the blueprints and the fallbacks, and wraps it as the
Lambda handler (`app.handler`: logs, metrics, traces). Nothing else.

Importing this module is most of the function's cold start. The garbage collector is held off
meanwhile: imports make tens of thousands of lasting objects and next to no garbage, and its
passes over them were a tenth of the import (bench/README.md, cold_start). What the import made
is then frozen out of later collections, which it would only slow down."""

import gc

gc.disable()

from chalice import Chalice  # noqa: E402

from chalicelib.adapters import background  # noqa: E402
from chalicelib.http.compression import fitting  # noqa: E402
from chalicelib.http.handlers import (  # noqa: E402
    apidocs,
    auth,
    collaborators,
    deltas,
    files,
    jobs,
    members,
    organizations,
    packages,
    projects,
    status,
    subscriptions,
    uploads,
    users,
)
from chalicelib.http.routing import API_PREFIX, add_method_fallbacks  # noqa: E402
from chalicelib.observability import lambda_handler  # noqa: E402

app = Chalice(app_name="qfc-serverless")
app.api.binary_types.append("multipart/form-data")

for resource in (auth, status, projects, collaborators, files, uploads, subscriptions, jobs, packages,
                 deltas, users, organizations, members):
    app.register_blueprint(resource.router.blueprint, url_prefix=API_PREFIX)
app.register_blueprint(apidocs.router.blueprint)  # /swagger/, /docs/, /swagger.yaml: outside the API

add_method_fallbacks(app)
# Answers fit Lambda's: compressed JSON, or a redirect to S3 beyond (chalicelib/http/compression.py).
handler = background.dispatching(lambda_handler(fitting(app)))

gc.freeze()
gc.enable()
