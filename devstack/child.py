"""A process of the local stack: `python -m devstack.child MODULE` runs `python -m MODULE` (the job
worker, the large-request service), which ends when the stack does (devstack/lifetime.py). The
modules are the containers' own entry points, which know nothing of the local stack."""

import runpy
import sys

from .lifetime import end_with_the_stack

if __name__ == "__main__":
    end_with_the_stack()
    module = sys.argv.pop(1)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
