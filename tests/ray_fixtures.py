"""The Ray executor's tests share one local Ray cluster for the whole session (it takes ~5 s to start here).

Used by tests/test_ray_executor.py and tests/test_ray_schedulers.py (through conftest.py). Runs join it: a Ray
already initialized in the process is used as is.

Under pytest-xdist (`make test` runs two workers with ``--dist loadgroup``) both modules are in the ``ray`` group,
so one worker runs them all: one session cluster instead of one per worker (memory, CPUs, the temp folder below),
and the tests that start clusters of their own (``ray start`` heads, ``address: local``) never overlap.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")  # read by the cluster as it starts
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=256 * 2**20, _temp_dir="/tmp/ray-ts-tests")
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k)
        else:
            os.environ[k] = v
    yield ray
    ray.shutdown()
