"""Runs the parts of a transfer in worker threads, with one shared progress bar."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from tqdm import tqdm

from .errors import Cancelled, TransferError

T = TypeVar("T")
ATTEMPTS = 5


class Progress:
    """Bytes moved so far. tqdm's counter is not safe to bump from several threads, hence the lock."""

    def __init__(self, total: int, initial: int, description: str, enabled: bool) -> None:
        self._lock = threading.Lock()
        self._bar = tqdm(total=total, initial=initial, desc=description, unit="B", unit_scale=True,
                         unit_divisor=1024, file=sys.stderr, disable=not enabled, dynamic_ncols=True)

    def add(self, count: int) -> None:
        # A failed attempt takes its bytes back with a negative count, so the bar never overshoots.
        with self._lock:
            self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


def run(items: Iterable[T], work: Callable[[T, threading.Event], None], workers: int,
        on_done: Callable[[T], None]) -> None:
    """Call `work(item, cancel)` for every item on `workers` threads; `on_done(item)` runs in the
    calling thread as each one finishes, so it may save state without locks.

    On any exception here (a failed item, Ctrl-C, or `on_done` raising) `cancel` is set; workers
    check it between chunks and stop within moments, and the exception is re-raised once they
    have, so no thread keeps writing after the command has returned.
    """
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="qfc-transfer")
    pending: dict[Future[None], T] = {}
    try:
        pending = {pool.submit(work, item, cancel): item for item in items}
        while pending:
            # A timeout keeps the wait interruptible by Ctrl-C everywhere.
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                item = pending.pop(future)
                future.result()
                on_done(item)
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def retrying(cancel: threading.Event, attempt: int, what: str, reason: str) -> None:
    """Wait before the next attempt, or give up after the last one. Backs off up to 8 s."""
    if attempt + 1 >= ATTEMPTS:
        raise TransferError("storage_error", f"{what} failed {ATTEMPTS} times, last: {reason}")
    if cancel.wait(min(0.5 * 2**attempt, 8)):
        raise Cancelled()


def check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()
