"""Limit/offset pagination as QFieldCloud does it (docs/api.md, "Conventions"), at the cost of
one page.

Without a positive `limit` the whole list comes back, without headers. With one, the body is the
bare page and the headers carry `X-Total-Count`, `X-Next-Page` (only when another page exists)
and `X-Previous-Page` (only when `offset > 0`; its URL drops `offset` when it would be 0).

Lists kept in DynamoDB (a `Listing`) are read in key order, one Query a page:
- `X-Next-Page` carries `limit`, `offset` and `cursor`, the key of the page's last item: a client
  that follows the URL gets the next page with one Query, and sees every item once even when
  others are added or removed meanwhile.
- Clients that build their own URLs (the SDK keeps only `limit` and `offset` of X-Next-Page,
  QField adds 250 to its offset) are served from a bookmark this process keeps of where the
  pages it served end, while the list has the same length; otherwise the keys before the offset
  are counted (one COUNT Query per MB of items skipped).
- `X-Total-Count` is the listing's counter.
- The whole list is read a Query page at a time and rendered into the body as it comes.
Lists merged from several partitions in the order of one string key (a `KeyOrdered`: projects in
the default order) are paged the same way, with that key in the cursor and the bookmarks; with no
counter to offer, `X-Total-Count` is exact on the last page and a lower bound before it (the items
up to the page's end, plus one), and an offset without cursor or bookmark is found by reading the
items before it (cost O(offset)). A bookmark of such a list follows its key, not its length.
Lists assembled in memory (projects filtered or in another order) are sliced.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from chalice import Response

from chalicelib.config import settings
from chalicelib.http.request_data import query_param
from chalicelib.models.listing import END, Key, KeyOrdered, Listing
from chalicelib.models.shapes import compact_json

T = TypeVar("T")


@dataclass(frozen=True)
class JsonItems:
    """Items rendered ahead as JSON text: each item's JSON, comma-separated, without the array's
    brackets. A body is made of such texts as they are (a whole list, by joining them once)."""

    text: str


# A page's rendering: its JSON-ready values, or their JSON text.
Render = Callable[[Sequence[T]], list[Any] | JsonItems]

# ASCII digits only (`str.isdigit` also accepts `²`, which `int` refuses), and few enough of them.
PAGE_NUMBER = re.compile(r"^\s*([0-9]{1,15})\s*$")
RENDER_BATCH = 100  # items rendered (and held as objects) at a time for a whole list
MAX_CURSOR_CHARS = 2048
BOOKMARK_SECONDS = 600
MAX_BOOKMARKS = 1024


def _positive_int(value: str | None) -> int | None:
    """A positive number, or None for anything else (ignored, as QFieldCloud does)."""
    match = PAGE_NUMBER.match(value or "")
    number = int(match.group(1)) if match else 0
    return number if number > 0 else None


@dataclass(frozen=True)
class PageRequest:
    """What a list request asks for: a page (`limit`, `offset`, maybe a `cursor`) or, without
    `limit`, everything."""

    limit: int | None
    offset: int
    cursor: str | None

    @classmethod
    def of(cls, request) -> PageRequest:
        return cls(_positive_int(query_param(request, "limit")),
                   _positive_int(query_param(request, "offset")) or 0,
                   query_param(request, "cursor"))


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


def console_url(request) -> str:
    """The web console's address: the server root (what comes before `/api/v1/`), with `/`."""
    url, _ = request_url(request)
    return url.split("/api/v1/", 1)[0].split("/api/v1", 1)[0] + "/"


def _page_url(request, limit: int, offset: int, cursor: str | None = None) -> str:
    base, pairs = request_url(request)
    pairs = [(key, value) for key, value in pairs if key not in ("limit", "offset", "cursor")]
    pairs.append(("limit", str(limit)))
    if offset > 0:
        pairs.append(("offset", str(offset)))
    if cursor:
        pairs.append(("cursor", cursor))
    return f"{base}?{urlencode(pairs)}"


