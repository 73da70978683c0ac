"""Checkpoints (trial.save_checkpoint / load_checkpoint) and trials proposed by a scheduler (PBT's exploit)."""

from __future__ import annotations

import pytest

from tunesmith.clock import SystemClock
from tunesmith.errors import TrialError
from tunesmith.evaluation.context import TrialContext
from tunesmith.records import Report, TrialState
from tunesmith.runner import Runner, prepare
from tunesmith.scheduler.base import Decision, Exploit
from tunesmith.spec import spec_from_dict
from tunesmith.storage import SQLStore
from tunesmith.summary import trials_json


def context(tmp_path, attempt=1):
    return TrialContext(0, 0, {}, str(tmp_path), attempt, lambda r: None, lambda: False)


def test_objects_round_trip_as_json(tmp_path):
    trial = context(tmp_path)
    assert trial.load_checkpoint() is None
    trial.save_checkpoint({"epoch": 3, "weights": [0.5, 1.5]})
    trial.save_checkpoint({"epoch": 4, "weights": [0.25, 1.5]})
    assert context(tmp_path, attempt=2).load_checkpoint() == {"epoch": 4, "weights": [0.25, 1.5]}, \
        "a retried attempt resumes from its own latest checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"], "no staging folders left behind"


def test_a_folder_is_copied(tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"\x00\x01")
    trial = context(tmp_path / "trial")
    (tmp_path / "trial").mkdir()
    saved = trial.save_checkpoint(src)
    (src / "weights.bin").write_bytes(b"changed")
    loaded = trial.load_checkpoint()
    assert loaded == saved and (loaded / "weights.bin").read_bytes() == b"\x00\x01"


def test_state_that_is_not_json_is_refused_with_the_fix(tmp_path):
    with pytest.raises(TrialError, match="save it into a folder"):
        context(tmp_path).save_checkpoint({"fn": print})
    assert context(tmp_path).load_checkpoint() is None


TRAINER = '''
def objective(config, trial):
    state = trial.load_checkpoint() or {"epoch": 0, "score": 0.0}
    started = state["epoch"]
    for epoch in range(started + 1, 7):
        state = {"epoch": epoch, "score": state["score"] + config["x"]}
        trial.save_checkpoint(state)
        trial.report(epoch, state["score"])
        if trial.should_prune():
            break
    return {"loss": -state["score"], "started_from": started}
'''


class StopOneExploitZero:
    """Stops trial 1 at step 2; then asks once for a trial continuing (finished) trial 0 from its checkpoint."""

    def __init__(self) -> None:
        self.queued: list[Exploit] = []

    def replay(self, history):
        pass

    def on_report(self, number: int, report: Report) -> Decision:
        if number == 1 and report.step == 2:
            self.queued.append(Exploit(parent=0, step=6, params={"x": 0.9}))
            return Decision.STOP
        return Decision.CONTINUE

    def on_finish(self, trial):
        pass

    def propose(self):
        return self.queued.pop(0) if self.queued else None


