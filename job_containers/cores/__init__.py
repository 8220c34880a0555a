"""The PyQGIS cores: what runs inside a job's QGIS child process, and nothing else does.

A core is the function of its module's name (`package.package`, `process_projectfile.
process_projectfile`, `apply_deltas.apply_deltas`): it works on a local folder with real PyQGIS
and returns QFieldCloud's feedback document (feedback.py); the other modules here are its
helpers. A core never touches the network on its own behalf nor AWS: it imports no AWS client
(tests/test_layers.py checks it), reads and writes files of its folder, and asks its worker for
what only the worker can do (job_containers/child.py). Each job kind names its core
(job_containers/kinds).
"""