def _headers(request, page: PageRequest, total: int, next_cursor: str | None = None) -> dict[str, str]:
    limit, offset = page.limit or 0, page.offset
    headers = {"X-Total-Count": str(total)}
    if offset + limit < total:
        headers["X-Next-Page"] = _page_url(request, limit, offset + limit, next_cursor)
    if offset > 0:
        headers["X-Previous-Page"] = _page_url(request, limit, max(offset - limit, 0))
    return headers


def paginate(request, items: Sequence[T] | Listing | KeyOrdered, render: Render) -> Response:
    """Answer with the list (or the requested page of it); only what is answered is rendered."""
    page = PageRequest.of(request)
    if isinstance(items, Listing):
        return _paginate_listing(request, page, items, render)
    if isinstance(items, KeyOrdered):
        return _paginate_ordered(request, page, items, render)
    if page.limit is None:
        return _page_response(render(items))
    return _page_response(render(items[page.offset:page.offset + page.limit]),
                          _headers(request, page, len(items)))


def _page_response(rendered: list[Any] | JsonItems, headers: dict[str, str] | None = None) -> Response:
    if isinstance(rendered, JsonItems):
        return json_text_response(f"[{rendered.text}]", headers)
    return Response(body=rendered, status_code=200, headers=headers or {})


def json_text_response(text: str, headers: dict[str, str] | None = None, status_code: int = 200) -> Response:
    """A body that is JSON text already: Chalice sends text as it is, labelled here."""
    return Response(body=text, status_code=status_code,
                    headers={**(headers or {}), "Content-Type": "application/json"})


# --- Lists kept in DynamoDB -----------------------------------------------------------------


def _paginate_listing(request, page: PageRequest, listing: Listing, render: Render) -> Response:
    if page.limit is None:
        return json_text_response(_json_array(listing, render))
    total = listing.count()
    if page.offset >= total:
        return Response(body=[], status_code=200, headers=_headers(request, page, total))
    start = _start_of(listing, page, total)
    items, last = ([], None) if start is END else listing.page(start, page.limit)
    next_offset = page.offset + page.limit
    next_cursor = None
    if last is not None and len(items) == page.limit and next_offset < total:
        _bookmarks.keep(listing.identity, next_offset, total, last)
        next_cursor = encode_cursor(next_offset, listing.without_partition(last))
    return _page_response(render(items), _headers(request, page, total, next_cursor))


def _start_of(listing: Listing, page: PageRequest, total: int):
    """The key the requested page starts after: the cursor's, a bookmark's, or counted."""
    if page.offset == 0:
        return None
    if page.cursor:
        rest = decode_cursor(page.cursor, page.offset, listing.start_attributes())
        if rest is not None:
            return listing.start_key(rest)
    bookmark = _bookmarks.find(listing.identity, page.offset, total)
    if bookmark is not None:
        return bookmark
    start = listing.skip(page.offset)
    if start is not None and start is not END:
        _bookmarks.keep(listing.identity, page.offset, total, start)
    return start


# --- Lists in the order of one key, merged -------------------------------------------------

ORDER_KEY = "key"  # the cursor's one attribute for a KeyOrdered list
MAX_ORDER_KEY_BYTES = 1024  # DynamoDB's limit for a range key


def _paginate_ordered(request, page: PageRequest, items: KeyOrdered, render: Render) -> Response:
    if page.limit is None:
        return json_text_response(_json_array(items, render))
    after, before = _ordered_start(items, page)
    if before < page.offset:  # the list ends before the offset
        return Response(body=[], status_code=200, headers=_headers(request, page, before))
    found, last, more = items.page(after, page.limit)
    next_offset = page.offset + page.limit
    next_cursor = None
    if more and last is not None:
        key = {ORDER_KEY: {"S": last}}
        _bookmarks.keep(items.identity, next_offset, None, key)
        next_cursor = encode_cursor(next_offset, key)
    total = page.offset + len(found) + (1 if more else 0)
    return _page_response(render(found), _headers(request, page, total, next_cursor))


