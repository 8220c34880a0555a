"""Whose address a request comes from, as the login lockout counts it (docs/security.md, "Login
lockout").

API Gateway's `sourceIp` is the address that opened the connection to it. Behind CloudFront
(infra/edge.py) that is one of CloudFront's servers, shared by everyone whose requests pass
through it: counted under it, a few wrong passwords sent through the same servers would lock an
account's owner out. So CloudFront tells the API who the viewer is: its viewer-request function
writes the viewer's address in `X-Qfc-Viewer-Address`, replacing any a viewer sent, and it adds
`X-Qfc-Edge-Secret`, the stack's secret, to every request it sends to API Gateway (an origin
custom header, which also replaces a viewer's header of that name).

API Gateway's own execute-api URL stays reachable, and a caller there may send both headers. So
the viewer's address is believed only on a request that carries the stack's secret
(`settings.edge_secret`); on any other, a forged or malformed one included, the address is the
caller's own `sourceIp`. Locally devstack/edge.py adds the same two headers as CloudFront.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from chalicelib.config import settings

VIEWER_ADDRESS_HEADER = "X-Qfc-Viewer-Address"
EDGE_SECRET_HEADER = "X-Qfc-Edge-Secret"


def client_address(request) -> str | None:
    """The address of the client that sent `request` (a Chalice request)."""
    source_ip = (request.context.get("identity") or {}).get("sourceIp")
    return address_of(request.headers, source_ip, settings.edge_secret)


def address_of(headers: Mapping[str, str], source_ip: str | None, edge_secret: str | None) -> str | None:
    """The viewer's address when `headers` (a Chalice request's: any case) carry `edge_secret`,
    otherwise `source_ip`."""
    if not edge_secret or not _is_secret(headers.get(EDGE_SECRET_HEADER, ""), edge_secret):
        return source_ip
    try:
        return str(ipaddress.ip_address(headers.get(VIEWER_ADDRESS_HEADER, "").strip()))
    except ValueError:
        return source_ip


def _is_secret(given: str, secret: str) -> bool:
    # In constant time, so that the answer's timing tells nobody how much of a guess was right;
    # a header's text may be anything, the secret is ASCII.
    return hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode())
