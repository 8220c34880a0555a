"""The layers of the code, checked on its real imports: every `import` and `from … import` of every
module of chalicelib/, job_containers/ and app.py, wherever it stands in the module (a function's
lazy import counts), read with `ast`. No import circle anywhere, no module outside a layer, and no
import from a layer to one it may not use. docs/architecture.md explains the layers.

The order is written here, apart from the code: changing it is a decision, not a side effect.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("chalicelib", "job_containers", "large_requests", "app.py")

# Bottom to top: a layer, the modules in it (a package stands for everything under it), and the
# layers it may import besides its own. A module belongs to the layer of its longest match.
LAYERS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("foundation", ("chalicelib", "chalicelib.config", "chalicelib.errors", "chalicelib.observability"), ()),
    ("models", ("chalicelib.models",), ("foundation",)),
    ("adapters", ("chalicelib.adapters",), ("foundation",)),
    ("rules", ("chalicelib.rules",), ("foundation", "models", "adapters")),
    ("services", ("chalicelib.services",), ("foundation", "models", "adapters", "rules")),
    ("http", ("chalicelib.http",), ("foundation", "models", "adapters", "rules", "services")),
    ("maintenance", ("chalicelib.maintenance",), ("foundation", "models", "adapters", "rules", "services")),
    # The QGIS child's code: PyQGIS and the few rules it applies itself (no AWS: see below).
    ("job cores", ("job_containers.cores",), ("rules",)),
    ("job orchestration", ("job_containers",),
     ("foundation", "models", "adapters", "rules", "services", "job cores")),
    ("app", ("app",), ("foundation", "adapters", "http")),
    # The large-request service: the upload route, its body streamed (a program beside the app).
    ("large requests", ("large_requests",),
     ("foundation", "models", "adapters", "rules", "services", "http")),
]
# What the QGIS child may import of ours besides the cores: rules that need no AWS client.
CHILD_RULES = {"chalicelib.rules.qgz_limits", "chalicelib.rules.job_hosts"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for source in SOURCES:
        paths = [ROOT / source] if source.endswith(".py") else (ROOT / source).rglob("*.py")
        found.update((module_name(path), path) for path in paths)
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports: a name imported from a package is its submodule when
    there is one, else the package itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer_of(module: str) -> str | None:
    best, best_length = None, -1
    for layer, prefixes, _ in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = layer, len(prefix)
    return best


def test_the_layers_are_an_order_each_importing_only_layers_below_it():
    seen: set[str] = set()
    for layer, _, allowed in LAYERS:
        assert set(allowed) <= seen, f"{layer} may import a layer above it: {set(allowed) - seen}"
        seen.add(layer)


def test_every_module_lives_in_a_layer():
    assert [module for module in import_graph() if layer_of(module) is None] == []


def test_no_module_imports_a_layer_it_may_not_use():
    may_import = {layer: {layer, *allowed} for layer, _, allowed in LAYERS}
    wrong = sorted(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
                   for module, targets in import_graph().items() for target in targets
                   if layer_of(target) not in may_import[layer_of(module)])
    assert wrong == []


def test_no_import_circle():
    graph = import_graph()
    circles = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" → ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_api_never_imports_the_maintenance_layer():
    """The Lambda package leaves chalicelib/maintenance/ out (infra/package.py): nothing the app
    imports, however indirectly, may need it."""
    graph = import_graph()
    reached, pending = set(), ["app"]
    while pending:
        module = pending.pop()
        if module not in reached:
            reached.add(module)
            pending.extend(graph[module])
    assert [module for module in reached if layer_of(module) == "maintenance"] == []


def test_the_qgis_child_imports_no_aws_client_and_only_rules_that_need_none():
    """What the QGIS child process loads (QGIS, every core, the rules it applies) in a fresh
    interpreter: no boto3, botocore, PynamoDB or powertools (a hostile project's code would find
    them in its process), and of ours only the cores, the child's own modules and CHILD_RULES."""
    probe = (
        "import sys; from job_containers import child; from job_containers.cores import qgis_app; "
        "qgis_app.start(); child._load_cores(); from chalicelib.rules import job_hosts; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True,
                         text=True, timeout=120, check=True)
    loaded = run.stdout.split()
    assert "job_containers.cores.apply_deltas" in loaded and "qgis.core" in loaded  # it ran
    aws = [name for name in loaded if name.split(".")[0] in ("boto3", "botocore", "pynamodb",
                                                               "aws_lambda_powertools")]
    assert aws == []
    ours = {name for name in loaded if name.split(".")[0] in ("chalicelib", "job_containers")
            and not name.startswith("job_containers.cores")}
    packages = {"chalicelib", "chalicelib.rules", "job_containers"}
    assert ours - packages - {"job_containers.child"} == CHILD_RULES


def test_each_job_kind_names_a_core_that_exists():
    from job_containers.kinds import KINDS

    for kind in KINDS.values():
        path = ROOT / "job_containers" / "cores" / f"{kind.core}.py"
        functions = {node.name for node in ast.parse(path.read_text(encoding="utf-8")).body
                     if isinstance(node, ast.FunctionDef)}
        assert kind.core in functions, kind
