"""The package's shape, read from its source with the standard library's `ast` alone (nothing is imported): the
import graph of its modules (module-level and function-level imports, relative and absolute, those under
`if TYPE_CHECKING:` too) has no circle and runs one way, down the stages in the order data flows; no module is
over 500 lines and no function over 80; each subpackage says what it does and what it may import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chatbot"
# In the order data flows; a module may import its own stage and those before it (and config, errors), never one after.
STAGES = ("documents", "index", "answering", "training", "app")
BASE = ("chatbot.config", "chatbot.errors")  # below every stage
TOP = ("chatbot", "chatbot.__main__")  # the package's face (`from chatbot import Chatbot`) and `python -m chatbot`
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = module_files()


def rank(module: str) -> int:
    """How far down the data flow a module sits: config and errors 0, the stages 1 to 5, the package's face 6."""
    if module in BASE:
        return 0
    if module in TOP:
        return len(STAGES) + 1
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in STAGES:
        return STAGES.index(parts[1]) + 1
    raise AssertionError(f"{module} belongs to no stage: put it in one of {', '.join(STAGES)}")


def imports_of(module: str, path: Path) -> set[str]:
    """The package's modules that `module` imports anywhere in its file: at the top, inside functions or under
    `if TYPE_CHECKING:`. `from PACKAGE import name` counts as importing the module PACKAGE.name where there is one
    (else PACKAGE itself); importing a module's parent packages as a side effect is not counted."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "chatbot")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "chatbot":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    unknown = found - set(MODULES)
    assert not unknown, f"{module} imports {sorted(unknown)}, which the package does not have"
    return found - {module}


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: each strongly connected component of more than one module (Tarjan's algorithm), as
    one circle through it, from its first module back to it."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle(graph, component) for component in components]


def _circle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A path from the component's first module through others of it and back (breadth first: a short one)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return component


def test_the_graph_sees_imports_at_the_top_inside_functions_and_relative_ones():
    """The graph reads what it must: a relative import across stages, `from . import module`, and an import
    inside a function (the command line imports the web page only when it serves it)."""
    assert "chatbot.documents.formats" in GRAPH["chatbot.index.build"]  # from ..documents import formats, segment
    assert "chatbot.index.lexical" in GRAPH["chatbot.index.build"]  # from . import lexical
    assert "chatbot.app.web.server" in GRAPH["chatbot.app.cli"]  # inside cmd_serve
    assert "chatbot.answering.bot" in GRAPH["chatbot"]  # the package's face


def test_no_import_circles():
    found = cycles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_imports_run_one_way_down_the_stages():
    upward = [
        f"{module} ({rank(module)}) imports {target} ({rank(target)})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if rank(target) > rank(module)
    ]
    order = "app -> training -> answering -> index -> documents -> config/errors"
    assert not upward, f"imports against the stage order ({order}):\n" + "\n".join(upward)


def test_the_answer_types_import_nothing_above_them():
    """Quote imports no module of the package; Answer imports only what does not import it back."""
    assert GRAPH["chatbot.answering.quote"] == set()
    above = {module for module, targets in GRAPH.items() if "chatbot.answering.answer" in targets}
    assert not GRAPH["chatbot.answering.answer"] & above


def test_no_module_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in MODULES.values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_80_lines():
    """From its `def` line to its last line, docstring and nested functions included."""
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_each_subpackage_says_what_it_does_and_what_it_may_import():
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module == "chatbot":
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        lines = docstring.splitlines()
        assert len(lines) == 2 and lines[1].startswith("May import:"), f"{path.relative_to(ROOT)}: {docstring!r}"
