"""On a real NVIDIA GPU: process-executor trials run CUDA work on the devices they are assigned (issue #14, item 4).

Skips, saying why, where torch or a CUDA device is missing (CI and most laptops: torch is not a test dependency).
Where there is one: ``pytest tests/test_gpu_real.py``. `test_gpu_assignment.py` covers the same assignment logic
everywhere, without a device.
"""

from __future__ import annotations

import pytest

import tunesmith
from tunesmith.records import TrialState

torch = pytest.importorskip("torch", reason="torch is not installed: the real-GPU check needs torch with CUDA")
if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device: the real-GPU check needs an NVIDIA GPU", allow_module_level=True)

CUDA_TRIALS = """
import os, time
import torch

def matmul(config, trial):
    assert torch.cuda.is_available(), "no CUDA device with CUDA_VISIBLE_DEVICES=" + os.environ["CUDA_VISIBLE_DEVICES"]
    a = torch.randn(2048, 2048, device="cuda")
    b = a @ a
    torch.cuda.synchronize()
    time.sleep(1.0)  # hold the device long enough for two workers to overlap
    return {"loss": config["x"], "finite": float(torch.isfinite(b).all().item()),
            "devices_seen": float(torch.cuda.device_count()),
            "visible": float(os.environ["CUDA_VISIBLE_DEVICES"]),
            "allocated_mib": torch.cuda.max_memory_allocated() / 2**20, "worker_pid": float(os.getpid())}
"""


@pytest.fixture
def cuda_project(project, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # `gpus: all` means the machine's own devices here
    project.write("cuda_trials.py", CUDA_TRIALS)
    return project


def test_gpus_all_one_per_trial_runs_cuda_work_on_the_assigned_device(cuda_project):
    spec = cuda_project.spec(name="gpu-whole", trial={"function": "cuda_trials:matmul"}, budget={"trials": 3},
                             executor={"kind": "process", "workers": 1, "gpus": "all", "gpu_per_trial": 1})
    result = tunesmith.run(spec, storage=cuda_project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 3, [t.error for t in result.trials]
    for t in result.trials:
        assert t.metrics["finite"] == 1.0 and t.metrics["allocated_mib"] >= 16, t.metrics  # two 16 MiB tensors
        assert t.metrics["devices_seen"] == 1.0, "a trial sees only its own device"
        assert t.metrics["visible"] == t.metrics["gpu_device_0"] == 0.0
        assert "gpu_share" not in t.metrics
    # one worker for life: CUDA set up by the first trial still serves the next ones
    assert len({t.metrics["worker_pid"] for t in result.trials}) == 1


def test_half_a_gpu_each_puts_two_trials_on_one_device_at_once(cuda_project):
    spec = cuda_project.spec(name="gpu-half", trial={"function": "cuda_trials:matmul"}, budget={"trials": 4},
                             executor={"kind": "process", "workers": 2, "gpus": "all", "gpu_per_trial": 0.5})
    result = tunesmith.run(spec, storage=cuda_project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 4, [t.error for t in result.trials]
    assert {(t.metrics["gpu_device_0"], t.metrics["gpu_share"], t.metrics["finite"]) for t in result.trials} == {
        (0.0, 0.5, 1.0)}
    assert len({t.metrics["worker_pid"] for t in result.trials}) == 2
    overlapping = [(a.number, b.number) for a in result.trials for b in result.trials
                   if a.number < b.number and a.started_at < b.finished_at and b.started_at < a.finished_at]
    assert overlapping, "two workers shared the device at the same time"


def test_a_listed_gpu_the_machine_lacks_is_refused_before_anything_runs(cuda_project):
    path = cuda_project.write_spec(cuda_project.spec(
        name="gpu-missing", trial={"function": "cuda_trials:matmul"},
        executor={"kind": "process", "workers": 1, "gpus": [0, torch.cuda.device_count()]}))
    proc = cuda_project.cli("run", str(path), "--quiet")  # the fixture unset CUDA_VISIBLE_DEVICES
    assert proc.returncode == 2, proc.stderr
    assert f"executor.gpus lists GPU(s) [{torch.cuda.device_count()}], but this machine has GPU(s)" in proc.stderr
    assert "Traceback" not in proc.stderr
