"""`./dev` as a newcomer meets it: its help, `./dev run --help`'s variables (the README's table),
createuser where no stack runs, and the benchmarks bench/README.md names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dev(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "dev"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.parametrize("spelling", ["help", "--help", "-h"])
def test_help_exits_0_and_names_every_command(spelling):
    shown = dev(spelling)
    assert shown.returncode == 0, shown.stderr
    for command in ("run", "test", "createuser USERNAME PASSWORD [EMAIL]", "createorg", "bench", "lint"):
        assert f"./dev {command}" in shown.stdout


def test_an_unknown_command_exits_2_with_the_usage():
    shown = dev("serve")
    assert shown.returncode == 2
    assert "unknown command 'serve'" in shown.stderr and "./dev run" in shown.stderr


def readme_variables() -> dict[str, str]:
    """The README's table of variables: name → default."""
    variables = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `QFC_") and len(cells) == 3:
            names = re.findall(r"`(QFC_\w+)`", cells[0])
            defaults = [default.strip(" `") for default in cells[1].split(",")]
            variables.update(zip(names, defaults if len(defaults) == len(names) else defaults * len(names),
                                 strict=True))
    return variables


def test_run_help_lists_the_variables_of_the_readme_with_their_defaults():
    shown = dev("run", "--help")
    assert shown.returncode == 0, shown.stderr
    listed = dict(re.findall(r"^  (QFC_\w+)=(.*?)  ", shown.stdout, re.MULTILINE))
    documented = readme_variables()
    assert len(documented) >= 18
    assert listed == documented


def test_createuser_without_a_stack_on_its_data_folder_says_what_to_do(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("QFC_")}
    env["QFC_DATA_DIR"] = str(tmp_path)
    created = dev("createuser", "alice", "a long passphrase", "alice@example.org", env=env)
    assert created.returncode == 1
    assert f"No local stack is running on the data folder {tmp_path}." in created.stderr
    assert "./dev run" in created.stderr and "QFC_DATA_DIR" in created.stderr
    assert "Traceback" not in created.stderr and "Warning" not in created.stderr


def test_every_benchmark_bench_readme_names_is_one_dev_bench_runs():
    readme = (ROOT / "bench" / "README.md").read_text()
    commands = re.findall(r"`\./dev bench ([^`]+)`", readme)
    named = {arg.partition(":")[0] for command in commands for arg in command.split()}
    named |= set(re.findall(r"python -m bench\.(\w+)", readme))
    named -= {"NAME"}  # the placeholder of `./dev bench NAME:ARGS`
    listed = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    known = set(listed.rpartition("benchmarks: ")[2].strip().split(", "))
    assert {"jobs_core", "deltas_core", "jobs_queue", "local_stack", "transfer", "request_costs"} <= named
    assert named <= known
