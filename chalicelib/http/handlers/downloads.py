"""What every download endpoint shares: reading how the client asks for bytes, and answering
with the redirect (or 304) that `files.serve` decided."""

from chalice import Response

from chalicelib.errors import InvalidHttpRange
from chalicelib.http.request_data import query
from chalicelib.http.routing import Doc
from chalicelib.services.files import Served
from chalicelib.services.inputs import FileDownload, VersionQuery

DOWNLOAD_HEADERS = {
    "Range": "`bytes=<first>-` or `bytes=<first>-<last>`: the redirect leads to those bytes",
    "If-None-Match": "The `md5sum` the client has: 304 if it is the current one",
    "x-file-version": "The version to download (as `version`)",
}


def download_doc(summary: str) -> Doc:
    return Doc(summary, status=302, query=VersionQuery, headers=DOWNLOAD_HEADERS,
               errors=(InvalidHttpRange,),
               description="302 to a presigned URL, valid 10 minutes, that needs no auth header.",
               other_responses={304: "Not modified: `If-None-Match` names the current version"})


def download_request(request) -> FileDownload:
    headers = request.headers
    return FileDownload(
        version=query(request, VersionQuery).wanted or headers.get("x-file-version"),
        range=headers.get("range"),
        if_none_match=headers.get("if-none-match"),
        user_agent=headers.get("user-agent", ""),
    )


def download_response(served: Served) -> Response:
    if served.url is None:
        return Response(body="", status_code=304, headers={"ETag": served.etag})
    return Response(body="", status_code=302,
                    headers={"Location": served.url, "ETag": served.etag, "Accept-Ranges": "bytes"})
