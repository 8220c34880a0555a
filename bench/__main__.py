"""`./dev bench [NAME[:ARGS]...]`: run benchmarks one after the other, each in a fresh process.

Without names it runs the default set (the API's own figures, a few minutes on a quiet machine);
`./dev bench jobs_core deltas_core` runs others; `NAME:ARGS` passes arguments, e.g.
`./dev bench request_costs:10,100` or `transfer:--mib,50`. Each benchmark prints a table and one
JSON line; bench/README.md says what each figure means.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common import load_text

# name → default arguments; the first group runs when no name is given.
DEFAULT = {
    "api_latency": [],
    "request_costs": ["10", "1000", "10000"],
    "cold_start": [],
    "transfer": [],
}
OTHERS = {
    "jobs_core": ["package"],
    "deltas_core": [],
    "jobs_queue": [],
    "job_instructions": [],  # needs --baseline DIR: ./dev bench job_instructions:--baseline,DIR
    "local_stack": [],
    "large_uploads": [],
}


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join([*DEFAULT, *OTHERS]))
        return 0
    known = {**DEFAULT, **OTHERS}
    wanted: list[tuple[str, list[str]]] = []
    for arg in argv or list(DEFAULT):
        name, _, extra = arg.partition(":")
        if name not in known:
            print(f"unknown benchmark {name!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        wanted.append((name, extra.split(",") if extra else known[name]))
    failed = []
    for name, args in wanted:
        print(f"\n=== {name} {' '.join(args)} ({load_text()})", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *args])
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s ({load_text()})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
