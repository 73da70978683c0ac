"""`tunesmith reproduce`: a recorded trial re-run with its params and seed, compared within a tolerance."""

from __future__ import annotations

import tunesmith
from tunesmith.clock import SystemClock
from tunesmith.storage.sql import SQLStore

NOISY = '''
import os

def noisy(config, trial):
    return config["x"] + int.from_bytes(os.urandom(4), "little") / 2**32   # ignores its seed

def seeded(config, trial):
    import random
    return config["x"] + random.Random(trial.seed).random()
'''


def test_a_seeded_trial_reproduces_and_an_unseeded_one_does_not(project):
    from tunesmith.reproduce import reproduce

    project.write("noise.py", NOISY)
    for name, fn in (("seeded", "seeded"), ("noisy", "noisy")):
        tunesmith.run(project.write_spec(project.spec(name, trial={"function": f"noise:{fn}"},
                                                      executor={"kind": "inline"}, budget={"trials": 2})),
                      storage=project.storage)
    store = SQLStore(project.storage, create=False)
    ok = reproduce(store, "seeded", 1, SystemClock())
    assert ok.matched and ok.error is None and ok.index == (1, 1)
    assert ok.reproduced == ok.recorded and ok.differences == ()
    bad = reproduce(store, "noisy", 0, SystemClock())
    assert not bad.matched and bad.reproduced is not None and bad.index == (0, 1)
    assert bad.reproduced["loss"] != bad.recorded["loss"]
    loose = reproduce(store, "noisy", 0, SystemClock(), rtol=10.0)  # within a 1000% tolerance it "matches"
    assert loose.matched and loose.index == (1, 2)
    events = [e for e in store.events(store.experiment("noisy").id) if e.kind == "trial_reproduced"]
    assert [e.payload["matched"] for e in events] == [False, True] and events[0].payload["actor"]["user"]
    # the original trial's record is untouched
    assert store.trials(store.experiment("noisy").id, [0])[0].values[0] == bad.recorded["loss"]


def test_reproduce_cli_in_worker_processes_names_what_changed(project):
    tunesmith.run(project.write_spec(project.spec("proc", budget={"trials": 2})), storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("proc")
    env = dict(exp.attributes["environment"])
    env["packages"] = {**env["packages"], "numpy": "0.0.1"}     # as if recorded with another numpy
    store.set_attributes(exp.id, {"environment": env}, exp.updated_at)
    proc = project.cli("reproduce", "proc", "1")
    assert proc.returncode == 0, proc.stderr
    assert "reproduced: trial 1" in proc.stdout and "1/1 reproduced trials matched" in proc.stdout
    assert "package numpy: 0.0.1 then" in proc.stderr
    shown = project.show("proc")
    assert shown["reproducibility"] == {"matched": 1, "reproduced": 1, "index": 1.0}
    proc = project.cli("reproduce", "proc", "7")
    assert proc.returncode == 2 and "no trial 7" in proc.stderr
