"""Starts and stops the local stack: moto's server (a child process) and the API.

moto keeps everything in memory; the stand-in keeps it on disk as a snapshot and a journal of the
changes since, which it loads (and compacts) at the next start (devstack/aws_state.py). Each
start then sends a new random seed, the journal's first entry, so that replaying the journal
regenerates the same S3 version ids and new ones never collide.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from chalicelib import config as settings_module

from . import data_folder

LOOPBACK = "127.0.0.1"
S3_OBJECTS_IN_MEMORY_BYTES = 256 * 1024

# What the stack's processes sign their requests to the AWS stand-in with, whatever AWS
# credentials the shell holds (the stand-in refuses any other: devstack/aws_standin.py).
LOCAL_CREDENTIALS = ("local", "local")
LOCAL_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    # Metrics are for CloudWatch; locally they would only print lines.
    "POWERTOOLS_METRICS_DISABLED": "true",
}


# What `./dev run` reads from the environment, with its default: `./dev run --help` prints this, and
# the README's table says the same (tests/test_dev_command.py holds them together).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("QFC_PORT", "8000", "port of the API"),
    ("QFC_AWS_PORT", "5000", "port of the local AWS stand-in"),
    ("QFC_HOST", "127.0.0.1", "address both servers listen on (0.0.0.0 for phones on your network)"),
    ("QFC_PUBLIC_HOST", "this machine's address", "address put in URLs when QFC_HOST is 0.0.0.0"),
    ("QFC_PUBLIC_URL", "http://<public host>:<port>",
     "server root put in absolute links (pagination), e.g. behind a TLS proxy"),
    ("QFC_DATA_DIR", ".data", "where the local state is kept; one stack at a time uses a folder"),
    ("QFC_ADMIN_PASSWORD", "generated", "password of `admin`, on first start"),
    ("QFC_QUIET", "0", "1 leaves out the line per request at the console"),
    ("QFC_QUOTA_GRACE_PERCENT", "10", "how far past the storage quota QField's uploads may go"),
    ("QFC_WORKER", "1", "0 leaves the job worker out (jobs then wait in the queue)"),
    ("QFC_JOB_TIMEOUT_SECONDS", "600", "time limit of a package or delta job's QGIS process"),
    ("QFC_PROCESS_PROJECTFILE_TIMEOUT_SECONDS", "300", "time limit of processing an uploaded project"),
    ("QFC_JOB_MEMORY_MB", "3000", "memory limit of a job's QGIS process"),
    ("QFC_JOB_ALLOWED_PRIVATE_HOSTS", "none",
     "private hosts jobs may reach besides public ones (names, addresses, networks)"),
    ("QFC_JOB_NETWORK_SECONDS", "30", "how long a job's requests may stall on silent servers, in all"),
    ("QFC_JOB_UID_BASE", "61000", "first of the uids jobs run as when the worker is root"),
    ("QFC_MAX_ACTIVE_JOBS_PER_PROJECT", "10", "jobs waiting or running at once per project (429 beyond)"),
    ("QFC_MAX_ACTIVE_JOBS_PER_OWNER", "50", "jobs waiting or running at once per owner (429 beyond)"),
    ("QFC_SIGNUP", "0", "1 lets anyone create an account (the console's sign-up page, POST auth/signup/)"),
    ("QFC_MAIL_SENDER", "unset", "From address of password reset mails; set, resets by e-mail are on"),
)


def _outbound_address() -> str:
    """This machine's address on its main network (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


