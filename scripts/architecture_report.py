"""The package's shape: lines per package, the longest functions, import cycles, imports that reach up a layer,
imports inside functions, and the ``infer.*`` keys.

    .venv/bin/python scripts/architecture_report.py [--json out.json] [--top 15]

Layers, lowest first (a module may import its own layer and the ones below; see docs/design.md):

    base      errors, paths, console, config (the typed config tree; every package's ``config`` module)
    data      contracts: images, keypoints, parsing, masks, layouts, datasets
    core      body (3D body model, fit, render), models (the paper's networks), losses, metrics
    infer     the inference core (prepare, model, compose) and its front ends' shared parts
    apps      synth (synthetic people), prepare (real datasets), evaluate, train, serve, env_info
    cli       the command line

An import counts wherever it is written (module top or inside a function), so a cycle hidden by an import
inside a function is still a cycle. Imports of a module by itself or under ``TYPE_CHECKING`` are ignored.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "glocal_cli"
LAYERS = ["base", "data", "core", "infer", "apps", "cli"]
LAYER_OF_PACKAGE = {
    "errors": "base", "paths": "base", "console": "base", "config": "base", "__init__": "base",
    "data": "data",
    "body": "core", "models": "core", "losses": "core", "metrics": "core",
    "infer": "infer",
    "synth": "apps", "prepare": "apps", "evaluate": "apps", "train": "apps", "serve": "apps", "env_info": "apps",
    "cli": "cli", "__main__": "cli",
}
"""Each top-level module or package of ``glocal_cli`` and its layer; a package's ``config`` module (frozen
dataclasses only, read by the config tree) belongs to the base layer."""


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[-1] == "config":
        return "base"
    if len(parts) == 1:
        return "base"
    return LAYER_OF_PACKAGE.get(parts[1], "apps")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(current: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, is_pkg: bool, modules: set[str]) -> None:
        self.module, self.is_pkg, self.modules = module, is_pkg, modules
        self.imports: list[tuple[str, bool, int]] = []  # (target module, inside a function, line)
        self.depth = 0
        self.type_checking = 0

    def _target(self, name: str) -> str | None:
        while name and name not in self.modules:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    def _add(self, name: str, line: int) -> None:
        target = self._target(name)
        if target and target != self.module and not self.type_checking:
            self.imports.append((target, self.depth > 0, line))

    def visit_If(self, node: ast.If) -> None:  # noqa: N802
        tc = isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        self.type_checking += tc
        for child in node.body:
            self.visit(child)
        self.type_checking -= tc
        for child in node.orelse:
            self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # noqa: N802
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
        for alias in node.names:
            if alias.name.startswith(PACKAGE):
                self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        base = _resolve(self.module, self.is_pkg, node)
        if not base.startswith(PACKAGE):
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in self.modules else base, node.lineno)


def _functions(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((node.end_lineno - node.lineno + 1, f"{module}:{node.name} (line {node.lineno})"))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    import sys

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def infer_keys() -> dict[str, list[str]]:
    """``infer.*`` keys by group (:data:`glocal_cli.infer.config.GROUPS`)."""
    from glocal_cli.infer.config import GROUPS

    return {group: list(keys) for group, keys in GROUPS.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(p) for p in files}
    graph: dict[str, set[str]] = defaultdict(set)
    lines: dict[str, int] = defaultdict(int)
    functions: list[tuple[int, str]] = []
    inner = 0
    upward_list: list[str] = []
    inner_by_module: dict[str, int] = defaultdict(int)
    for path in files:
        mod = module_name(path)
        text = path.read_text()
        pkg = mod.split(".")[1] if mod.count(".") >= 1 and path.name != "__init__.py" or mod.count(".") >= 2 \
            else "(top)"
        if mod.count(".") == 1 and path.name != "__init__.py":
            pkg = "(top)"
        lines[pkg] += len(text.splitlines())
        tree = ast.parse(text)
        functions += _functions(tree, mod)
        v = _Visitor(mod, path.name == "__init__.py", modules)
        v.visit(tree)
        for target, in_function, line in v.imports:
            graph[mod].add(target)
            if in_function:
                inner += 1
                inner_by_module[mod] += 1
            row = f"{mod}:{line} ({layer(mod)}) -> {target} ({layer(target)})"
            if LAYERS.index(layer(target)) > LAYERS.index(layer(mod)) and row not in upward_list:
                upward_list.append(row)
    cycles = _cycles(graph)
    functions.sort(reverse=True)
    keys = infer_keys()
    report = {
        "lines_per_package": dict(sorted(lines.items(), key=lambda kv: -kv[1])),
        "lines_total": sum(lines.values()),
        "longest_functions": [f"{n} lines  {name}" for n, name in functions[: args.top]],
        "import_cycles": cycles,
        "upward_imports": upward_list,
        "imports_inside_functions": inner,
        "imports_inside_functions_by_module": dict(sorted(inner_by_module.items(), key=lambda kv: -kv[1])[: args.top]),
        "infer_keys": {"total": sum(len(v) for v in keys.values()), **keys},
    }
    print(f"lines: {report['lines_total']} in {PACKAGE}/")
    for pkg, n in report["lines_per_package"].items():
        print(f"  {pkg:<10} {n:>6}")
    print("longest functions:")
    for row in report["longest_functions"]:
        print(f"  {row}")
    print(f"import cycles: {len(cycles)}")
    for comp in cycles:
        print(f"  {' <-> '.join(comp)}")
    print(f"upward imports: {len(upward_list)}")
    for row in upward_list:
        print(f"  {row}")
    print(f"imports inside functions: {inner}")
    print(f"infer.* keys: {report['infer_keys']['total']}")
    for group, names in keys.items():
        print(f"  {group}: {', '.join(names)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
