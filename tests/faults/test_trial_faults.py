"""Every trial fault ends in exactly one recorded state with a readable reason, and the run goes on.

One experiment, one fault per trial: a grid over a categorical ``fault`` parameter. Infrastructure faults
(crash, OOM kill, memory limit, hang) strike the first attempt only, so their retry shows recovery.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from _faults_setup import show_json, trials_json

ZOO = '''
import math, os, signal, sys, time

def objective(config, trial):
    fault = config["fault"]
    first = trial.attempt == 1
    if fault == "exception":
        raise ValueError("the model diverged")
    if fault == "nan":
        return float("nan")
    if fault == "inf":
        return float("inf")
    if fault == "none":
        return None
    if fault == "string":
        return "0.9"
    if fault == "missing_metric":
        return {"accuracy": 0.9}
    if fault == "timeout":
        time.sleep(60)
    if first and fault == "sigsegv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if first and fault == "sigkill":           # what the kernel's OOM killer sends
        os.kill(os.getpid(), signal.SIGKILL)
    if first and fault == "exit_nonzero":
        os._exit(3)
    if first and fault == "memory":
        hog = b"x" * (600 * 2**20)
        time.sleep(30)
    if first and fault == "hang":              # a stopped worker: no heartbeats
        os.kill(os.getpid(), signal.SIGSTOP)
    return 0.5
'''

# fault -> (final state, failure kind of the final attempt, attempts, failure kind of the first attempt)
EXPECTED = {
    "ok": ("completed", None, 1, None),
    "exception": ("failed", "exception", 1, "exception"),
    "nan": ("failed", "invalid_result", 1, "invalid_result"),
    "inf": ("failed", "invalid_result", 1, "invalid_result"),
    "none": ("failed", "invalid_result", 1, "invalid_result"),
    "string": ("failed", "invalid_result", 1, "invalid_result"),
    "missing_metric": ("failed", "invalid_result", 1, "invalid_result"),
    "timeout": ("failed", "timeout", 1, "timeout"),
    "sigsegv": ("completed", None, 2, "crashed"),
    "sigkill": ("completed", None, 2, "crashed"),
    "exit_nonzero": ("completed", None, 2, "crashed"),
    "memory": ("completed", None, 2, "memory"),
    "hang": ("completed", None, 2, "lost"),
}
REASON = {
    "exception": "ValueError: the model diverged", "nan": "nan", "inf": "inf", "none": "returned None",
    "string": "returned str", "missing_metric": "no 'loss'", "timeout": "trial_timeout",
    "sigsegv": "SIGSEGV", "sigkill": "SIGKILL", "exit_nonzero": "exited with code 3", "memory": "memory_limit",
    "hang": "no heartbeat",
}


def test_every_trial_fault_is_recorded_with_its_reason(project, storage, fault_log):
    project.write("zoo.py", ZOO)
    spec = project.spec(
        name="zoo", space={"fault": {"type": "categorical", "choices": list(EXPECTED)}}, strategy="grid",
        trial={"function": "zoo:objective"}, budget={"trials": 100},
        executor={"kind": "process", "workers": 2, "trial_timeout": "3s", "memory_limit": "300MiB",
                  "retries": 1, "retry_backoff": 0.05, "heartbeat_timeout": "2s"},
    )
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet", "--storage", storage, timeout=180)
    assert proc.returncode == 0, proc.stderr  # failed trials are results, not errors
    trials = trials_json("zoo", storage)
    assert len(trials) == len(EXPECTED), "the run went on past every fault"
    assert sorted(t["number"] for t in trials) == list(range(len(EXPECTED)))
    first_failure = _first_attempt_failures(project, storage)
    for t in trials:  # the event log and `trials --json` agree on every earlier attempt
        assert [a["error"] for a in t["earlier_attempts"]] == ([first_failure[t["number"]]] if t["attempts"] == 2 else [])
    backend = storage.split(":")[0].split("+")[0]
    for t in trials:
        fault = t["params"]["fault"]
        state, kind, attempts, first_kind = EXPECTED[fault]
        assert (t["state"], t["failure_kind"], t["attempts"]) == (state, kind, attempts), (fault, t)
        reason = t["error"] if kind else first_failure.get(t["number"], "")
        if fault != "ok":
            assert REASON[fault] in reason, (fault, reason)
            assert reason.startswith(first_kind), (fault, reason)
        fault_log(area="trial", backend=backend, fault=fault.replace("_", " "),
                  outcome=f"{state}" + (f" after a retry ({first_kind})" if attempts == 2 else
                                        f" ({kind})" if kind else ""),
                  reason=reason.split("; ")[0][:90], injected=1, recovered=int(state == "completed"), lost=0)
    shown = show_json("zoo", storage)
    assert shown["trials"]["running"] == shown["trials"]["queued"] == shown["trials"]["lost"] == 0
    assert shown["failure_rate"] == pytest.approx(7 / 13, abs=1e-4)


def _first_attempt_failures(project, storage) -> dict[int, str]:
    """The reason each retried trial's first attempt failed, from the append-only event log."""
    from sqlalchemy import create_engine, text

    engine = create_engine(storage.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT trial_number, payload FROM events WHERE kind = 'trial_retry' ORDER BY id")).all()
    engine.dispose()
    out: dict[int, str] = {}
    for number, payload in rows:
        out.setdefault(number, json.loads(payload)["error"])
    return out


def test_command_trial_faults(project, fault_log):
    project.write("train.py", """
        import json, os, signal, sys
        mode = sys.argv[1]
        print("starting", mode)
        if mode == "exit":
            sys.exit(4)
        if mode == "signal":
            os.kill(os.getpid(), signal.SIGSEGV)
        if mode == "silent":
            print("no result line")
            sys.exit(0)
        print(json.dumps({"loss": 0.25}))
    """)
    spec = project.spec(name="cmd", space={"mode": {"type": "categorical", "choices": ["ok", "exit", "signal", "silent"]}},
                        strategy="grid", trial={"command": "python {spec_dir}/train.py {mode}"},
                        executor={"kind": "process", "workers": 2, "retries": 0})
    assert project.cli("run", str(project.write_spec(spec)), "--quiet").returncode == 0
    by_mode = {t["params"]["mode"]: t for t in project.trials("cmd")}
    assert by_mode["ok"]["state"] == "completed" and by_mode["ok"]["values"] == {"loss": 0.25}
    assert by_mode["exit"]["failure_kind"] == "exit_code" and "code 4" in by_mode["exit"]["error"]
    assert by_mode["signal"]["failure_kind"] == "crashed" and "SIGSEGV" in by_mode["signal"]["error"]
    assert by_mode["silent"]["failure_kind"] == "invalid_result" and "no JSON result" in by_mode["silent"]["error"]
    for mode, label in (("exit", "command exits non-zero"), ("signal", "command killed by a signal"),
                        ("silent", "command prints no result")):
        t = by_mode[mode]
        fault_log(area="trial", backend="sqlite", fault=label, outcome=f"failed ({t['failure_kind']})",
                  reason=t["error"][:140], injected=1, recovered=0, lost=0)


def test_failure_rate_threshold_stops_the_run(project, fault_log):
    spec = project.spec(name="burn", trial={"function": "objectives:raises"},
                        budget={"trials": 100, "max_failure_rate": 0.5, "failure_rate_min_trials": 4},
                        executor={"kind": "process", "workers": 1})
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 1
    assert "4 of 4 finished trials failed (100% > max_failure_rate 50%)" in proc.stderr
    assert "ValueError: bad config" in proc.stderr, "the message shows the last error"
    shown = project.show("burn")
    assert shown["status"] == "failed" and shown["total_trials"] == 4
    fault_log(area="trial", backend="sqlite", fault="failure rate over threshold",
              outcome="run stops (exit 1) after 4 of 100 budgeted trials", reason=proc.stderr.strip().splitlines()[-1][:90],
              injected=4, recovered=0, lost=0)


def test_resume_after_failure_stop_is_possible(project):
    """A stop for failures is not a dead end: fix the code, resume, the budget continues."""
    spec = project.spec(name="fixme", trial={"function": "fixable:objective"},
                        budget={"trials": 8, "max_failure_rate": 0.5, "failure_rate_min_trials": 2},
                        executor={"kind": "inline"})
    project.write("fixable.py", "def objective(config, trial):\n    raise RuntimeError('bug')\n")
    assert project.cli("run", str(project.write_spec(spec)), "--quiet").returncode == 1
    project.write("fixable.py", "def objective(config, trial):\n    return config['x']\n")
    # the failures stay on record; the resumed run is judged on its own trials and finishes the budget
    resumed = project.cli("resume", "fixme", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(project.db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
    assert states == {"failed": 2, "completed": 6}