def test_a_proposed_trial_continues_from_its_parents_checkpoint(project):
    project.write("trainer.py", TRAINER)
    spec = spec_from_dict(project.spec(name="pbt-ish", trial={"function": "trainer:objective"},
                                       budget={"trials": 3}, executor={"kind": "inline"},
                                       scheduler={"name": "median"}, base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    result = Runner(store, exp, plan, None, SystemClock(), scheduler=StopOneExploitZero()).run(resumed=False)
    t0, t1, t2 = result.trials
    assert t0.state is TrialState.COMPLETED and t0.metrics["started_from"] == 0
    assert t1.state is TrialState.PRUNED and t1.intermediate[-1].step == 2
    assert t2.params == {"x": 0.9}
    assert t2.metrics["started_from"] == 6, "the child started from the parent's last checkpoint (epoch 6)"
    rows = trials_json(exp, result.trials, store.events(exp.id))
    assert rows[2]["lineage"] == {"parent": 0, "step": 6, "params_before": t0.params, "params_after": {"x": 0.9}}
    assert "lineage" not in rows[0] and "lineage" not in rows[1]
    store.close()


def test_a_childs_copy_of_a_checkpoint_being_saved_is_whole(tmp_path):
    """PBT copies a running parent's checkpoint while the parent saves new ones; a save swaps folders by renaming,
    and the coordinator's plain copy met files vanishing (shutil.Error, 226 of 300 copies here; the run crashed
    with a traceback, seen under two test workers). Each copy is now one whole checkpoint, never a mix of two."""
    import json
    import threading

    from tunesmith.evaluation.context import copy_latest_checkpoint

    parent = tmp_path / "parent"
    parent.mkdir()
    trial = context(parent)
    folder = tmp_path / "files"
    stop = threading.Event()

    def keep_saving() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            folder.mkdir(exist_ok=True)
            for name in ("a.json", "b.json"):  # a folder checkpoint of two files: a copy must not mix two saves
                (folder / name).write_text(json.dumps(step))
            trial.save_checkpoint(str(folder))
            stop.wait(0.005)  # a training step between saves

    trial.save_checkpoint({"step": 0})
    saver = threading.Thread(target=keep_saving)
    saver.start()
    try:
        copies = [tmp_path / f"child{k}" / "checkpoint-parent" for k in range(150)]
        assert all(copy_latest_checkpoint(parent, into) for into in copies)
    finally:
        stop.set()
        saver.join()
    for into in copies:
        files = sorted(p.name for p in into.iterdir())
        assert files in (["state.json"], ["a.json", "b.json"]), files
        if files == ["a.json", "b.json"]:
            assert (into / "a.json").read_text() == (into / "b.json").read_text(), "one save, not two"
    assert copy_latest_checkpoint(tmp_path / "no-checkpoint", tmp_path / "c" / "checkpoint-parent") is False


RESUMING = """
import os, signal

def objective(config, trial):
    state = trial.load_checkpoint() or {"epoch": 0}
    for epoch in range(state["epoch"] + 1, 7):
        trial.save_checkpoint({"epoch": epoch})
        trial.report(epoch, 1.0 / epoch)
        if epoch == 3 and trial.attempt == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-training: retried as `crashed`
    return 1.0 / 6
"""


def test_a_retry_continued_from_its_checkpoint_keeps_the_steps_before_the_crash(project):
    """The README's resume pattern: attempt 1 reports epochs 1-3 and dies, attempt 2 continues from the checkpoint
    with 4-6. `trials --json` showed only [[4, ...], [5, ...], [6, ...]] (the latest attempt's reports), and show
    counted 3 steps less; a retry that starts over from epoch 1 still shows only its own."""
    project.write("resuming.py", RESUMING)
    spec = project.spec(name="resumed", trial={"function": "resuming:objective"}, budget={"trials": 1},
                        executor={"kind": "process", "workers": 1, "retries": 1})
    project.cli("run", str(project.write_spec(spec)), "--quiet", check=True)
    [row] = project.trials("resumed")
    assert (row["state"], row["attempts"]) == ("completed", 2), row
    assert [step for step, _ in row["intermediate"]] == [1, 2, 3, 4, 5, 6] and row["steps"] == 6, row


def test_asha_rungs_of_a_retried_trial_agree_live_and_on_replay(project):
    """The store's curve of a retry that continued from its checkpoint keeps the steps before the crash; the live
    coordinator's final record kept only the retry's (steps 4-6), so ASHA settled the trial's rungs from step 4's
    value live and from steps 1 and 3 on replay (a resume, a joiner): two decisions for one history."""
    from tunesmith.runner import _scheduler_for

    project.write("resuming.py", RESUMING)
    spec = spec_from_dict(project.spec(name="asha-retried", trial={"function": "resuming:objective"},
                                       budget={"trials": 1}, executor={"kind": "process", "workers": 1, "retries": 1},
                                       scheduler={"name": "asha", "min_resource": 1, "max_resource": 9,
                                                  "reduction_factor": 3}, base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    live = _scheduler_for(plan.spec, plan.space)
    [trial] = Runner(store, exp, plan, None, SystemClock(), scheduler=live).run(resumed=False).trials
    assert (trial.state, trial.attempts) == (TrialState.COMPLETED, 2)
    replayed = _scheduler_for(plan.spec, plan.space)
    replayed.replay(store.trials(exp.id))
    assert [dict(r.values) for r in live.rungs()] == [dict(r.values) for r in replayed.rungs()] == [{0: 1.0}, {0: 1 / 3}]
    store.close()
