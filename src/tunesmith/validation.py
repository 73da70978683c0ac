"""What `tunesmith validate` checks of a spec, alone or as one of several checked in one process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunesmith.runner import Plan


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
    if spec.executor.kind == "process":  # the GPUs `run` would hand out are there (its executor checks at start)
        from tunesmith.executor.devices import worker_slots

        worker_slots(spec.executor.gpus, spec.executor.gpu_per_trial, spec.executor.workers)
    return plan


@contextmanager
def own_import_path() -> Iterator[None]:
    """Check one spec of several as if alone: the folders its check put on the Python path (the spec's own, where
    its trial code is imported from) are taken off again, with the modules imported from them. Otherwise a spec
    naming `train:objective` with no train.py beside it was valid when checked after one whose folder has one, and
    a folder's helpers.py stood in for another's. Modules imported from anywhere else (installed packages) stay."""
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    try:
        yield
    finally:
        added = [Path(p).resolve() for p in sys.path if p and p not in path_before]
        sys.path[:] = path_before
        for name in set(sys.modules) - modules_before:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(folder) for folder in added):
                del sys.modules[name]
