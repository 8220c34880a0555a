"""Limit/offset pagination as QFieldCloud does it (reference §8).

Without a positive `limit` the whole list comes back. With one, the body is the bare page and the
headers carry `X-Total-Count`, `X-Next-Page` (only when another page exists) and
`X-Previous-Page` (only when `offset > 0`; its URL drops `offset` when it would be 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from chalice import Response

from .config import settings
from .request_data import query_param

T = TypeVar("T")
# ASCII digits only (`str.isdigit` also accepts `²`, which `int` refuses), and few enough of them.
PAGE_NUMBER = re.compile(r"^\s*([0-9]{1,15})\s*$")


def _positive_int(value: str | None) -> int | None:
    """A positive number, or None for anything else (ignored, as QFieldCloud does)."""
    match = PAGE_NUMBER.match(value or "")
    number = int(match.group(1)) if match else 0
    return number if number > 0 else None


def request_url(request) -> tuple[str, list[tuple[str, str]]]:
    """The absolute URL of this request (without query), and its query pairs.

    Built from the configured public URL, or from the domain API Gateway reports for the request
    (`requestContext.domainName`, always HTTPS), never from the client's `Host` or
    `X-Forwarded-*` headers, which anyone can set."""
    context = request.context or {}
    if settings.public_url:
        path = request.to_original_event().get("path") or context.get("path") or ""
        base = settings.public_url.rstrip("/") + path
    elif context.get("domainName"):
        base = f"https://{context['domainName']}{context.get('path') or ''}"
    else:
        base = context.get("path") or ""
    params = request.query_params or {}
    pairs = [(key, value) for key in params for value in params.getlist(key)]
    return base, pairs


def _page_url(request, limit: int, offset: int) -> str:
    base, pairs = request_url(request)
    pairs = [(key, value) for key, value in pairs if key not in ("limit", "offset")]
    pairs.append(("limit", str(limit)))
    if offset > 0:
        pairs.append(("offset", str(offset)))
    return f"{base}?{urlencode(pairs)}"


def paginate(
    request,
    items: Sequence[T],
    render: Callable[[Sequence[T]], list[Any]],
) -> Response:
    """Answer with `items` (or the requested page of them); only the page is rendered."""
    limit = _positive_int(query_param(request, "limit"))
    if limit is None:
        return Response(body=render(items), status_code=200)
    offset = _positive_int(query_param(request, "offset")) or 0
    total = len(items)
    headers = {"X-Total-Count": str(total)}
    if offset + limit < total:
        headers["X-Next-Page"] = _page_url(request, limit, offset + limit)
    if offset > 0:
        headers["X-Previous-Page"] = _page_url(request, limit, max(offset - limit, 0))
    page = items[offset:offset + limit]
    return Response(body=render(page), status_code=200, headers=headers)
