"""Fitness tests of the architecture (docs/ARCHITECTURE.md, "The core and its plugins"), read from the
source with ``ast``: the core imports no plugin, not even through importlib, and names none outside
the settings module and the paper's transcription; no library file is over 400 lines; the
module-level imports have no circles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness.registry import CHECKPOINT_FORMATS, DATASETS, ENCODERS, METHODS, PROTOCOLS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("harness", "methods", "protocols")
PLUGIN_PACKAGES = ("harness.methods", "harness.protocols")
# built-in dataset kinds live inside harness/data: they are plugins, not core
CORE_EXCLUDED = ("harness/data/readers/", "harness/data/synthetic/")
# where the core may name plugins: the run defaults, and the paper's own tables and figures
NAMING_ALLOWED = {"harness/config.py": "the defaults of a run",
                  "harness/paper.py": "the paper's tables and figures, transcribed",
                  "harness/tables/specs.py": "the paper's table layout (which dataset each paper column is)"}
MAX_LINES = 400
# plugin names that are ordinary words: they may occur inside identifiers (``num_joints``, ``random``)
ORDINARY_WORDS = {"random", "joints", "supervised", "contrastive"}


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in ("methods", "protocols"):
        parts = ["harness", *parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def library_files() -> list[Path]:
    return sorted(p for base in LIBRARY for p in (ROOT / base).rglob("*.py"))


def core_files() -> list[Path]:
    return [p for p in library_files() if p.relative_to(ROOT).parts[0] == "harness"
            and not p.relative_to(ROOT).as_posix().startswith(CORE_EXCLUDED)]


def imported_modules(path: Path, *, module_level_only: bool) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of every harness import in ``path``."""
    name, is_pkg = module_name(path)
    tree = ast.parse(path.read_text())
    if module_level_only:  # guarded imports at module level (try/if) run at import time too
        nodes = [n for top in tree.body for n in (ast.walk(top) if isinstance(top, (ast.If, ast.Try)) else [top])]
    else:
        nodes = list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("harness")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("harness"):
                out.append((node.lineno, target, [a.name for a in node.names]))
    return out


def docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            ids.add(id(body[0].value))
    return ids


def test_the_core_imports_no_plugin_module():
    bad = []
    for path in core_files():
        rel = path.relative_to(ROOT).as_posix()
        for line, target, names in imported_modules(path, module_level_only=False):
            full = [target, *(f"{target}.{n}" for n in names)]
            if any(m == p or m.startswith(p + ".") for m in full[:1] for p in PLUGIN_PACKAGES):
                bad.append(f"{rel}:{line}: imports {target}")
            elif target == "harness" and set(names) & {"methods", "protocols"}:
                bad.append(f"{rel}:{line}: imports harness.{'/'.join(set(names) & {'methods', 'protocols'})}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # importlib.import_module("harness.methods...") / __import__(...)
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                fn = node.func
                called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if called in ("import_module", "__import__") and \
                        node.args[0].value.startswith(PLUGIN_PACKAGES):
                    bad.append(f"{rel}:{node.lineno}: imports {node.args[0].value} through {called}")
    assert not bad, "the core reaches plugins only through the registry:\n" + "\n".join(bad)


def plugin_names() -> dict[str, str]:
    """Every registered plugin's name (the core's own checkpoint formats, harness/checkpoints, aside)."""
    names: dict[str, str] = {}
    for registry in (METHODS, ENCODERS, PROTOCOLS, DATASETS, CHECKPOINT_FORMATS):
        for name in registry.names():
            obj = registry.get(name)
            module = getattr(obj, "__module__", "") or type(obj).__module__
            if registry is CHECKPOINT_FORMATS and module.startswith("harness.checkpoints"):
                continue
            names.setdefault(name, registry.kind)
    return names


def plugin_word() -> re.Pattern:
    """A method's or encoder's name inside an identifier, any case."""
    words = {n for n in set(METHODS.names()) | set(ENCODERS.names()) if n.isalpha() and n not in ORDINARY_WORDS}
    return re.compile("|".join(sorted(map(re.escape, words), key=len, reverse=True)), re.I)


def test_the_core_names_no_plugin():
    """No string in core code (docstrings aside) is a registered plugin's name, and no identifier is
    built from a method's or encoder's name (``USDRLSpatial``), outside ``NAMING_ALLOWED``."""
    names, word = plugin_names(), plugin_word()
    bad = []
    for path in core_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in NAMING_ALLOWED:
            continue
        tree = ast.parse(path.read_text())
        docs = docstring_ids(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and node.value in names:
                bad.append(f"{rel}:{node.lineno}: names the {names[node.value]} {node.value!r}")
            ident = getattr(node, "name", None) if isinstance(node, (ast.ClassDef, ast.FunctionDef)) else \
                (node.id if isinstance(node, ast.Name) else None)
            if isinstance(ident, str) and word.search(ident):
                bad.append(f"{rel}:{node.lineno}: identifier {ident!r} is named after a plugin")
    assert not bad, "plugin knowledge in the core (move it to the plugin's own file):\n" + "\n".join(bad)


def test_no_library_file_is_over_400_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in library_files()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these modules (one job per module):\n" + "\n".join(long)


def test_module_level_imports_have_no_circles():
    modules = {module_name(p)[0]: p for p in library_files()}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for _, target, names in imported_modules(path, module_level_only=True):
            for n in names or [""]:
                sub = f"{target}.{n}" if n else target
                deps.add(sub if sub in modules else target)
        graph[name] = {d for d in deps if d in modules and d != name}
    circles = strongly_connected(graph)
    assert not circles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (iterative: the graph is a few hundred modules)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The detectors themselves: a circle, a plugin import through importlib and a plugin name."""
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []
    src = tmp_path / "m.py"
    src.write_text('import importlib\n"""doc: usdrl"""\nX = "usdrl"\nimportlib.import_module("harness.methods.x")\n')
    tree = ast.parse(src.read_text())
    consts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docstring_ids(tree)]
    assert "usdrl" in consts and "harness.methods.x" in consts and "usdrl" in plugin_names()
    assert plugin_word().search("USDRLSpatial") and not plugin_word().search("num_joints")


def test_no_library_module_name_occurs_twice():
    """One name, one module: ``knn.py`` beside ``knn.py`` made every traceback and grep ambiguous."""
    seen: dict[str, list[str]] = {}
    for path in library_files():
        if path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    twice = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not twice, f"module names used twice: {twice}"
