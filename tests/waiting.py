"""Waiting in tests: for a condition, checked again and again until a generous deadline, which
fails the test when it passes. Never a fixed sleep that hopes something happened meanwhile, and
never a time budget: a machine busy with other work is slow, not wrong."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# Far above what anything the tests wait for takes on an idle machine (a few seconds at most):
# only something that will never happen reaches it.
DEADLINE_SECONDS = 180


def wait_until(condition: Callable[[], T], message: str, seconds: float = DEADLINE_SECONDS,
               interval: float = 0.05) -> T:
    """The first true value `condition()` returns; AssertionError with `message` once
    `seconds` have passed without one."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (still not after {seconds:g} s)")
        time.sleep(interval)
    return value
