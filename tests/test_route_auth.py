"""Every route enforces the auth it declares (`Doc(auth=...)`, or `route(auth=...)` outside the
API), because the router resolves the caller from that declaration: a `token` operation without
a token is 401 `not_authenticated`, a token that is sent is checked wherever the declaration reads
one (a bad one is 401 `token_authentication_failed`), and a `none` operation does not read it.
Each operation of the app's route table is called, not a list written here."""

from __future__ import annotations

import re

import pytest

from chalicelib.http.routing import API_PREFIX, DOCS_ATTRIBUTE, FILENAME, UUID_PARAMS, Doc, Router

PLACEHOLDER = re.compile(r"\{([^}+]+)\+?\}")
METHODS_WITHOUT_BODY = ("GET", "HEAD", "DELETE", "OPTIONS")


def operations() -> list[tuple[str, str, str]]:
    """(method, path with sample parameters, declared auth) of every operation the app serves."""
    from app import app

    found = []
    for route, entries in app.routes.items():
        for method, entry in entries.items():
            declared = getattr(entry.view_function, DOCS_ATTRIBUTE, None)
            if declared is None:  # the 405 fallbacks
                continue
            found.append((method, PLACEHOLDER.sub(_sample, route), declared["auth"][method]))
    return sorted(found)


def _sample(match: re.Match) -> str:
    name = match.group(1)
    if name in UUID_PARAMS:
        return "3f0c2a2e-5a49-4ad5-9d1b-0c6f0a4d3b6e"
    return "some/file.txt" if name == FILENAME else "someone"


def call(api, method: str, path: str, token: str | None):
    client = api.with_token(token)
    url = "http://testserver" + path + "/"
    return client.request(method, url, data=None if method in METHODS_WITHOUT_BODY else {})


def test_the_operations_are_all_there(api):
    declared = {auth for _, _, auth in operations()}
    assert declared == {"token", "optional", "none"}
    assert len(operations()) > 60


@pytest.mark.parametrize(("method", "path", "auth"), operations())
def test_each_operation_enforces_the_auth_it_declares(api, method, path, auth):
    anonymous = call(api, method, path, None)
    bad_token = call(api, method, path, "not-a-token")
    if auth == "token":
        assert (anonymous.status, anonymous.code) == (401, "not_authenticated")
    else:
        assert anonymous.status != 401, anonymous.content
    if auth == "none":
        assert bad_token.status != 401, bad_token.content
    else:
        assert (bad_token.status, bad_token.code) == (401, "token_authentication_failed")


def test_an_api_route_declares_auth_in_its_doc_and_a_view_takes_the_caller_it_declares():
    router = Router("tests.example")
    with pytest.raises(ValueError):
        router.route(API_PREFIX + "/x/", doc=Doc("x"), auth="none")
    with pytest.raises(TypeError):
        router.route(API_PREFIX + "/y/", doc=Doc("y"))(lambda: None)  # a token route, no caller
    with pytest.raises(TypeError):
        router.route("/z/", auth="none")(lambda caller: None)


def test_a_view_reads_its_own_request_while_another_request_is_served(alice, monkeypatch):
    """Chalice keeps one `current_request` per app, and the local stack serves requests on many
    threads: a view must read the request it began with, however long resolving its caller took
    and whatever request came meanwhile."""
    import threading

    from chalicelib.http import routing

    resolving, release = threading.Event(), threading.Event()
    resolve = routing.tokens.caller_with_token

    # The gateway runs the function on a thread of its own (devstack/gateway.py): the first
    # request is told by its order, not by its client's thread.
    calls = []

    def slow_for_the_first(key):
        caller = resolve(key)
        calls.append(key)
        if len(calls) == 1:
            resolving.set()
            release.wait(30)
        return caller

    monkeypatch.setattr(routing.tokens, "caller_with_token", slow_for_the_first)
    replies = {}
    first = threading.Thread(name="first", target=lambda: replies.update(
        created=alice.post("projects/", json={"name": "mine"})))
    first.start()
    assert resolving.wait(30)
    assert alice.get("projects/").status == 200  # another request, while the first waits
    release.set()
    first.join(30)
    assert (replies["created"].status, replies["created"].json()["name"]) == (201, "mine")
