"""The web console's built files (`console/dist/`, made by `./dev`: scripts/build_console.sh),
served at `/` by the local stack beside the API, as CloudFront serves them from S3 on AWS.

Only GET and HEAD of `/`, `/index.html`, `/favicon.svg` and `/assets/...` are answered here;
everything else goes on to the API gateway unchanged. The files carry the console's security
headers (`console/security-headers.json`: a Content-Security-Policy that allows no inline script
and no other origin than ours and the S3 endpoint of presigned URLs).
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONSOLE = Path(__file__).resolve().parent.parent / "console"
DIST = CONSOLE / "dist"
HEADERS_FILE = CONSOLE / "security-headers.json"
TOP_LEVEL_FILES = {"/": "index.html", "/index.html": "index.html", "/favicon.svg": "favicon.svg"}
# Assets are named by their content's hash: a browser may keep them; the page is asked for anew.
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"


def security_headers(storage_url: str) -> dict[str, str]:
    """The console's security headers, with the origin of `storage_url` (the S3 endpoint)."""
    parts = urlsplit(storage_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    raw = json.loads(HEADERS_FILE.read_text())
    return {name: value.replace("{storage}", origin)
            for name, value in raw.items() if not name.startswith("_")}


def _file_for(path: str, dist: Path) -> Path | None:
    if path in TOP_LEVEL_FILES:
        return dist / TOP_LEVEL_FILES[path]
    if path.startswith("/assets/"):
        candidate = (dist / path.lstrip("/")).resolve()
        if candidate.is_relative_to((dist / "assets").resolve()):
            return candidate
    return None


def with_console(api_application, storage_url: str, dist: Path = DIST):
    """A WSGI application serving the console's files and handing every other request to
    `api_application`."""
    headers = list(security_headers(storage_url).items())

    def application(environ: dict[str, Any], start_response):
        found = _file_for(environ.get("PATH_INFO") or "/", dist)
        if found is None or environ["REQUEST_METHOD"] not in ("GET", "HEAD") or not found.is_file():
            return api_application(environ, start_response)
        body = found.read_bytes()
        content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "svg+xml")):
            content_type += "; charset=utf-8"
        start_response("200 OK", [
            ("Content-Type", content_type), ("Content-Length", str(len(body))),
            ("Cache-Control", ASSET_CACHE if found.parent.name == "assets" else PAGE_CACHE), *headers,
        ])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    return application
