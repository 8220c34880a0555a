"""The QGIS job image, in two halves.

- `cores/`: the PyQGIS cores (process_projectfile, package, apply_deltas) and their helpers. Each
  runs a job on a local folder with real PyQGIS and returns a feedback document (cores/feedback.py);
  it never touches AWS. It runs in a QGIS child process of its own (one QgsApplication per
  process), so a QGIS crash, hang or OOM ends only that process and becomes a failed job.
- Here, the orchestration: the worker (`python -m job_containers.worker`) takes jobs from the
  queue, the runner moves each job's inputs and outputs between S3 and its folder and records its
  result, isolation/sandbox/egress run the child (`python -m job_containers.child`) with nothing
  to steal and only public hosts to reach.
"""
