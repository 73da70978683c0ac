"""What a path a file is written whole to (a report, the metrics textfile) names: a plain file, or something else.

Such a file is written beside its path, then renamed over it, so a reader never sees half of it. A rename replaces
whatever is at the path: a symlink (the link lost, its target left as it was), a FIFO another program reads, a
device such as /dev/stdout (as root: /dev/null replaced with a file). So a link is followed to the file it names,
and a path that is not a plain file is never renamed over (the caller writes into it, or refuses it).
"""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def written_path(path: str) -> str:
    """The path to write: ``path`` itself, or the file its symlinks lead to (which may not exist yet)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def special_kind(path: str) -> str | None:
    """What ``path`` is when it exists and is neither a plain file nor a folder (``"a FIFO"``); else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((name for is_kind, name in _KINDS if is_kind(mode)), None)
