"""Digests of resdiff's own code: which code computed a result or compiled a kernel.

Every sidecar records the code that computed its dataset (:func:`code_digest`), as
provenance: its experiment module and every resdiff module that module imports,
transitively, found by reading the import statements (nothing is executed), less the
modules that only talk to the user, draw or touch the disk (:data:`NOT_COMPUTING`) and
the modules only they import. It is not the cache key: a dataset is keyed on its
numerical versions (:mod:`resdiff.numerics`), so a refactor keeps every cached CSV.
A figure is redrawn when the digest of its plotting code changes (``within``), and
Numba's compiled-code cache is keyed on :func:`computing_digest`.

Each module counts by its syntax tree without docstrings, so comments, docstrings and
layout are not part of a digest; anything that runs is. A package's ``__init__`` counts
for every module inside it (importing the module runs it).
"""

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "resdiff"
ROOT = Path(__file__).resolve().parent

# modules and packages that never change a number: command line, drawing, progress
# lines, files on disk, running and checking datasets, the version table
NOT_COMPUTING = (
    "resdiff.cli",
    "resdiff.plots",
    "resdiff.progress",
    "resdiff.files",
    "resdiff.pipeline",
    "resdiff.executor",
    "resdiff.verify",
    "resdiff.numerics",
)


def _excluded(name, exclude):
    return any(name == e or name.startswith(e + ".") for e in exclude)


def module_file(name, root=ROOT):
    """The file of module ``name`` (``resdiff.a.b``) under ``root``; None if there is none
    (e.g. ``resdiff.__version__``, an attribute)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = Path(root).joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name, path):
    """The resdiff module names that the module ``name`` (at ``path``) imports anywhere
    in its body, function-level imports included; candidates that are not modules are
    dropped later by :func:`module_file`."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in found if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _parents(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(start, root=ROOT, exclude=NOT_COMPUTING, within=None):
    """Module name -> file of ``start`` and every resdiff module it imports,
    transitively, with their packages' ``__init__``; ``exclude``d modules, and with
    ``within`` (a package) those outside it, are neither included nor followed
    (``start`` itself always is)."""
    seen, todo = {}, [start]
    while todo:
        name = todo.pop()
        outside = within is not None and not _excluded(name, (within,))
        if name in seen or (name != start and (_excluded(name, exclude) or outside)):
            continue
        path = module_file(name, root)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(name, path))
        todo.extend(_parents(name))
    return seen


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _module_text(path):
    return ast.dump(_strip_docstrings(ast.parse(path.read_bytes(), filename=str(path))))


def _digest(modules):
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0")
        digest.update(_module_text(modules[name]).encode() + b"\0")
    return digest.hexdigest()[:16]


def _module_of(target):
    """``"pkg.mod:attr"``, ``"pkg.mod"`` or a function -> ``"pkg.mod"``."""
    if callable(target):
        return target.__module__
    return str(target).split(":")[0]


@functools.lru_cache(maxsize=None)
def _code_digest(module, root, exclude, within):
    return _digest(closure(module, Path(root), exclude, within))


def code_digest(target, root=ROOT, exclude=NOT_COMPUTING, within=None):
    """Digest of the code that ``target`` (a ``"module:function"`` string, a module name
    or a function) runs: see the module docstring. Computed once per process."""
    return _code_digest(_module_of(target), str(root), tuple(exclude), within)


def all_modules(root=ROOT):
    """Module name -> file of every ``.py`` file under ``root``."""
    root = Path(root)
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((PACKAGE,) + parts)] = path
    return modules


@functools.lru_cache(maxsize=None)
def computing_digest(root=ROOT):
    """Digest of every module that can compute (all but :data:`NOT_COMPUTING`): the key
    of Numba's compiled-code cache, which re-validates a cached kernel against its own
    file only, not against the functions it inlines from other modules."""
    modules = {n: p for n, p in all_modules(root).items() if not _excluded(n, NOT_COMPUTING)}
    return _digest(modules)
