"""The Ray executor's tests share one local Ray cluster while they run (it takes ~5 s to start here).

Used by tests/test_ray_executor.py and tests/test_ray_schedulers.py (through conftest.py). Runs join it: a Ray
already initialized in the process is used as is.

Under pytest-xdist (`make test` runs two workers with ``--dist loadgroup``) both modules are in the ``ray`` group,
so one worker runs them all: one cluster instead of one per worker (memory, CPUs, the temp folder below), and the
tests that start clusters of their own (``ray start`` heads, ``address: local``) never overlap.

The cluster is shut down as soon as the next test is not one of the ``ray`` group (``pytest_runtest_teardown`` in
conftest.py calls ``after_test``): an idle cluster's daemons cost ~2.5 CPU-s a minute here, and the group runs
early in a worker's share, so a cluster kept to the session's end cost the rest of the suite ~0.5 CPU-minutes. A
test of the group that comes later starts it again.
"""

from __future__ import annotations

import os

import pytest

RAY_GROUP = "ray"


def _start(ray) -> None:
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")  # read by the cluster as it starts
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=256 * 2**20, _temp_dir="/tmp/ray-ts-tests")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'tunesmith[ray]'")
    if not ray.is_initialized():
        _start(ray)
    return ray


def _in_ray_group(item: pytest.Item | None) -> bool:
    return item is not None and any(m.args[:1] == (RAY_GROUP,) for m in item.iter_markers("xdist_group"))


def after_test(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Shut the cluster down once the Ray group's run of tests ends (the session's last test included)."""
    if not _in_ray_group(item) or _in_ray_group(nextitem):
        return
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
