"""The HTTP boundary: everything that knows a request or a response.

`routing` (how a URL reaches a view, and who the caller is), `request_data` (reading a body or a
query string into the typed inputs of `chalicelib.services.inputs`), `handlers/` (one blueprint
per resource: a request becomes a typed input, one service call, a response), `serializers` and
`outputs` (every response shape), `pagination` (pages of lists and their headers), `openapi` (the
document, generated from the routes' declarations) and `apidocs/` (Swagger UI and ReDoc's files).
Nothing below this layer sees a request.
"""
