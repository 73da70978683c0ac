"""How many threads each worker's numeric libraries may start: the machine's CPUs shared among the workers.

OpenBLAS, MKL and OpenMP each start one thread per CPU in every process that loads them. With several workers on
one machine that is workers x CPUs threads, and OpenBLAS's spin-waiting threads then take CPU from the fits they
were meant to speed up: a two-worker scikit-learn task on two cores (examples/task-stratified.yaml) took 15.6 CPU-s
and 9.7 s, and 7.4 CPU-s and 5.7 s with one thread per worker. So workers get CPUs // workers threads each (at
least one), as joblib's loky workers and Ray's actors do. A user who set any of these variables has chosen: none is
changed then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or taskset's share), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def thread_share_env(workers: int, environ: Mapping[str, str], cpus: int) -> dict[str, str]:
    """The variables to add to a worker's environment: none for one worker or when ``environ`` sets any of them."""
    if workers <= 1 or any(name in environ for name in THREAD_VARIABLES):
        return {}
    share = str(max(1, cpus // workers))
    return {name: share for name in THREAD_VARIABLES}
