"""Administration from a shell, against whatever AWS the environment points at (the local stack
when QFC_AWS_ENDPOINT_URL is set, real AWS otherwise).

    python -m chalicelib.maintenance.admin createuser USERNAME PASSWORD [--email E] [--staff]
    python -m chalicelib.maintenance.admin setpassword USERNAME PASSWORD
    python -m chalicelib.maintenance.admin createorg NAME --owner USERNAME [--email E]
    python -m chalicelib.maintenance.admin recount   (once after upgrading data older than the list counters)
    python -m chalicelib.maintenance.admin reorder   (once after upgrading data older than the paged list)
"""

from __future__ import annotations

import argparse
import sys

from chalicelib.errors import ApiError
from chalicelib.services import accounts, organizations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.maintenance.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("createuser")
    create.add_argument("username")
    create.add_argument("password")
    create.add_argument("--email", default="")
    create.add_argument("--staff", action="store_true")
    reset = commands.add_parser("setpassword")
    reset.add_argument("username")
    reset.add_argument("password")
    org = commands.add_parser("createorg")
    org.add_argument("name")
    org.add_argument("--owner", required=True)
    org.add_argument("--email", default="")
    commands.add_parser("recount", help="set the list counters from what is stored")
    commands.add_parser("reorder", help="set the projects' list order (and its copies) from what is stored")
    args = parser.parse_args(argv)
    try:
        if args.command == "recount":
            from chalicelib.maintenance.recount import recount_all

            print(f"Recounted the lists of {recount_all()} projects.")
        elif args.command == "reorder":
            from chalicelib.maintenance.reorder import reorder_all

            print(f"Put {reorder_all()} projects in their list order.")
        elif args.command == "createuser":
            user = accounts.create_user(
                args.username, args.password, email=args.email, is_staff=args.staff
            )
            print(f"Created user '{user.username}'.")
        elif args.command == "createorg":
            owner = accounts.get_user(args.owner)
            view = organizations.create_organization(owner, args.name, args.email)
            print(f"Created organization '{view.organization.username}' owned by '{owner.username}'.")
        else:
            accounts.set_password(accounts.get_user(args.username), args.password)
            print(f"Changed the password of '{args.username}'.")
    except ApiError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
