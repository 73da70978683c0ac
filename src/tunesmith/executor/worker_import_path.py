"""The import path a worker process starts with, and the one its trials get back.

A worker must import whatever the coordinator can: tunesmith, and a trial module found through a folder the
coordinator's caller put on ``sys.path`` (a script, a notebook, an editable install's ``.pth``). So it starts with
the coordinator's ``sys.path`` in ``PYTHONPATH``. That path is the worker's alone: a command trial that inherited it
ran its script's own Python (another virtualenv, another version) on tunesmith's standard library and packages
('SRE module mismatch', or tunesmith's numpy in place of the script's, without a word). So the coordinator's own
``PYTHONPATH``, or its absence, travels beside it, and the worker puts it back as it starts, before any trial: its
trials, and what they start, see the environment tunesmith was started with, as under the inline executor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, MutableMapping

# the coordinator's own PYTHONPATH as JSON (null: unset), for the worker to put back
USERS_PYTHONPATH = "_TUNESMITH_USERS_PYTHONPATH"


def worker_env(environ: Mapping[str, str], sys_path: Iterable[str]) -> dict[str, str]:
    """``environ`` with ``sys_path`` (its folders that exist, each once) as ``PYTHONPATH``, and the ``PYTHONPATH``
    it had kept for :func:`restore_users_pythonpath`."""
    env = dict(environ)
    env[USERS_PYTHONPATH] = json.dumps(environ.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in sys_path if p and os.path.isdir(p)))
    return env


def restore_users_pythonpath(environ: MutableMapping[str, str]) -> None:
    """Put back the ``PYTHONPATH`` :func:`worker_env` kept (removing it where it was unset); this process's own
    ``sys.path`` is set already and stays. Nothing to do in a process that no worker_env started."""
    kept = environ.pop(USERS_PYTHONPATH, None)
    if kept is None:
        return
    users = json.loads(kept)
    if users is None:
        environ.pop("PYTHONPATH", None)
    else:
        environ["PYTHONPATH"] = users
