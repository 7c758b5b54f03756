"""The package's layering, read from the source: the measure layer (queue, growth, deliveries,
maillog, state, deadline, …) is shared; the front ends (the Nagios plugins, the Zabbix sender,
the report) build on it and never on each other; no module imports itself back in a cycle."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import postfix_queue_monitor

PKG = Path(postfix_queue_monitor.__file__).parent
NAME = "postfix_queue_monitor"
#: The front ends: each a room of its own (a prefix of module names).
FRONT_ENDS = (f"{NAME}.plugins", f"{NAME}.zabbix", f"{NAME}.report", f"{NAME}.prometheus")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports anywhere in its source (function-level included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in MODULES and t != name)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def front_end(name: str) -> str | None:
    for fe in FRONT_ENDS:
        if name == fe or name.startswith(fe + "."):
            return fe
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_graph_is_read() -> None:
    assert f"{NAME}.queue" in GRAPH[f"{NAME}.plugins.common"]
    assert f"{NAME}.growth" in GRAPH[f"{NAME}.zabbix.document"]
    assert f"{NAME}.maillog.patterns" in GRAPH[f"{NAME}.maillog.feeder"]


def test_no_front_end_imports_another() -> None:
    crossings = sorted((a, b) for a, deps in GRAPH.items() for b in deps
                       if front_end(a) and front_end(b) and front_end(a) != front_end(b))
    assert crossings == []


def test_the_measure_layer_imports_no_front_end() -> None:
    upward = sorted((a, b) for a, deps in GRAPH.items() for b in deps
                    if not front_end(a) and front_end(b))
    assert upward == []


def test_no_import_cycle() -> None:
    """Package ``__init__`` modules re-exporting their own submodules are not cycles."""
    def edges(a: str) -> set[str]:
        return {b for b in GRAPH[a] if not (MODULES[a].name == "__init__.py"
                                            and b.startswith(a + "."))}

    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges(node)):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


#: The only places allowed to catch everything: the two command-line entry points that must end
#: in one line instead of a traceback (the checks get the same from nagiosplugin.guarded).
#: The top levels that turn any defect into one line instead of a traceback: the report's main,
#: the sub-command runner of the Zabbix and Prometheus CLIs, and a scrape of ``serve`` (which
#: must answer postfix_up 0, not a 500).
CATCH_ALL_ALLOWED = {(f"{NAME}.report", "main"), (f"{NAME}.cli", "run_command"),
                     (f"{NAME}.prometheus.exposition", "run")}


def _broad_handlers(name: str) -> list[tuple[str, int]]:
    """(function, line) of each handler that catches everything or a TypeError (a programming
    error at a seam) and does not re-raise it."""
    tree = ast.parse(MODULES[name].read_text())
    out = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if not isinstance(node, ast.ExceptHandler):
                continue
            caught = ([] if node.type is None else
                      node.type.elts if isinstance(node.type, ast.Tuple) else [node.type])
            names = {c.id for c in caught if isinstance(c, ast.Name)}
            reraises = any(isinstance(n, ast.Raise) and n.exc is None for n in node.body)
            lone_type_error = names == {"TypeError"}
            if (node.type is None or names & {"Exception", "BaseException"}
                    or lone_type_error) and not reraises:
                out.append((func.name, node.lineno))
    return out


def test_no_broad_exception_catching_at_seams() -> None:
    """A seam catches what it can name (MonitorError, OSError, ValueError of parsed input);
    catching everything, or any TypeError as a 'signature mismatch', hides defects."""
    found = sorted((name, func, line) for name in MODULES
                   for func, line in _broad_handlers(name)
                   if (name, func) not in CATCH_ALL_ALLOWED)
    assert found == []
    assert {(n, f) for n in MODULES for f, _ in _broad_handlers(n)} == CATCH_ALL_ALLOWED


#: What a queue check's start-up must not load: state (and hashlib's OpenSSL, ~3 ms) is for a
#: shared listing only; dataclasses and typing are kept out of it (namedtuple instead).
HEAVY_AT_START = ("dataclasses", "typing", "hashlib", f"{NAME}.state")


@pytest.mark.parametrize("plugin", ["queue_size", "oldest"])
def test_queue_checks_start_light(plugin: str) -> None:
    code = (f"import sys, {NAME}.plugins.{plugin}\n"
            f"print(' '.join(m for m in {HEAVY_AT_START!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == []
