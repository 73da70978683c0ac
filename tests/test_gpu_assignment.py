"""Local GPUs without Ray: each process-executor worker owns its devices; trials see them in CUDA_VISIBLE_DEVICES.

No GPU is needed: the assignment and the environment a trial sees are what is tested. `test_gpu_real.py` runs
CUDA work on a real device where one is.
"""

from __future__ import annotations

import pytest

import tunesmith
from tunesmith.errors import SpecError, UserInputError
from tunesmith.executor import devices
from tunesmith.executor.devices import check_listed_gpus, gpu_slots, slot_metrics, visible_gpus
from tunesmith.records import TrialState
from tunesmith.spec.loader import spec_from_dict

SEES = """
import os, time

def sees(config, trial):
    time.sleep(0.3)  # long enough for the two workers to run side by side
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return {"loss": config["x"], "seen": float(devices.replace(",", "") or -1)}
"""


def test_whole_gpus_are_never_shared():
    assert gpu_slots([0, 1, 2, 3], 1, 4) == [(0,), (1,), (2,), (3,)]
    assert gpu_slots([0, 1, 2, 3], 2, 2) == [(0, 1), (2, 3)]
    assert gpu_slots([3, 5], 1, 1) == [(3,)]


def test_fractions_share_a_gpu_spreading_first():
    assert gpu_slots([0, 1], 0.5, 4) == [(0,), (1,), (0,), (1,)]
    assert gpu_slots([0, 1], 0.5, 2) == [(0,), (1,)], "two workers on two GPUs do not share"
    assert gpu_slots([0], 0.25, 4) == [(0,)] * 4


def test_more_workers_than_gpu_slots_is_a_clear_error():
    with pytest.raises(UserInputError, match=r"executor.workers is 3, but executor.gpus \[0, 1\] with gpu_per_trial "
                                             r"1 make only 2 trial slot\(s\)"):
        gpu_slots([0, 1], 1, 3)
    with pytest.raises(UserInputError, match="make only 1 trial slot"):
        gpu_slots([0, 1, 2], 2, 2)


def test_recorded_devices():
    assert slot_metrics((2, 3), 2) == {"gpu_device_0": 2.0, "gpu_device_1": 3.0}
    assert slot_metrics((1,), 0.5) == {"gpu_device_0": 1.0, "gpu_share": 0.5}


def test_gpu_fields_are_validated(project):
    with pytest.raises(SpecError, match=r"executor.gpus: applies to kind: process only .* resources_per_trial"):
        spec_from_dict(project.spec(executor={"kind": "ray", "gpus": [0]}))
    with pytest.raises(SpecError, match=r"executor.gpus: must be all or a list of distinct GPU indices"):
        spec_from_dict(project.spec(executor={"kind": "process", "gpus": [0, 0]}))
    with pytest.raises(SpecError, match=r"executor.gpu_per_trial: must be a whole number"):
        spec_from_dict(project.spec(executor={"kind": "process", "gpus": [0, 1], "gpu_per_trial": 1.5}))
    with pytest.raises(SpecError, match=r"executor.gpu_per_trial: a share of one GPU must be 1/n .* got 0.4 \(did "
                                         r"you mean 0.5\?\)"):
        spec_from_dict(project.spec(executor={"kind": "process", "gpus": [0, 1], "gpu_per_trial": 0.4}))
    assert spec_from_dict(project.spec(executor={"gpus": [0], "gpu_per_trial": 0.2})).executor.gpus_per_trial() == 0.2
    assert spec_from_dict(project.spec(executor={"gpus": "all"})).executor.gpus == "all"


def test_an_inherited_allocation_is_what_gpus_all_takes_and_all_a_list_may_name(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == [2, 3]
    check_listed_gpus([3])
    with pytest.raises(UserInputError, match=r"executor.gpus lists GPU\(s\) \[0\], but this process was started "
                                             r"with CUDA_VISIBLE_DEVICES=2,3"):
        check_listed_gpus([0, 3])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,x,3")  # CUDA stops at the first invalid entry
    assert visible_gpus() == [0, 1]
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        with pytest.raises(UserInputError, match="CUDA_VISIBLE_DEVICES set to no device"):
            visible_gpus()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f1c2a3b-0000")
    with pytest.raises(UserInputError, match="names devices by UUID"):
        visible_gpus()


def test_a_listed_gpu_the_machine_lacks_is_refused_where_the_machine_has_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "machine_gpus", lambda: [0])
    with pytest.raises(UserInputError, match=r"executor.gpus lists GPU\(s\) \[1\], but this machine has GPU\(s\) "
                                             r"\[0\]; list only those, or use gpus: all"):
        check_listed_gpus([0, 1])
    monkeypatch.setattr(devices, "machine_gpus", lambda: [])
    check_listed_gpus([0, 1])  # no driver: the assignment is prepared as given


