"""What `tunesmith validate` checks of a spec, alone or as one of several checked in one process."""

from __future__ import annotations

import importlib.machinery
import os
import site
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tunesmith.import_path import folders_noted

if TYPE_CHECKING:
    from tunesmith.runner import Plan
    from tunesmith.spec.model import ExperimentSpec


def check_spec(path: str) -> Plan:
    """Check the spec at ``path`` completely (schema, space, strategy, trial code, the GPUs `run` would hand out)
    without running or recording anything.

    Raises:
        UserInputError: what is wrong, naming the field and the fix.
    """
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec

    plan = prepare(load_spec(path))
    spec = plan.spec
    _check_storage(spec)
    if spec.executor.kind == "process":  # the GPUs `run` would hand out are there (its executor checks at start)
        from tunesmith.executor.devices import worker_slots

        worker_slots(spec.executor.gpus, spec.executor.gpu_per_trial, spec.executor.workers)
    return plan


def check_spec_schema(path: str) -> Plan:
    """`validate --schema-only`: check the spec at ``path`` as far as it goes without importing any code it names
    (the trial function's module, whose top-level code runs at import; a task's classes): its YAML, schema and
    search space, the checks a spec given anew passes, all of `runner.prepare`'s but the code's (its strategy and
    options, the command's placeholders, the scheduler, the tracking extra), where it records. What only the code
    tells (the trial function is there and takes ``(config, trial)``, a task's parameter names) is a full check's
    (:func:`check_spec`).

    Raises:
        UserInputError: what is wrong, naming the field and the fix.
    """
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import read_spec_file
    from tunesmith.spec.model import check_new_spec

    spec = read_spec_file(path, import_classes=False)
    check_new_spec(spec)
    plan = prepare(spec, import_code=False)
    _check_storage(plan.spec)
    return plan


def _check_storage(spec: ExperimentSpec) -> None:
    """What `run` refuses of where the spec records and tracks, without opening either: an in-memory store (the
    spec's ``storage``), and a tracking URI naming the store `run` would use (the spec's ``storage``, else
    ``TUNESMITH_STORAGE``, else ./tunesmith.db) or an SQLite file holding a tunesmith store."""
    from tunesmith.storage.sql import refuse_in_memory, resolve_url
    from tunesmith.tracking import check_tracking_destination

    if spec.storage is not None:
        refuse_in_memory(spec.storage, "storage")
    check_tracking_destination(spec, resolve_url(None, spec.storage, os.environ))


@contextmanager
def own_import_path() -> Iterator[None]:
    """Check a spec, one of several, as if alone: the modules its check imported from its folder are unloaded
    after, and the Python path is put back as it was. Otherwise a spec naming `train:objective` with no train.py
    beside it was valid when checked after one whose folder has one, and a folder's helpers.py stood in for the next
    spec's own (also where the folder is on the path anyway: `python -m`, `PYTHONPATH=.`). The spec's folder leaves
    the path by itself (import_path); what its trial code put there (its own lib folder) leaves here.

    Only what lies directly in the spec's folder goes (see :func:`_unloaded`): a module whose file is there, a
    package whose directory is there, with its submodules. The folder may hold the Python environment (uv's
    `.venv`, an env under ~), and an installed package cannot always be loaded twice in one process (numpy refuses),
    so nothing under an installed-packages or standard-library folder goes, wherever it lies, nor tunesmith."""
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    with folders_noted() as imported_from:
        try:
            yield
        finally:
            # the spec's folder (its `base_dir:` where the spec names another), and any its trial code added
            added = {p for p in sys.path if p and p not in path_before}
            folders = {Path(p).resolve() for p in imported_from | added}
            sys.path[:] = path_before
            for name in _unloaded(set(sys.modules) - modules_before, folders):
                del sys.modules[name]


def _unloaded(new: set[str], folders: set[Path]) -> list[str]:
    """Of the ``new`` modules, those to unload: each whose top-level module or package lies directly in one of
    ``folders``, where it is new too (one imported before stays, with what it imported since). Never one with
    compiled code (the library stays loaded, and some refuse a second load), nor one installed or tunesmith's."""
    kept = _installed_folders()
    tops = {name.partition(".")[0] for name in new}
    going = {top for top in tops if top in new and _lies_in(sys.modules.get(top), folders, kept)}
    under = [name for name in new if name.partition(".")[0] in going]
    compiled = {name.partition(".")[0] for name in under if _is_compiled(sys.modules.get(name))}
    return [name for name in under if name.partition(".")[0] not in compiled]


def _lies_in(module: object, folders: set[Path], kept: list[Path]) -> bool:
    """Whether ``module`` (top-level) lies directly in one of ``folders``: a module's file, a package's directory
    (a namespace package's every one); never one under a folder of ``kept``, nor tunesmith itself."""
    if module is None or getattr(module, "__name__", "") == "tunesmith":
        return False
    package_dirs = getattr(module, "__path__", None)
    file = getattr(module, "__file__", None)
    places = [Path(d) for d in package_dirs] if package_dirs is not None else [Path(file)] if file else []
    if not places:
        return False  # built in, or made in memory: nothing in a folder
    resolved = [place.resolve() for place in places]
    return (all(place.parent in folders for place in resolved)
            and not any(place.is_relative_to(folder) for place in resolved for folder in kept))


def _is_compiled(module: object) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and str(file).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _installed_folders() -> list[Path]:
    """Where installed packages and the standard library lie: the interpreter's, its site-packages, the user's."""
    paths = sysconfig.get_paths()
    found = [paths.get(key) for key in ("purelib", "platlib", "stdlib", "platstdlib")]
    found += [*site.getsitepackages(), site.getusersitepackages()]
    return [Path(p).resolve() for p in found if p]
