"""Which client sent a request, from its User-Agent: the QField app, the SDK/CLI, QGIS with
QFieldSync, a browser. Tokens remember the client they were issued to."""

from __future__ import annotations

import re

QFIELD = "qfield"
QGIS_USER_AGENT = re.compile(r" QGIS/[34]\d{4}(/.*)?$")
BROWSER_USER_AGENT = re.compile(r"Mozilla/5\.0 .*(AppleWebKit/.*\(KHTML, like Gecko\)|Firefox/)")


def client_type_for(user_agent: str) -> str:
    if not user_agent:
        return "unknown"
    for prefix in (QFIELD, "sdk", "cli"):
        if user_agent.startswith(prefix + "|"):
            return prefix
    if QGIS_USER_AGENT.search(user_agent):
        return "qfieldsync"
    if BROWSER_USER_AGENT.search(user_agent):
        return "browser"
    return "unknown"


def is_qfield(user_agent: str) -> bool:
    return client_type_for(user_agent) == QFIELD