@dataclass
class StackConfig:
    port: int
    aws_port: int
    data_dir: Path
    # Where the servers listen, and the address clients use. Both are loopback by default; a
    # phone running QField needs `QFC_HOST=0.0.0.0`, and then presigned URLs carry this machine's
    # network address so that the phone can reach the AWS stand-in too.
    host: str = "127.0.0.1"
    public_host: str = "127.0.0.1"
    # The local job worker runs beside the API unless QFC_WORKER=0 (then start one yourself:
    # `python -m job_containers.worker` with the same environment).
    start_worker: bool = True

    @classmethod
    def from_env(cls) -> StackConfig:
        host = os.environ.get("QFC_HOST", "127.0.0.1")
        default_public = _outbound_address() if host in ("0.0.0.0", "::") else host
        return cls(
            port=int(os.environ.get("QFC_PORT", "8000")),
            aws_port=int(os.environ.get("QFC_AWS_PORT", "5000")),
            data_dir=Path(os.environ.get("QFC_DATA_DIR", ".data")).resolve(),
            host=host,
            public_host=os.environ.get("QFC_PUBLIC_HOST", default_public),
            start_worker=os.environ.get("QFC_WORKER", "1") != "0",
        )

    @property
    def aws_endpoint(self) -> str:
        """Where processes on this machine reach the AWS stand-in: moto listens on loopback only."""
        return f"http://{LOOPBACK}:{self.aws_port}"

    @property
    def aws_public_endpoint(self) -> str:
        """Where clients reach S3 through presigned URLs."""
        return f"http://{self.public_host}:{self.aws_port}"

    @property
    def gated(self) -> bool:
        """Clients elsewhere use S3 (QFC_HOST=0.0.0.0): the S3 gate listens on the public address."""
        return self.public_host not in (LOOPBACK, "localhost")

    @property
    def root_url(self) -> str:
        """The server root, what QField and QFieldSync ask for (they add `/api/v1/` themselves)."""
        return f"http://{self.public_host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api/v1/"

    @property
    def aws_state(self) -> Path:
        return self.data_dir / "aws-state"

    @property
    def legacy_recording(self) -> Path:
        """Where an older version kept moto's recording (migrated at the first start)."""
        return self.data_dir / "moto-recording.jsonl"

    @property
    def mail_folder(self) -> Path:
        return self.data_dir / "mail"

    @property
    def worker_log(self) -> Path:
        return self.data_dir / "worker.log"

    @property
    def worker_pid(self) -> Path:
        return self.data_dir / "worker.pid"


def point_at_local_aws(config: StackConfig, credentials: tuple[str, str] = LOCAL_CREDENTIALS) -> None:
    """Environment for code that talks to the local AWS stand-in (set before importing it)."""
    for name, value in LOCAL_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = credentials
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["QFC_AWS_ENDPOINT_URL"] = config.aws_endpoint
    os.environ["QFC_AWS_PUBLIC_ENDPOINT_URL"] = config.aws_public_endpoint
    os.environ.setdefault("QFC_PUBLIC_URL", config.root_url)
    # Mails (password reset links, when QFC_MAIL_SENDER is set) are files here, not sent.
    os.environ.setdefault("QFC_MAIL_FOLDER", str(config.mail_folder))
    settings_module.reload()


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the AWS stand-in exited with code {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"the AWS stand-in did not answer at {url}")


def start_moto(config: StackConfig, data_lock: int) -> subprocess.Popen:
    """The AWS stand-in on the data folder; it keeps `data_lock` (data_folder.claim) open, so the
    folder stays locked for as long as it writes there, and it ends when this process does."""
    if not _port_is_free(LOOPBACK, config.aws_port):
        raise SystemExit(f"port {config.aws_port} is taken: set QFC_AWS_PORT to a free port")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # Only this user may read it (admin credentials, every project's files): not the QGIS jobs.
    config.data_dir.chmod(0o700)
    had_state = config.aws_state.exists() or config.legacy_recording.exists()
    env = {
        **os.environ,
        "QFC_AWS_STATE_DIR": str(config.aws_state),
        "QFC_AWS_LEGACY_RECORDING": str(config.legacy_recording),
        # As on AWS, only requests signed with the stack's credentials (devstack/aws_standin.py).
        "QFC_AWS_VERIFY_SIGNATURES": "1",
        # Objects above this are kept in temporary files, not in moto's memory.
        "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(S3_OBJECTS_IN_MEMORY_BYTES),
    }
    log = open(config.data_dir / "moto.log", "ab")  # noqa: SIM115 (lives as long as moto)
    if had_state:
        print("Restoring the saved local state...", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.aws_standin", "-H", LOOPBACK, "-p", str(config.aws_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(data_lock,),
        start_new_session=True,  # out of reach of the terminal's Ctrl-C: run() stops it last
    )
    try:
        try:
            _wait_until_up(f"{config.aws_endpoint}/moto-api/", process, seconds=3600 if had_state else 60)
        except SystemExit:
            if had_state:
                log_path = config.data_dir / "moto.log"
                raise SystemExit(f"could not restore the saved state from {config.aws_state} (details "
                                 f"in {log_path}); move it away to start afresh") from None
            raise
        seed = random.randrange(2**31)
        requests.post(f"{config.aws_endpoint}/moto-api/seed?a={seed}", timeout=10).raise_for_status()
    except BaseException:
        stop_process(process)
        raise
    return process


