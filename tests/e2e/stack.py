"""Runs the real local stack (`python -m devstack run`) as child processes, and the unmodified
`qfieldcloud-cli` against it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import DEADLINE_SECONDS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-password-e2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortTaken(RuntimeError):
    """A port the stack was to use was taken meanwhile."""


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):
        return json.loads(self.stdout)

    @property
    def http_error(self) -> bool:
        """The CLI exits 0 on HTTP errors; it prints this line instead."""
        return 'Requested "' in self.output


@dataclass
class LocalStack:
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    aws_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)
    worker_logs: dict[int, Path] = field(default_factory=dict)  # of the workers a test started

    @property
    def host(self) -> str:
        return self.extra_env.get("QFC_HOST", "127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v1/"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QFC_", "QFIELDCLOUD_"))}
        env.update({
            "QFC_PORT": str(self.port),
            "QFC_AWS_PORT": str(self.aws_port),
            "QFC_DATA_DIR": str(self.data_dir),
            "QFC_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "QFC_QUIET": "1",
            "CI": "true",
            **self.extra_env,
        })
        return env

    def start(self, timeout: float = DEADLINE_SECONDS) -> None:
        """Start the stack and wait for its banner. Its ports were free when chosen; another
        process on the machine (another test run) may take one before the stack binds it: then
        the stack starts again on others."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if attempt == 2:
                    raise
                self.port, self.aws_port = free_port(), free_port()

    def _start(self, timeout: float) -> None:
        self.output = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        ready = threading.Event()

        def drain():
            for line in self.process.stdout:
                self.output.append(line)
                if "Press Ctrl-C to stop." in line:
                    ready.set()

        draining = threading.Thread(target=drain, daemon=True)
        draining.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                draining.join(10)
                output = "".join(self.output)
                if "is taken" in output or "Address already in use" in output:
                    raise PortTaken(output)
                raise RuntimeError("the local stack did not start:\n" + output)

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def start_worker(self) -> subprocess.Popen:
        """A job worker of our own, beside a stack started with QFC_WORKER=0; what it prints is
        kept (`worker_log`)."""
        env = {**self.env, "QFC_AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.aws_port}",
               "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
               "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_METRICS_DISABLED": "true"}
        log = self.data_dir.parent / f"{self.data_dir.name}-worker-{len(self.worker_logs) + 1}.log"
        with log.open("wb") as output:
            process = subprocess.Popen([sys.executable, "-m", "job_containers.worker"], cwd=ROOT, env=env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        self.worker_logs[process.pid] = log
        return process

    def worker_log(self, process: subprocess.Popen) -> str:
        return self.worker_logs[process.pid].read_text(errors="replace")

    def stop_worker(self, process: subprocess.Popen) -> None:
        """Stop a worker as ECS does (SIGTERM; a job it runs is finished first) and check that it
        ended well: a worker that crashed, or did not stop, fails the test."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            log = self.worker_log(process)[-5000:]
            raise AssertionError(f"the job worker did not stop:\n{log}") from None
        assert code == 0, f"the job worker ended with {code}:\n{self.worker_log(process)[-5000:]}"

    def createuser(self, username: str, password: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "createuser", username, password, *extra],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )

    def createorg(self, name: str, owner: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "createorg", name, "--owner", owner],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )

    def cli(self, *args: str, token: str | None = None, cwd: Path | None = None,
            timeout: float = 300) -> CliResult:
        env = {k: v for k, v in self.env.items() if k != "ENVIRONMENT"}
        env["QFIELDCLOUD_URL"] = self.url
        if token:
            env["QFIELDCLOUD_TOKEN"] = token
        completed = subprocess.run(
            [str(BIN / "qfieldcloud-cli"), *args], env=env, cwd=cwd, capture_output=True,
            text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    def login(self, username: str, password: str) -> str:
        result = self.cli("--json", "login", username, password)
        assert result.returncode == 0 and not result.http_error, result.output
        return result.json()["token"]
