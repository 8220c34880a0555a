"""Latency of each endpoint on the real local stack, over HTTP as a client sees it.

    .venv/bin/python -m bench.api_latency [--requests 50]

The stack (`python -m devstack run`: waitress serving the local API Gateway, moto's server as
AWS) runs without its job worker in a temporary folder. A user with one project of 10 small
files is set up through the API; then each endpoint is called `--requests` times (after 3
warm-up calls), one request at a time, each on a new connection as the CLI makes them, and one
on a connection kept alive from request to request, as a browser or QField keeps it. Prints
p50, p99 and mean in milliseconds per endpoint, and one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from bench.common import json_line, percentile, table
from tests.e2e.stack import ADMIN_PASSWORD, LocalStack

WARM_UP = 3
FILES = 10
LOGIN_PASSWORD = "bench-login-password"


class Client:
    def __init__(self, stack: LocalStack):
        self.api = stack.url
        self.root = stack.url.removesuffix("/api/v1/")
        self.token = self.login()
        self.headers = {"Authorization": f"Token {self.token}"}

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        credentials = {"username": username, "password": password}
        reply = requests.post(self.api + "auth/login/", json=credentials, timeout=60)
        reply.raise_for_status()
        return reply.json()["token"]

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.api + path
        reply = requests.request(method, url, headers=self.headers, timeout=60, allow_redirects=False,
                                 **kwargs)
        assert reply.status_code < 400, (method, path, reply.status_code, reply.text[:300])
        return reply


def endpoints(client: Client) -> dict[str, Callable[[], object]]:
    pid = client.call("POST", "projects/", json={"name": "latency"}).json()["id"]
    for index in range(FILES):
        client.call("POST", f"files/{pid}/data/f{index}.csv/", files={"file": ("f.csv", b"a,b\n1,2\n")})
    names = (f"p{index}" for index in itertools.count())
    call = client.call
    # Logins of their own user: a person keeps a bounded number of tokens, so logging in again
    # and again would revoke the one the other requests use.
    call("POST", "users/", json={"username": "login", "password": LOGIN_PASSWORD, "email": "l@example.org"})
    kept_alive = requests.Session()
    return {
        "GET status/": lambda: call("GET", "status/"),
        "POST auth/login/": lambda: client.login("login", LOGIN_PASSWORD),
        "GET auth/user/": lambda: call("GET", "auth/user/"),
        "GET projects/": lambda: call("GET", "projects/"),
        "POST projects/": lambda: call("POST", "projects/", json={"name": next(names)}),
        "GET projects/<id>/": lambda: call("GET", f"projects/{pid}/"),
        "PATCH projects/<id>/": lambda: call("PATCH", f"projects/{pid}/", json={"description": "x"}),
        "GET files/<id>/ (10 files)": lambda: call("GET", f"files/{pid}/"),
        "POST files/<id>/<name>/ (1 KiB)": lambda: call("POST", f"files/{pid}/data/new.csv/",
                                                        files={"file": ("new.csv", b"x" * 1024)}),
        "GET files/<id>/<name>/ (302)": lambda: call("GET", f"files/{pid}/data/f0.csv/"),
        "GET files/metadata/<id>/<name>/": lambda: call("GET", f"files/metadata/{pid}/data/f0.csv/"),
        "GET collaborators/<id>/": lambda: call("GET", f"collaborators/{pid}/"),
        "GET jobs/?project_id=": lambda: call("GET", "jobs/", params={"project_id": pid}),
        "GET deltas/<id>/": lambda: call("GET", f"deltas/{pid}/"),
        "GET users/?q=": lambda: call("GET", "users/", params={"q": "ad"}),
        "GET subscriptions/<me>/current/": lambda: call("GET", "subscriptions/admin/current/"),
        "GET /swagger.json": lambda: call("GET", client.root + "/swagger.json"),
        "GET auth/providers/ (kept alive)": lambda: kept_alive.get(client.api + "auth/providers/",
                                                                   timeout=60).raise_for_status(),
    }


def measure(request: Callable[[], object], count: int) -> list[float]:
    for _ in range(WARM_UP):
        request()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        request()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        stack = LocalStack(Path(folder), extra_env={"QFC_WORKER": "0"})
        stack.start()
        try:
            client = Client(stack)
            results = {}
            for name, request in endpoints(client).items():
                timings = measure(request, args.requests)
                results[name] = {"p50_ms": round(percentile(timings, 0.50), 1),
                                 "p99_ms": round(percentile(timings, 0.99), 1),
                                 "mean_ms": round(statistics.fmean(timings), 1)}
                print(f"measured {name}: {results[name]}", file=sys.stderr, flush=True)
        finally:
            stack.stop()
    rows = [(name, figures["p50_ms"], figures["p99_ms"], figures["mean_ms"])
            for name, figures in results.items()]
    print(table(("endpoint", "p50 ms", "p99 ms", "mean ms"), rows))
    print(json_line("api_latency", requests_per_endpoint=args.requests, results=results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