def _ordered_start(items: KeyOrdered, page: PageRequest) -> tuple[str | None, int]:
    """The key the requested page starts after (the cursor's, a bookmark's, or read up to), and
    how many items precede it (fewer than the offset only when the list is shorter)."""
    if page.offset == 0:
        return None, 0
    key = decode_cursor(page.cursor, page.offset, frozenset({ORDER_KEY})) if page.cursor else None
    if key is None:
        key = _bookmarks.find(items.identity, page.offset, None)
    if key is not None:
        value = key[ORDER_KEY]["S"]
        if value and len(value.encode()) <= MAX_ORDER_KEY_BYTES:
            return value, page.offset
    after, before = items.skip(page.offset)
    if after is not None and before == page.offset:
        _bookmarks.keep(items.identity, page.offset, None, {ORDER_KEY: {"S": after}})
    return after, before


def _json_array(listing: Listing | KeyOrdered, render: Render) -> str:
    """The whole list as a JSON array, rendered RENDER_BATCH items at a time while the Query pages
    arrive: no more than a page of items is held as objects."""
    parts: list[str] = []
    batch: list = []

    def flush() -> None:
        if batch:
            rendered = render(batch)
            text = rendered.text if isinstance(rendered, JsonItems) else compact_json(rendered)[1:-1]
            if text:
                parts.append(text)
            batch.clear()

    for item in listing:
        batch.append(item)
        if len(batch) == RENDER_BATCH:
            flush()
    flush()
    if not parts:
        return "[]"
    parts[0] = "[" + parts[0]  # the brackets, without another copy of the whole
    parts[-1] += "]"
    return ",".join(parts)


# --- Cursors --------------------------------------------------------------------------------


def encode_cursor(offset: int, key: Key) -> str:
    """An opaque token: the offset it stands for and the key the page at that offset follows
    (without the partition, which the list supplies)."""
    data = json.dumps({"o": offset, "k": key}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _is_key_value(value: Any) -> bool:
    return (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N")
            and isinstance(next(iter(value.values())), str))


def decode_cursor(cursor: str, offset: int, attributes: frozenset[str]) -> Key | None:
    """The key in `cursor` if it is one for this offset and list's key attributes; None for
    anything else (the offset then decides, as for a client that sent no cursor)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("o") != offset or not isinstance(data.get("k"), dict):
        return None
    key = data["k"]
    if set(key) != attributes or not all(_is_key_value(value) for value in key.values()):
        return None
    return key


# --- Bookmarks ------------------------------------------------------------------------------


class _Bookmarks:
    """Where pages served by this process end: (list, offset) → the key the next page follows,
    valid while the list keeps the length it had then (`total`; None for a KeyOrdered list, whose
    pages follow keys), for BOOKMARK_SECONDS. A client paging by offset alone (the SDK, QField)
    then costs a page's reads on a warm process; a cold one counts instead. Never more than
    MAX_BOOKMARKS."""

    def __init__(self) -> None:
        self._marks: OrderedDict[tuple[str, int], tuple[int | None, float, Key]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, identity: str, offset: int, total: int | None, key: Key) -> None:
        with self._lock:
            self._marks[(identity, offset)] = (total, time.monotonic() + BOOKMARK_SECONDS, key)
            self._marks.move_to_end((identity, offset))
            while len(self._marks) > MAX_BOOKMARKS:
                self._marks.popitem(last=False)

    def find(self, identity: str, offset: int, total: int | None) -> Key | None:
        with self._lock:
            mark = self._marks.get((identity, offset))
            if mark is None:
                return None
            kept_total, expires, key = mark
            if kept_total != total or expires < time.monotonic():
                del self._marks[(identity, offset)]
                return None
            return key

    def clear(self) -> None:
        with self._lock:
            self._marks.clear()


_bookmarks = _Bookmarks()
