"""Environment variables set for a while in this process, and put back as they were after."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def variables_set(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in ``os.environ`` inside the block; each is restored (or removed) on the way out. Only for a
    process that nothing else reads the environment of meanwhile (a worker's attempt, a driver's start-up)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
