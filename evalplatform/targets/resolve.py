"""Find a Python target's callable: imported from the project root or the suite folder only, never eval'd.

The suite folder and the project root are the only folders added to `sys.path`. The module found
must live inside the project, or be an installed package (site-packages, the standard library,
evalplatform itself): a module picked up from some other folder on the path is refused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.machinery
import inspect
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalplatform.errors import InputError
from evalplatform.paths import project_boundary
from evalplatform.targets.spec import PythonTarget

FIELD = "target.python"
_lock = threading.Lock()
_resolved: dict[tuple, "Resolved"] = {}
_loaded_mtime: dict[Path, int | None] = {}  # module files of user targets, as they were when imported


@dataclass(frozen=True)
class Resolved:
    """The target's callable (a function, or a class instantiated per trial) and its code version."""

    obj: Any
    is_class: bool
    module_file: Path
    code_version: str


@functools.cache
def _installed_roots() -> list[Path]:
    roots = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
             if (p := sysconfig.get_paths().get(key))}
    roots.add(Path(__file__).resolve().parents[1])  # evalplatform itself (the bundled demo targets)
    return sorted(roots)


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(r) for r in roots)


def _module_file(module: Any) -> Path | None:
    f = getattr(module, "__file__", None)
    return Path(f).resolve() if f else None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _changed_since_import(top: str) -> bool:
    for name, mod in list(sys.modules.items()):
        if name == top or name.startswith(top + "."):
            f = _module_file(mod)
            if f is not None and not _inside(f, _installed_roots()) and _loaded_mtime.get(f) not in (None, _mtime(f)):
                return True
    return False


def _evict(top: str) -> None:
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        f = _module_file(sys.modules[name])
        _loaded_mtime.pop(f, None)
        del sys.modules[name]


def _import(module_name: str, roots: list[Path], suite_file: Path, path: str) -> Any:
    """Import `module_name`, looking in `roots` first; a same-named module another suite loaded is replaced."""
    top = module_name.split(".")[0]
    local = importlib.machinery.PathFinder.find_spec(top, [str(r) for r in roots])
    cached = sys.modules.get(top)
    if local is not None and cached is not None:
        cached_file = _module_file(cached)
        wanted = Path(local.origin).resolve() if local.origin else None
        if cached_file is not None and wanted is not None and cached_file != wanted:
            if _inside(cached_file, _installed_roots()):
                raise InputError(suite_file, FIELD, f"cannot import {path!r}: the module name {top!r} is already "
                                 f"taken by {cached_file}", "rename your module or package")
            _evict(top)  # another suite's module of the same name: this suite gets its own
    if local is not None and top in sys.modules and _changed_since_import(top):
        _evict(top)  # a long-lived process (a Dagster code server) must not run old code under a new version
    saved = list(sys.path)
    sys.path[:0] = [str(r) for r in roots]
    try:
        module = importlib.import_module(module_name)
        for name, mod in list(sys.modules.items()):
            if (name == top or name.startswith(top + ".")) and (f := _module_file(mod)) and f not in _loaded_mtime:
                _loaded_mtime[f] = _mtime(f)
        return module
    finally:
        sys.path[:] = saved
        # Kept at the end (never in front of installed packages) for imports the target makes lazily.
        sys.path.extend(str(r) for r in roots if str(r) not in sys.path)


def _check_location(file: Path | None, roots: list[Path], boundary: Path, suite_file: Path, path: str) -> Path:
    if file is None:
        raise InputError(suite_file, FIELD, f"{path!r} is not defined in a Python file",
                         "point at a function or class in a module of your project")
    if not (file.is_relative_to(boundary) or _inside(file, _installed_roots())):
        raise InputError(suite_file, FIELD, f"{path!r} was found in {file}, outside the project folder {boundary}",
                         "keep the target's module inside the project (next to the suite or under its root), or "
                         "install it as a package")
    return file


def _code_version(target: PythonTarget, file: Path) -> str:
    if target.version is not None:
        return target.version
    return "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()


def _check_signature(obj: Any, is_class: bool, suite_file: Path, path: str) -> None:
    """A target is called with one argument, the case; a class is created with none (once per trial)."""
    try:
        if is_class:
            inspect.signature(obj).bind()
    except TypeError:
        raise InputError(suite_file, FIELD, f"class {path!r} cannot be created without arguments",
                         "take no arguments in __init__ and prepare each trial in setup(self, case)") from None
    except ValueError:  # no signature to read (a builtin): the call itself will tell
        return
    try:
        if is_class:
            inspect.signature(obj.__call__).bind(None, object())
        else:
            inspect.signature(obj).bind(object())
    except TypeError:
        raise InputError(suite_file, FIELD, f"{path!r} must take one argument, the case",
                         "define it as def name(case) (or __call__(self, case) on a class)") from None
    except ValueError:
        return


def resolve_target(target: PythonTarget, suite_dir: Path, suite_file: Path) -> Resolved:
    """The callable behind `target.python`; InputError (exit 2) naming the import path and the exception."""
    suite_dir = suite_dir.resolve()
    boundary = project_boundary(suite_dir)
    roots = list(dict.fromkeys([suite_dir, boundary]))
    module_name, _, attr = target.python.partition(":")
    with _lock:
        try:
            module = _import(module_name, roots, suite_file, target.python)
        except InputError:
            raise
        except (Exception, SystemExit) as exc:
            raise InputError(suite_file, FIELD, f"cannot import {target.python!r}: {type(exc).__name__}: {exc}",
                             f"make {module_name} importable from {suite_dir} or {boundary}") from None
        module_file = _check_location(_module_file(module), roots, boundary, suite_file, target.python)
        obj = getattr(module, attr, None)
        if obj is None:
            raise InputError(suite_file, FIELD, f"cannot import {target.python!r}: module {module_name} has no "
                             f"attribute {attr!r}", "check the name after the colon")
        is_class = inspect.isclass(obj)
        if is_class and not any("__call__" in vars(k) for k in obj.__mro__ if k is not object):
            raise InputError(suite_file, FIELD, f"class {target.python!r} has no __call__ method",
                             "give it a __call__(self, case) that returns the reply")
        if not callable(obj):
            raise InputError(suite_file, FIELD, f"{target.python!r} is a {type(obj).__name__}, not a function or class")
        _check_signature(obj, is_class, suite_file, target.python)
        defining = sys.modules.get(getattr(obj, "__module__", "") or "")
        file = _module_file(defining) if defining is not None else module_file
        file = _check_location(file or module_file, roots, boundary, suite_file, target.python)
        key = (target.python, target.version, str(suite_dir), str(file), file.stat().st_mtime_ns)
        hit = _resolved.get(key)
        if hit is not None and hit.obj is obj:
            return hit
        resolved = Resolved(obj=obj, is_class=is_class, module_file=file, code_version=_code_version(target, file))
        _resolved[key] = resolved
        return resolved
