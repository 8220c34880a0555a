"""The Chalice app: builds it, registers the blueprints and the fallbacks, and wraps it as the
Lambda handler (`app.handler`: logs, metrics, traces). Nothing else."""

from chalice import Chalice

from chalicelib.adapters import background
from chalicelib.http.handlers import (
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
from chalicelib.http.routing import API_PREFIX, add_method_fallbacks
from chalicelib.observability import lambda_handler

app = Chalice(app_name="qfc-serverless")
app.api.binary_types.append("multipart/form-data")

for resource in (auth, status, projects, collaborators, files, uploads, subscriptions, jobs, packages,
                 deltas, users, organizations, members):
    app.register_blueprint(resource.router.blueprint, url_prefix=API_PREFIX)
app.register_blueprint(apidocs.router.blueprint)  # /swagger/, /docs/, /swagger.yaml: outside the API

add_method_fallbacks(app)
handler = background.dispatching(lambda_handler(app))
