"""The `qfc-transfer` command: argument parsing, configuration, and turning failures into exit codes.

Exit status: 0 done, 1 an error (printed as `error: <code>: <message>`), 130 interrupted by
Ctrl-C (the resume state stays behind, so the same command carries on later).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import download, upload
from .api import Api
from .errors import TransferError

MAX_PARALLEL = 32


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        api = _api(args)
        return args.run(api, args)
    except TransferError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:  # the local file: missing, unreadable, disk full
        print(f"error: local_file_error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _api(args: argparse.Namespace) -> Api:
    url = args.url or os.environ.get("QFIELDCLOUD_URL")
    token = args.token or os.environ.get("QFIELDCLOUD_TOKEN")
    if not url:
        raise TransferError("missing_url", "give the API root with --url or QFIELDCLOUD_URL, "
                            "e.g. http://127.0.0.1:8000/api/v1/")
    if not token:
        raise TransferError("missing_token", "give a token with --token or QFIELDCLOUD_TOKEN "
                            "(`qfieldcloud-cli login` prints one)")
    return Api(url, token)


def _run_upload(api: Api, args: argparse.Namespace) -> int:
    local = Path(args.local_file)
    if not local.is_file():
        raise TransferError("local_file_error", f"{local} is not a file")
    name = args.remote_name or local.name
    result = upload.upload(api, args.project_id, local, name, workers=args.parallel,
                           show_progress=not args.no_progress, log=_log)
    print(json.dumps(result, indent=2))
    return 0


def _run_download(api: Api, args: argparse.Namespace) -> int:
    local = download.default_local_path(args.remote_name, Path(args.local_file) if args.local_file else None)
    result = download.download(api, args.project_id, args.remote_name, local, version=args.version,
                               workers=args.parallel, show_progress=not args.no_progress, log=_log)
    print(result.summary())
    return 0


def _parallel(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PARALLEL}")
    return number


def _connection_options(defaults: bool) -> argparse.ArgumentParser:
    """The options that work before or after the command. After it they default to SUPPRESS,
    so that a value given before the command is not reset; each parser gets its own copy
    because argparse shares the option objects of a parent parser."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--url", default=default(None),
                         help="API root with trailing slash (default: $QFIELDCLOUD_URL)")
    options.add_argument("--token", default=default(None), help="API token (default: $QFIELDCLOUD_TOKEN)")
    options.add_argument("--parallel", type=_parallel, default=default(4),
                         help="parts transferred at the same time (default: 4)")
    options.add_argument("--no-progress", action="store_true", default=default(False),
                         help="no progress bar")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qfc-transfer", parents=[_connection_options(defaults=True)],
        description="Upload and download large files to and from a QFieldCloud-compatible server, "
                    "in parallel parts straight to and from S3, resuming after an interruption.",
    )
    common = _connection_options(defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("upload", parents=[common], help="upload a local file",
                             description="Upload LOCAL_FILE to the project as REMOTE_NAME.")
    up.add_argument("project_id")
    up.add_argument("local_file")
    up.add_argument("remote_name", nargs="?", help="path in the project (default: the file's name)")
    up.set_defaults(run=_run_upload)

    down = commands.add_parser("download", parents=[common], help="download a project file",
                               description="Download REMOTE_NAME of the project to LOCAL_FILE.")
    down.add_argument("project_id")
    down.add_argument("remote_name")
    down.add_argument("local_file", nargs="?",
                      help="file or folder to put it in (default: its basename, here)")
    down.add_argument("--version", help="a version_id from the file's versions (default: the latest)")
    down.set_defaults(run=_run_download)
    return parser


if __name__ == "__main__":
    sys.exit(main())
