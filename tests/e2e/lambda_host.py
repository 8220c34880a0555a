"""Runs a deployed Lambda package's handler behind the local API Gateway, as API Gateway and Lambda
run the function on AWS:

    python -S tests/e2e/lambda_host.py PACKAGE_DIR SHIM_DIR PORT

Started with `-S` (no site-packages) and `-E` (no PYTHONPATH): nothing of the development
environment can be imported but what the package holds, and from SHIM_DIR the local gateway
(devstack's, which turns HTTP requests into the events API Gateway sends) and its HTTP server
(waitress). A module the package lacks fails here as it would on Lambda.
"""

import sys

package, shim, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:1] = [package, shim]

from app import app, handler  # noqa: E402  (the package's, by the path above)
from devstack.gateway import ApiGateway  # noqa: E402
from devstack.http_server import make_server  # noqa: E402

server = make_server(ApiGateway(app, handler, stage="api"), "127.0.0.1", port, quiet=True)
print(f"serving {package} on {port}", flush=True)
server.serve_forever()
