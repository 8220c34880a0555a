"""The local stack's job worker: `python -m job_containers.worker`, which ends when the stack does
(devstack/lifetime.py)."""

import runpy

from .lifetime import end_with_the_stack

if __name__ == "__main__":
    end_with_the_stack()
    runpy.run_module("job_containers.worker", run_name="__main__", alter_sys=True)
