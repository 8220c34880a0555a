"""The rules, one home each: who may do what (`permissions`, `plans`), how much one may store
(`quota`), which file names and project files are accepted (`file_rules`, `qgz_limits`), how
logins are throttled (`login_throttle`), which client a request comes from (`client_types`), how
a file's checksums are computed (`checksums`) and which hosts a QGIS job may reach (`job_hosts`).

Rules read the models and the adapters; the services apply them. This package's own import
pulls in nothing: the QGIS child imports `qgz_limits` and `job_hosts` without any AWS client.
"""
