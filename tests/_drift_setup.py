"""A tuned folder built once per test module and laid anew, as built, for each test that uses it.

Tuning the experiment a module's tests check (a scikit-learn task on breast_cancer rows, say) is their set-up, not
what they test, and it cost each test a tuning. The store records absolute paths (the spec's folder, its data), so
the built folder is not copied elsewhere: it is put back at its own path, from a pristine copy taken right after
the build, before each test. Every test thus starts from the same store and files, whatever an earlier test
recorded, deleted or overwrote there."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class BuiltOnce:
    root: Path       # where it was built, and where each test finds it
    pristine: Path   # the copy taken right after the build

    def fresh(self) -> Path:
        """``root`` laid anew from the pristine copy (what a previous test left there is gone)."""
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.copytree(self.pristine, self.root, symlinks=True)
        return self.root


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> BuiltOnce:
    """A folder ``name`` that ``build`` filled (in a module-scoped fixture), with its pristine copy beside it."""
    root = tmp_path_factory.mktemp(name)
    build(root)
    pristine = tmp_path_factory.mktemp(f"{name}-pristine") / "copy"
    shutil.copytree(root, pristine, symlinks=True)
    return BuiltOnce(root, pristine)
