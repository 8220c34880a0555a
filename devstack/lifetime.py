"""The local stack's children end with it: `./dev run` puts its pid in QFC_STACK_PID, and each
child asks the kernel for SIGTERM when that process ends, however it ends (a `kill -9`, a
crash). Left running, the AWS stand-in would go on writing the state and hold the data folder's
lock (devstack/data_folder.py), and a job worker would poll a queue that is gone, forever."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # prctl(2)


def end_with_the_stack() -> None:
    stack = os.environ.get("QFC_STACK_PID")
    if not stack:
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(stack):  # the stack ended before the line above
        raise SystemExit("the local stack that started this process has ended")
