"""The QGIS job image: the cores that run each job on a local directory with real PyQGIS
(process_projectfile, package, apply_deltas), and around them the runner and worker that move
inputs and outputs between S3 and that directory and record each job's status.

The cores never touch the network or AWS: they read and write local files and return a feedback
dict (feedback.py). Each runs in a child process of its own (one QgsApplication per process), so
a QGIS crash, hang or OOM ends only that process and becomes a failed job.
"""
