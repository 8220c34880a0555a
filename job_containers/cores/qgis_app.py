"""Starting QGIS headless, once per process.

QGIS needs `QT_QPA_PLATFORM=offscreen` before the application object exists (without it Qt
aborts the process), a writable runtime dir, and its own settings dir so that no user profile
leaks into a job. Network layers give up after a few seconds, so an unreachable server fails
a layer quickly instead of hanging the job: QGIS's own requests through its network timeout, and
PostgreSQL connections (libpq, which QGIS 3.22 gives no timeout) through `PGCONNECT_TIMEOUT`.
`exitQgis()` is never called: a job process simply exits once its feedback is written (QGIS
3.22 can segfault in exitQgis while Python still holds layers).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

NETWORK_TIMEOUT_MS = 5000

_app = None


def start() -> str:
    """Start QGIS if this process has not yet; its version (`3.22.16` …)."""
    global _app
    if _app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        for variable, prefix in (("XDG_RUNTIME_DIR", "runtime"), ("QGIS_CUSTOM_CONFIG_PATH", "qgis")):
            if not os.environ.get(variable):
                os.environ[variable] = _process_temporary_dir(f"qfc-{prefix}-")
        # Debian's interpreter finds the prefix on its own; any other one needs it spelled out.
        os.environ.setdefault("QGIS_PREFIX_PATH", "/usr")
        os.environ.setdefault("PGCONNECT_TIMEOUT", str(NETWORK_TIMEOUT_MS // 1000))
        from qgis.core import QgsApplication, QgsSettings

        app = QgsApplication([], False)
        app.initQgis()
        settings = QgsSettings()
        settings.setValue("qgis/networkAndProxy/networkTimeout", NETWORK_TIMEOUT_MS)
        # Python stored in a project (macros, expression functions) never runs.
        settings.setValue("qgis/enableMacros", "Never")
        _use_egress_proxy(os.environ.get("GDAL_HTTP_PROXY"))
        _skip_gdal_drivers(os.environ.get("GDAL_SKIP", "").split())
        _app = app
    from qgis.core import Qgis

    return Qgis.version().split("-")[0]


def _use_egress_proxy(address: str | None) -> None:
    """Every request of QGIS's network manager through the worker's egress proxy (egress.py),
    which decides where a job may connect; GDAL's go there too (`GDAL_HTTP_PROXY`, which the
    worker sets in the child's environment: sandbox.child_environment)."""
    if not address:
        return
    from qgis.core import QgsNetworkAccessManager, QgsSettings

    host, port = address.rsplit(":", 1)
    # In the settings, so that the network manager of every thread (renderers fetch tiles on
    # threads of their own) sets itself up with it.
    settings = QgsSettings()
    for key, value in (("proxyEnabled", True), ("proxyType", "HttpProxy"), ("proxyHost", host),
                       ("proxyPort", port), ("proxyExcludedUrls", []), ("noProxyUrls", [])):
        settings.setValue(f"proxy/{key}", value)
    QgsNetworkAccessManager.instance().setupDefaultProxyAndCache()


def _skip_gdal_drivers(names: list[str]) -> None:
    """QGIS sets GDAL's skipped drivers from its own settings, over the `GDAL_SKIP` the worker
    gives a job's process (sandbox.child_environment): tell QGIS."""
    from qgis.core import QgsApplication

    for name in names:
        QgsApplication.skipGdalDriver(name)
    if names:
        QgsApplication.applyGdalSkippedDrivers()


def _process_temporary_dir(prefix: str) -> str:
    """A directory removed when the process exits: a worker runs job after job, and each QGIS
    profile weighs about a megabyte."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def use_localized_data(directory: Path) -> None:
    """Resolve `localized:<path>` layer sources (the owner's shared datasets) in `directory`."""
    from qgis.core import QgsApplication

    QgsApplication.localizedDataPathRegistry().registerPath(str(directory))


def clear_project() -> None:
    """Drop the project a job loaded, and its layers: layers still alive when the process ends
    can crash QGIS on its way out. Nothing to do if QGIS never started."""
    if _app is not None:
        from qgis.core import QgsProject

        QgsProject.instance().clear()