def state_summary(config: StackConfig) -> str:
    """What the AWS stand-in restored at this start, how long it took, and the state's size."""
    try:
        restored = json.loads((config.aws_state / "restored.json").read_text())
    except (OSError, ValueError):
        return f"Local state:      none yet (kept in {config.aws_state})"
    gib = 1024**3
    return (f"Local state:      restored in {restored['seconds']:.1f} s ({restored['tables']} tables, "
            f"{restored['items']:,} items, {restored['versions']:,} object versions of "
            f"{restored['object_bytes'] / gib:.2f} GiB); {restored['disk_bytes'] / gib:.2f} GiB on disk in "
            f"{config.aws_state}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ChildProcess:
    """A process of the stack, restarted if it dies (as ECS restarts a stopped task); its pid is
    in the data dir, its output in a log there.

    The children and the AWS stand-in are in sessions of their own: a Ctrl-C reaches `./dev run`
    alone, which stops them, then the stand-in they still need until they have stopped. They end
    when the stack's process ends, however it ends (devstack/lifetime.py)."""

    def __init__(self, name: str, module: str, log: Path, pid_file: Path, env: dict[str, str] | None = None):
        self.name = name
        self.module = module
        self.log = log
        self.pid_file = pid_file
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def ensure_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if self.process is not None:
            print(f"The {self.name} stopped (code {self.process.returncode}); restarting it.",
                  file=sys.stderr, flush=True)
        log = open(self.log, "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.child", self.module], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, **self.env},
            start_new_session=True,  # out of reach of the terminal's Ctrl-C: run() stops it first
        )
        self.pid_file.write_text(f"{self.process.pid}\n")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def worker_process(config: StackConfig) -> ChildProcess:
    """The local job worker."""
    return ChildProcess("job worker", "job_containers.worker", config.worker_log, config.worker_pid)


