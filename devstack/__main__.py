"""`python -m devstack run` starts the local stack; `createuser` adds a user to it and
`createorg` an organization."""

from __future__ import annotations

import argparse
import sys

from .stack import StackConfig, point_at_local_aws, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the local stack (Ctrl-C stops it)")
    create = commands.add_parser("createuser", help="create a user in the running local stack")
    create.add_argument("username")
    create.add_argument("password")
    create.add_argument("--email", default="")
    create.add_argument("--staff", action="store_true")
    org = commands.add_parser("createorg", help="create an organization in the running local stack")
    org.add_argument("name")
    org.add_argument("--owner", required=True, help="the username of its owner")
    org.add_argument("--email", default="")
    args = parser.parse_args(argv)

    config = StackConfig.from_env()
    if args.command == "run":
        run(config)
        return 0
    point_at_local_aws(config)
    from chalicelib.maintenance import admin

    if args.command == "createorg":
        return admin.main(["createorg", args.name, "--owner", args.owner, "--email", args.email])
    return admin.main(["createuser", args.username, args.password, "--email", args.email]
                      + (["--staff"] if args.staff else []))


if __name__ == "__main__":
    sys.exit(main())
