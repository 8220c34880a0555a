"""What every download endpoint shares: reading how the client asks for bytes, and answering
with the redirect (or 304) that `files.serve` decided."""

from chalice import Response

from ..files import Served
from ..inputs import FileDownload
from ..request_data import query_param


def download_request(request) -> FileDownload:
    headers = request.headers
    return FileDownload(
        version=query_param(request, "version", "version_id") or headers.get("x-file-version"),
        range=headers.get("range"),
        if_none_match=headers.get("if-none-match"),
        user_agent=headers.get("user-agent", ""),
    )


def download_response(served: Served) -> Response:
    if served.url is None:
        return Response(body="", status_code=304, headers={"ETag": served.etag})
    return Response(body="", status_code=302,
                    headers={"Location": served.url, "ETag": served.etag, "Accept-Ranges": "bytes"})
