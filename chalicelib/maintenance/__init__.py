"""Administration from a shell, never on a request path: `python -m chalicelib.maintenance.admin`
(create users and organizations, set a password) and the upgrade tasks that read whole tables
(`recount`, `reorder`, `upgrades.fill_directory`: Scans, run once after an upgrade).

The top of the stack beside the API: it uses the services, and nothing imports it but the local
stack and the tests. The Lambda package leaves it out (infra/package.py).
"""
