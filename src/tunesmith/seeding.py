"""Seeds: every random component takes an explicit seed; children derive theirs from the experiment's."""

from __future__ import annotations

import hashlib
import secrets


def derive_seed(parent: int, *path: int | str) -> int:
    """A stable 31-bit seed for a child (a trial number, a component name) of ``parent``."""
    text = ":".join(str(p) for p in (parent, *path))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def fresh_seed() -> int:
    """A seed for an experiment that did not declare one; it is recorded, so the run can be replayed."""
    return secrets.randbelow(2**31)
