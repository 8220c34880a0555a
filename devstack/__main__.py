"""`python -m devstack run` starts the local stack; `createuser` adds a user to it and
`createorg` an organization."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import data_folder
from .stack import VARIABLES, StackConfig, point_at_local_aws, run


def _variables_help() -> str:
    width = max(len(name) + len(default) for name, default, _ in VARIABLES) + 3
    lines = [f"  {f'{name}={default}':{width}} {meaning}" for name, default, meaning in VARIABLES]
    return "environment variables (name=default):\n" + "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="./dev")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="start the local stack (Ctrl-C stops it)", epilog=_variables_help(),
        description="Start the local stack: the API, the AWS stand-in and the job worker. Ctrl-C stops it.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    create = commands.add_parser("createuser", help="create a user in the running local stack",
                                 description="Create a user in the local stack running on QFC_DATA_DIR.")
    create.add_argument("username")
    create.add_argument("password")
    create.add_argument("email", nargs="?", default="", help="the user's e-mail address (or --email)")
    create.add_argument("--email", dest="email_option", metavar="EMAIL", default="")
    create.add_argument("--staff", action="store_true", help="may administer every account")
    org = commands.add_parser(
        "createorg", help="create an organization in the running local stack",
        description="Create an organization in the local stack running on QFC_DATA_DIR.")
    org.add_argument("name")
    org.add_argument("--owner", required=True, help="the username of its owner")
    org.add_argument("--email", default="")
    return parser


def _running_stack(config: StackConfig) -> tuple[StackConfig, tuple[str, str]]:
    """The configuration of the stack running on the data folder (its ports, whatever the
    environment says) and the credentials its AWS stand-in takes, or SystemExit saying what to do."""
    info = data_folder.running_stack(config.data_dir)
    if info is None:
        raise SystemExit(
            f"No local stack is running on the data folder {config.data_dir}.\n"
            "Start one with `./dev run` and run this command again while it runs. If your stack keeps "
            "its state elsewhere, set QFC_DATA_DIR to that folder here too (as it was set for "
            "`./dev run`).")
    if not info.get("ready"):
        raise SystemExit(f"The data folder {config.data_dir} is used by {data_folder.describe(info)}, "
                         "which is not ready yet: run this again once it prints 'Press Ctrl-C to stop.'")
    running = dataclasses.replace(config, host=info["host"], public_host=info["public_host"],
                                  port=info["port"], aws_port=info["aws_port"])
    return running, tuple(info["aws_credentials"])


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    config = StackConfig.from_env()
    if args.command == "run":
        run(config)
        return 0
    if args.command == "createuser" and args.email and args.email_option and args.email != args.email_option:
        parser.error("give the e-mail address once, as EMAIL or as --email")
    point_at_local_aws(*_running_stack(config))
    from chalicelib.maintenance import admin

    if args.command == "createorg":
        return admin.main(["createorg", args.name, "--owner", args.owner, "--email", args.email])
    email = args.email or args.email_option
    return admin.main(["createuser", args.username, args.password, "--email", email]
                      + (["--staff"] if args.staff else []))


if __name__ == "__main__":
    sys.exit(main())