def test_each_trial_sees_its_workers_gpu_and_records_it(project, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # the coordinator's allocation, whatever this machine has
    project.write("sees.py", SEES)
    spec = project.spec(name="gpus", trial={"function": "sees:sees"}, budget={"trials": 6},
                        executor={"kind": "process", "workers": 2, "gpus": [0, 1], "gpu_per_trial": 1})
    result = tunesmith.run(spec, storage=project.storage)
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    for t in result.trials:
        assert t.metrics["seen"] == t.metrics["gpu_device_0"], "the trial saw the device it is recorded with"
    assert {t.metrics["gpu_device_0"] for t in result.trials} == {0.0, 1.0}
    # overlapping trials are on different devices
    for a in result.trials:
        for b in result.trials:
            if a.number < b.number and a.started_at < b.finished_at and b.started_at < a.finished_at:
                assert a.metrics["gpu_device_0"] != b.metrics["gpu_device_0"], (a.number, b.number)


def test_a_command_trial_sees_two_gpus(project, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    project.write("devices.py", "import json, os\n"
                                "print(json.dumps({'loss': float(os.environ['CUDA_VISIBLE_DEVICES'].replace(',', ''))}))\n")
    spec = project.spec(name="gpus-cmd", budget={"trials": 2}, trial={"command": "python {spec_dir}/devices.py"},
                        executor={"kind": "process", "workers": 1, "gpus": [2, 3], "gpu_per_trial": 2})
    result = tunesmith.run(spec, storage=project.storage)
    for t in result.trials:
        assert t.state is TrialState.COMPLETED, t.error
        assert t.values == (23.0,)
        assert (t.metrics["gpu_device_0"], t.metrics["gpu_device_1"]) == (2.0, 3.0)


def test_a_commands_trial_env_devices_give_way_to_the_executors_as_a_functions_do(project, monkeypatch):
    """A command's trial.env: {CUDA_VISIBLE_DEVICES: "3"} overrode executor.gpus: both trials of two workers ran on
    device 3, each recorded with gpu_device_0 0 or 1, and nothing was said. The executor's assignment wins, as for a
    function trial, the trial records the device it saw, and validate says the variable is ignored."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # the coordinator's allocation, whatever this machine has
    project.write("devices.py", "import json, os\n"
                                "print(json.dumps({'loss': 1.0, 'seen': float(os.environ['CUDA_VISIBLE_DEVICES'])}))\n")
    spec = project.spec(name="gpus-env", budget={"trials": 2},
                        trial={"command": "python {spec_dir}/devices.py", "env": {"CUDA_VISIBLE_DEVICES": "3"}},
                        executor={"kind": "process", "workers": 2, "gpus": [0, 1], "gpu_per_trial": 1},
                        cost={"gpu_hour": 1.0})
    said = " ".join(project.cli("validate", str(project.write_spec(spec))).stderr.split())
    assert ("trial.env sets CUDA_VISIBLE_DEVICES, which is ignored: each trial's devices are those executor.gpus "
            "assigns it") in said, said
    result = tunesmith.run(spec, storage=project.storage)
    for t in result.trials:
        assert t.state is TrialState.COMPLETED, t.error
        assert t.metrics["seen"] == t.metrics["gpu_device_0"], "the trial saw the device it is recorded with"
        assert t.metrics["gpus"] == 1.0, "charged for the device it was given, not for trial.env's"


def test_gpus_all_without_a_gpu_names_the_fix(project, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    path = project.write_spec(project.spec(name="gpus-all", executor={"kind": "process", "gpus": "all"}))
    proc = project.cli("run", str(path), "--quiet")
    if proc.returncode == 0:
        pytest.skip("this machine has an NVIDIA GPU")
    assert proc.returncode == 2, proc.stderr
    assert "executor.gpus is all, but this machine shows no NVIDIA GPU" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_refuses_the_devices_run_would_refuse(project):
    """`validate` said `valid` for devices this coordinator cannot hand out; `run` then refused them (exit 2) only
    after recording the experiment, whose name the corrected spec then found taken."""
    outside = project.write_spec(project.spec(name="outside", executor={"kind": "process", "gpus": [0]}))
    too_few = project.write_spec(project.spec(name="too-few", executor={"kind": "process", "workers": 2,
                                                                        "gpus": "all"}))
    allocation = {"CUDA_VISIBLE_DEVICES": "1"}  # a batch scheduler's allocation, whatever this machine has
    cases = ((outside, "error: executor.gpus lists GPU(s) [0], but this process was started with "
                       "CUDA_VISIBLE_DEVICES=1; list only those, or use gpus: all"),
             (too_few, "error: executor.workers is 2, but executor.gpus [1] with gpu_per_trial 1.0 make only 1 trial "
                       "slot(s)"))
    validated = [project.cli("validate", str(path), env=allocation) for path, _ in cases]
    for proc, (_, message) in zip(validated, cases, strict=True):
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not project.db.exists(), "validate records nothing"
    for proc, (path, _) in zip(validated, cases, strict=True):
        ran = project.cli("run", str(path), "--quiet", env=allocation)
        assert ran.returncode == 2 and ran.stderr.strip() == proc.stderr.strip(), ran.stderr


def test_listed_gpus_on_a_machine_without_any_warn_that_trials_find_none(project, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if devices.machine_gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    path = project.write_spec(project.spec(name="listed", executor={"kind": "process", "gpus": [0, 1]},
                                           cost={"gpu_hour": 2.5}))
    warning = ("warning: executor.gpus lists GPU(s) [0, 1], but this machine shows no NVIDIA GPU: each trial gets "
               "its devices in CUDA_VISIBLE_DEVICES and finds none there (cost.gpu_hour still charges them)")
    for command in (("validate", str(path)), ("run", str(path), "--quiet")):
        proc = project.cli(*command)
        assert proc.returncode == 0 and warning in " ".join(proc.stderr.split()), proc.stderr
    assert {t["metrics"]["gpus"] for t in project.trials("listed")} == {1.0}, "charged as the README says"
    # an inherited CUDA_VISIBLE_DEVICES on such a machine: its devices are handed out as given too
    for gpus, what in (([1], "lists GPU(s) [1]"), ("all", "is all, here GPU(s) [1]")):
        path = project.write_spec(project.spec(name="inherited", executor={"kind": "process", "gpus": gpus}))
        proc = project.cli("validate", str(path), env={"CUDA_VISIBLE_DEVICES": "1"})
        assert proc.returncode == 0 and (f"warning: executor.gpus {what}, but this machine shows no NVIDIA GPU: each "
                                         "trial gets its devices in CUDA_VISIBLE_DEVICES and finds none there") \
            in " ".join(proc.stderr.split()), proc.stderr


def test_gpus_in_another_form_is_named_with_its_fix_and_gpu_per_trial_alone_warns(project):
    """`gpus: "0,1"` got pydantic's union branch as its field (executor.gpus.list[int]: input should be a valid
    list), and `gpu_per_trial: 0.5` without `gpus` was valid, assigning no GPU without a word."""
    for given in ("0,1", 1, "ALL", ["a"]):
        path = project.write_spec(project.spec(name="forms", executor={"kind": "process", "gpus": given}))
        proc = project.cli("validate", str(path))
        assert proc.returncode == 2 and proc.stderr.splitlines() == [
            f"error: executor.gpus: must be all or a list of GPU indices (gpus: [0, 1]); got {given!r}"], proc.stderr
    alone = project.write_spec(project.spec(name="alone", executor={"kind": "process", "gpu_per_trial": 0.5}))
    proc = project.cli("validate", str(alone))
    assert proc.returncode == 0 and ("warning: executor.gpu_per_trial is 0.5, but executor.gpus is not set, so no "
                                     "GPU is assigned; add gpus: all or gpus: [0, 1]") in " ".join(proc.stderr.split())