def large_requests_process(config: StackConfig, port: int) -> ChildProcess:
    """The large-request service (large_requests/), on a loopback port behind the edge."""
    return ChildProcess("large-request service", "large_requests", config.data_dir / "large-requests.log",
                        config.data_dir / "large-requests.pid",
                        {"QFC_LARGE_REQUESTS_HOST": LOOPBACK, "QFC_LARGE_REQUESTS_PORT": str(port),
                         "POWERTOOLS_SERVICE_NAME": "qfc-large-requests"})


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def ensure_admin(config: StackConfig) -> tuple[str, str | None]:
    """Create the `admin` user on first start; its password comes from QFC_ADMIN_PASSWORD or is
    generated, printed once and kept in the data dir."""
    from chalicelib.services import accounts

    username = "admin"
    if accounts.find_user(username) is not None:
        return username, None
    password = os.environ.get("QFC_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    accounts.create_user(username, password, email="admin@localhost", is_staff=True)
    credentials = config.data_dir / "admin-credentials"
    credentials.write_text(f"{username} {password}\n")
    credentials.chmod(0o600)
    return username, password


def count_lists_once(config: StackConfig) -> None:
    """State kept from a version without list counters gets them, once (`admin recount`)."""
    marker = config.data_dir / "lists-counted"
    if marker.exists():
        return
    from chalicelib.maintenance.recount import recount_all

    projects = recount_all()
    if projects:
        print(f"Counted the lists of {projects} projects kept from an older version.", file=sys.stderr)
    marker.write_text("1\n")


def run(config: StackConfig) -> None:
    # First of all, before the ports are checked: a second stack on this folder is told which
    # stack has it, and never touches the state under it.
    data_lock = data_folder.claim(config.data_dir)
    published = {"pid": os.getpid(), "host": config.host, "public_host": config.public_host,
                 "port": config.port, "aws_port": config.aws_port, "api_url": config.api_url}
    data_folder.publish(config.data_dir, **published)
    if not _port_is_free(config.host, config.port):
        raise SystemExit(f"port {config.port} is taken: set QFC_PORT to a free port")
    if config.gated and not _port_is_free(config.public_host, config.aws_port):
        raise SystemExit(f"port {config.aws_port} is taken on {config.public_host}: set QFC_AWS_PORT")
    # Presigned URLs that leave this machine are signed with a secret nobody else knows.
    key_id, secret = LOCAL_CREDENTIALS
    # What the edge adds to the requests it passes on to the API, so that the API believes the
    # viewer's address it reports (chalicelib/http/client_address.py); new at every start, since
    # the edge and the API both run in this process.
    os.environ["QFC_EDGE_SECRET"] = secrets.token_urlsafe(32)
    point_at_local_aws(config, (key_id, secrets.token_urlsafe(32) if config.gated else secret))
    os.environ["QFC_STACK_PID"] = str(os.getpid())  # its children end with it (devstack/lifetime.py)
    moto = start_moto(config, data_lock)
    published["aws_pid"] = moto.pid
    # What `./dev createuser` and `createorg` sign their requests with (the stand-in refuses any
    # other); the folder is this user's only (start_moto).
    published["aws_credentials"] = [os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]]
    data_folder.publish(config.data_dir, **published)
    worker = worker_process(config)
    uploads_port = _free_loopback_port()
    uploads = large_requests_process(config, uploads_port)
    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        from devstack.resources import ensure_all

        ensure_all()
        count_lists_once(config)
        admin, password = ensure_admin(config)
        uploads.ensure_running()

        from app import app, handler
        from chalicelib.observability import logger
        from devstack.console_files import with_console
        from devstack.edge import make_edge, serve_in_thread
        from devstack.gateway import ApiGateway
        from devstack.http_server import HttpServer, wsgi_application

        # The console has a line per request (devstack/http_server.py); the API's JSON log lines,
        # made for CloudWatch, are printed only for errors, not for every refused request.
        logger.setLevel("WARNING")
        quiet = os.environ.get("QFC_QUIET") == "1"
        api = wsgi_application(ApiGateway(app, handler), quiet=quiet)
        # API Gateway (with the web console's files at `/`, devstack/console_files.py, which
        # CloudFront serves from S3 on AWS) and the large-request service are the edge's origins,
        # on loopback only: as on AWS, clients reach them through the edge (CloudFront there).
        gateway_server = HttpServer(with_console(api, config.aws_public_endpoint), LOOPBACK, 0)
        threading.Thread(target=gateway_server.serve_forever, daemon=True).start()
        edge = make_edge(config.host, config.port, gateway_server.server_address,
                         (LOOPBACK, uploads_port), os.environ["QFC_EDGE_SECRET"], quiet=quiet)
        serve_in_thread(edge)
        if config.gated:
            from devstack.s3_gate import make_gate

            gate = make_gate(config.public_host, config.aws_port, config.aws_port,
                             os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
            threading.Thread(target=gate.serve_forever, daemon=True).start()
        if config.start_worker:
            worker.ensure_running()
        data_folder.publish(config.data_dir, **published, ready=True)
        _announce(config, admin, password)
        while not stopping.wait(0.5):
            if moto.poll() is not None:
                raise SystemExit(f"the AWS stand-in stopped unexpectedly (see {config.data_dir}/moto.log)")
            uploads.ensure_running()
            if config.start_worker:
                worker.ensure_running()
        edge.shutdown()
        edge.server_close()
        gateway_server.shutdown()
        gateway_server.server_close()
    finally:
        worker.stop()
        uploads.stop()
        stop_process(moto)
    print("Stopped.", file=sys.stderr)


def cli_path() -> Path:
    """The QFieldCloud CLI installed beside this interpreter (`.venv/bin`, which is not on the
    PATH of a shell unless the venv is activated)."""
    return Path(sys.executable).parent / "qfieldcloud-cli"


def for_browsers(config: StackConfig) -> str:
    """Where a person starts in a browser: the web console, and the API explained and ready to try."""
    return (f"{config.root_url}/ (the web console); the API to try out at {config.root_url}/swagger/, "
            f"its reference at {config.root_url}/docs/")


def _announce(config: StackConfig, admin: str, password: str | None) -> None:
    lines = [
        f"In a browser:     {for_browsers(config)}",
        f"QFieldCloud API:  {config.api_url} (server URL for QField and QFieldSync: {config.root_url})",
        f"AWS stand-in:     {config.aws_public_endpoint} (moto; state kept in {config.data_dir}"
        + ("; from the network only presigned requests)" if config.gated else ")"),
        "Job worker:       " + (f"running, log in {config.worker_log}" if config.start_worker
                                 else "not started (QFC_WORKER=0)"),
        f"Large uploads:    the large-request service, log in {config.data_dir / 'large-requests.log'} "
        "(AWS's limits hold for everything else: docs/local-stack.md)",
        state_summary(config),
    ]
    if password:
        lines.append(f"Created user '{admin}' with password: {password}")
    else:
        lines.append(f"User '{admin}' exists (first password in {config.data_dir}/admin-credentials)")
    lines += [
        "Log in with the QFieldCloud CLI:",
        f"  export QFIELDCLOUD_URL={config.api_url}",
        f"  {cli_path()} login {admin} '<password>'",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
