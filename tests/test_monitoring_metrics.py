"""Prometheus metrics and JSON logs of real runs: the textfile, `tunesmith metrics`, the live endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import start_cli, wait_for

prom_parser = pytest.importorskip("prometheus_client.parser", reason="needs prometheus-client: "
                                  "pip install 'tunesmith[metrics]'")

FLAKY = '''
def flaky(config, trial):
    if config["x"] > 0.7:
        raise ValueError("too big")
    for step in range(1, 4):
        trial.report(step, config["x"] * step)
    return {"loss": (config["x"] - 0.3) ** 2, "cost": 0.25}
'''


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels (parsed by prometheus_client's parser)."""
    out = {}
    for family in prom_parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed, name: str, **labels: str) -> float:
    return parsed[(name, tuple(sorted(labels.items())))]


@pytest.mark.slow
def test_run_writes_textfile_json_logs_and_metrics_command_agrees(project):
    project.write("flaky.py", FLAKY)
    project.write_spec(project.spec("m", trial={"function": "flaky:flaky"}, budget={"trials": 10}))
    run = project.cli("run", "m.yaml", "--metrics-file", "m.prom", "--log-format", "json")
    assert run.returncode == 0, run.stderr

    # JSON logs: every stderr line is one object; each trial starts and finishes once, with its state
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert all({"timestamp", "time", "event", "experiment"} <= set(e) for e in lines)
    finished = {e["trial"]: e for e in lines if e["event"] == "trial_finished"}
    trials = project.trials("m")
    assert sorted(finished) == [t["number"] for t in trials]
    for t in trials:
        assert finished[t["number"]]["state"] == t["state"]
        if t["state"] == "failed":
            assert "too big" in finished[t["number"]]["reason"]
        # the values named as `trials --json` names them, beside the list in the objectives' order
        assert finished[t["number"]]["values_by_metric"] == t["values"]
        assert finished[t["number"]]["values"] == (None if t["values"] is None else list(t["values"].values()))
    assert [e["event"] for e in lines][-1] == "run_finished"
    assert "Best trials" not in run.stdout  # the human display is replaced, not mixed in

    # the textfile, parsed, against the store
    parsed = samples((project.root / "m.prom").read_text())
    failed = sum(t["state"] == "failed" for t in trials)
    completed = sum(t["state"] == "completed" for t in trials)
    assert 0 < failed < 10
    assert value(parsed, "tunesmith_trials_finished_total", experiment="m", state="completed") == completed
    assert value(parsed, "tunesmith_trials_finished_total", experiment="m", state="failed") == failed
    assert value(parsed, "tunesmith_trial_failures_total", experiment="m", reason="exception") == failed
    assert value(parsed, "tunesmith_trial_duration_seconds_count", experiment="m", state="completed") == completed
    best = project.show("m")["best"]
    assert value(parsed, "tunesmith_best_value", experiment="m", metric="loss",
                 direction="minimize") == pytest.approx(best["values"]["loss"])
    assert value(parsed, "tunesmith_cost_total", experiment="m") == pytest.approx(0.25 * completed)
    assert value(parsed, "tunesmith_cost_per_trial", experiment="m") == pytest.approx(0.25)
    assert value(parsed, "tunesmith_experiment_running", experiment="m") == 0
    assert value(parsed, "tunesmith_workers", experiment="m") == 0  # it left: no worker slot of its is at work
    assert value(parsed, "tunesmith_budget_trials", experiment="m") == 10
    assert not [k for k in parsed if any(label == "trial" for label, _ in k[1])]  # never a per-trial label

    # `tunesmith metrics` computes the same figures from the store alone (made later: its exposition time is its own)
    from_store = samples(project.cli("metrics", "m", check=True).stdout)
    made = ("tunesmith_exposition_timestamp_seconds", (("experiment", "m"),))
    assert parsed.pop(made) < from_store.pop(made) <= time.time()
    assert from_store == parsed

    # a resumed run starts its metrics from the stored history (nothing is left to run here)
    project.cli("resume", "m", "-q", "--metrics-file", "resumed.prom", check=True)
    resumed = samples((project.root / "resumed.prom").read_text())
    assert value(resumed, "tunesmith_trials_finished_total", experiment="m", state="failed") == failed
    assert value(resumed, "tunesmith_best_value", experiment="m", metric="loss",
                 direction="minimize") == pytest.approx(best["values"]["loss"])


BLOCKS_THE_TEXTFILE = '''
import os, time

def blocking(config, trial):
    # one trial at a time; the count of earlier trials is the number of files in ran/
    os.makedirs("ran", exist_ok=True)
    n = len(os.listdir("ran"))
    open(os.path.join("ran", str(n)), "w").close()
    if n == 1:  # the textfile becomes a directory: every write of it fails (EISDIR), even for root
        os.remove("b.prom")
        os.mkdir("b.prom")
        time.sleep(1.2)  # past the throttle, so the write at this trial's end is attempted
    if n == 3:
        os.rmdir("b.prom")
    return {"loss": config["x"]}
'''


def test_textfile_that_cannot_be_written_for_a_while_is_caught_up_at_the_end(project):
    # a failed write (disk full, permissions) must not drop the metrics listener: the textfile would then say
    # running 1 forever, and node_exporter would export a run that ended as running
    project.write("blocking.py", BLOCKS_THE_TEXTFILE)
    project.write_spec(project.spec("b", trial={"function": "blocking:blocking"}, budget={"trials": 5},
                                    executor={"kind": "process", "workers": 1}))
    run = project.cli("run", "b.yaml", "--metrics-file", "b.prom", "--log-format", "json")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    warnings = [e for e in lines if e["event"] == "warning"]
    assert len(warnings) == 1, warnings  # told once, not at every failed write
    assert "b.prom" in warnings[0]["reason"] and "stopped watching" not in warnings[0]["reason"]
    parsed = samples((project.root / "b.prom").read_text())
    assert value(parsed, "tunesmith_experiment_running", experiment="b") == 0
    assert value(parsed, "tunesmith_trials_finished_total", experiment="b", state="completed") == 5
    assert value(parsed, "tunesmith_trials_started_total", experiment="b") == 5


def test_quiet_silences_progress_not_the_warning_that_the_textfile_cannot_be_written(project):
    # --quiet leaves no listener that shows warnings (the metrics' own warning had nowhere to go): it was lost
    if not os.path.isdir("/sys"):
        pytest.skip("needs /sys, where no new file can be written, even by root")
    project.write_spec(project.spec("q", executor={"kind": "inline"}, budget={"trials": 2}))
    run = project.cli("run", "q.yaml", "--quiet", "--metrics-file", "/sys/q.prom")  # every write fails
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""  # quiet: no progress, no table
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "--metrics-file /sys/q.prom cannot be written" in warned[0], run.stderr


def test_a_metrics_file_that_is_a_folder_is_refused_before_the_run(project):
    """A folder was a warning that every write failed, 'Is a directory' (or 'Not a directory' for `prom/`, said of
    the folder it is), and the run went on without its textfile."""
    project.write_spec(project.spec("d", executor={"kind": "inline"}, budget={"trials": 2}))
    (project.root / "prom").mkdir()
    for given in ("prom", "prom/"):
        run = project.cli("run", "d.yaml", "--quiet", "--metrics-file", given)
        assert (run.returncode, run.stdout) == (2, ""), run.stderr
        assert run.stderr.splitlines() == [f"error: --metrics-file: {given} is a folder; name the file to keep in it, "
                                           f"e.g. {os.path.join(given, 'NAME.prom')}"]


def test_metrics_port_in_use_fails_before_recording(project):
    project.write_spec(project.spec("busy"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = project.cli("run", "busy.yaml", "--metrics-port", str(s.getsockname()[1]))
    assert r.returncode == 2
    assert "--metrics-port" in r.stderr and "Traceback" not in r.stderr
    assert "busy" not in project.cli("ls").stdout


def test_metrics_file_in_missing_folder_is_an_input_error(project):
    project.write_spec(project.spec("nofolder"))
    r = project.cli("run", "nofolder.yaml", "--metrics-file", "no/such/dir/m.prom")
    assert r.returncode == 2 and "--metrics-file" in r.stderr


def test_live_endpoint_serves_a_running_experiment(project, monkeypatch):
    """Mid-run: both workers busy and the experiment running; the server goes away with the run."""
    monkeypatch.setenv("SLOW_SECONDS", "1.5")
    project.write_spec(project.spec("live", trial={"function": "objectives:slow"}, budget={"trials": 2},
                                    executor={"kind": "process", "workers": 2}))
    proc = start_cli(project, "run", "live.yaml", "--metrics-port", "0", "--log-format", "json")
    try:
        url = json.loads(proc.stderr.readline())["url"]

        def busy():
            parsed = samples(urllib.request.urlopen(url, timeout=5).read().decode())
            return parsed.get(("tunesmith_workers_busy", (("experiment", "live"),)), 0) == 2 and parsed

        parsed = wait_for(busy, timeout=30)
        assert value(parsed, "tunesmith_experiment_running", experiment="live") == 1
        assert value(parsed, "tunesmith_trials_started_total", experiment="live") == 2
        assert proc.wait(timeout=60) == 0
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_import_tunesmith_loads_neither_prometheus_nor_plotly():
    code = ("import sys, tunesmith, tunesmith.cli, tunesmith.monitoring, tunesmith.monitoring.observers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'plotly')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _experiment(project, **overrides):
    """A stored-shape experiment record from a real spec (validated as `run` would)."""
    from tunesmith.records import ExperimentRecord, RunStatus
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec

    spec = prepare(load_spec(project.write_spec(project.spec("unit", **overrides)))).spec
    return ExperimentRecord(1, "unit", spec.to_json(), RunStatus.RUNNING, 1000.0, 1000.0, "random", "test")


def _trial(number, state, value=None, steps=0, kind=None, finished=None, attempts=1, first_step=1):
    from tunesmith.records import FailureKind, Report, TrialRecord, TrialState

    return TrialRecord(number, TrialState(state), {"x": 0.5}, 0, values=None if value is None else (value,),
                       intermediate=tuple(Report(s, 1.0) for s in range(first_step, first_step + steps)),
                       attempts=attempts,
                       error=f"{kind}: boom" if kind else None, failure_kind=FailureKind(kind) if kind else None,
                       started_at=1000.0 + number, finished_at=finished, duration_s=0.5 if finished else None)


def test_listener_counts_retries_queue_busy_and_throttles_the_textfile(project):
    from tunesmith.clock import FakeClock
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.records import Failure, FailureKind

    clock = FakeClock(start=2000.0)
    path = project.root / "unit.prom"
    listener = MetricsListener(TuningMetrics(), str(path), clock)
    exp = _experiment(project)
    listener.run_started(exp, [], resumed=False, total_trials=6)
    written = path.read_text()
    listener.trial_started(_trial(0, "running"))
    listener.trial_started(_trial(1, "running"))
    assert path.read_text() == written  # within a second of the last write: not rewritten
    clock.advance(1.0)
    listener.trial_retrying(_trial(1, "queued", kind="crashed"), Failure(FailureKind.CRASHED, "boom"), 1.0)
    parsed = samples(path.read_text())
    assert value(parsed, "tunesmith_workers_busy", experiment="unit") == 1
    assert value(parsed, "tunesmith_queue_length", experiment="unit") == 1
    assert value(parsed, "tunesmith_trial_retries_total", experiment="unit", reason="crashed") == 1
    listener.trial_started(_trial(1, "running", attempts=2))
    best = _trial(1, "completed", 0.2, finished=2001.5, attempts=2)  # as the runner tells it: the best so far
    listener.trial_finished(best, best)
    listener.trial_finished(_trial(0, "failed", kind="timeout", finished=2002.0), best)
    listener.run_finished(exp, [], "done")  # always written at the end
    parsed = samples(path.read_text())
    assert value(parsed, "tunesmith_trials_started_total", experiment="unit") == 3
    assert value(parsed, "tunesmith_queue_length", experiment="unit") == 0
    assert value(parsed, "tunesmith_workers_busy", experiment="unit") == 0
    assert value(parsed, "tunesmith_trial_failures_total", experiment="unit", reason="timeout") == 1
    assert value(parsed, "tunesmith_time_to_best_seconds", experiment="unit") == 1001.5  # since creation at 1000
    assert value(parsed, "tunesmith_trials_since_best", experiment="unit") == 1
    assert value(parsed, "tunesmith_last_activity_timestamp_seconds", experiment="unit") == 2002.0
    assert value(parsed, "tunesmith_experiment_running", experiment="unit") == 0


@pytest.mark.parametrize("scheduler", [{"name": "asha", "min_resource": 1, "max_resource": 9, "reduction_factor": 3},
                                       {"name": "median"}], ids=["asha", "median"])
def test_resources_saved_is_the_same_for_a_loop_reporting_from_step_0(project, scheduler):
    """A loop reporting its epoch from 0 read one step short per trial, so its gauge said more was saved."""
    from tunesmith.monitoring.metrics import TuningMetrics

    exp = _experiment(project, scheduler=scheduler)
    saved = []
    for first_step in (1, 0):
        trials = [_trial(0, "completed", 0.1, steps=9, finished=1.0, first_step=first_step),
                  _trial(1, "pruned", 0.5, steps=1, finished=2.0, first_step=first_step),
                  _trial(2, "pruned", 0.4, steps=3, finished=3.0, first_step=first_step)]
        metrics = TuningMetrics()
        metrics.replay(exp, trials)
        parsed = samples(metrics.exposition().decode())
        saved.append((value(parsed, "tunesmith_resource_steps_used", experiment="unit"),
                      value(parsed, "tunesmith_resource_saved_ratio", experiment="unit")))
    assert saved[0] == saved[1] == (13, pytest.approx(1 - 13 / 27))


def test_resources_saved_is_the_figure_show_reports(project):
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.scheduler import resource_summary

    exp = _experiment(project, scheduler={"name": "asha", "min_resource": 1, "max_resource": 9,
                                          "reduction_factor": 3})
    trials = [_trial(0, "completed", 0.1, steps=9, finished=1.0), _trial(1, "pruned", 0.5, steps=1, finished=2.0),
              _trial(2, "pruned", 0.4, steps=3, finished=3.0), _trial(3, "failed", kind="exception", finished=4.0),
              _trial(4, "completed", 0.3, steps=0, finished=5.0)]
    metrics = TuningMetrics()
    metrics.replay(exp, trials)
    parsed = samples(metrics.exposition().decode())
    expected = resource_summary(trials, 9)
    # trial 4 completed without reports: left out, not counted as 9 steps run
    assert value(parsed, "tunesmith_resource_steps_used", experiment="unit") == expected.steps_used == 13
    assert value(parsed, "tunesmith_resource_saved_ratio", experiment="unit") == pytest.approx(
        1 - expected.steps_used / expected.steps_full)
    assert value(parsed, "tunesmith_best_value", experiment="unit", metric="loss", direction="minimize") == 0.1


def test_a_trial_queued_for_a_worker_counts_the_same_live_and_from_the_store(project):
    """Ray's prefetch records a trial `queued` until its actor begins it. `tunesmith metrics` (rebuilt from the
    store) counted it started, from its submission, and the live listener, with no hook to hear of it, left it out
    of the queue: the two disagreed on both. Written to a real store as the runner writes it, without Ray."""
    from dataclasses import replace

    from tunesmith.coordinators import LEASE_TTL
    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.monitoring.metrics import TuningMetrics, metrics_from_store
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.records import Failure, FailureKind, RunStatus, TrialState
    from tunesmith.storage.sql import SQLStore

    spec = _experiment(project).spec
    store = SQLStore(project.storage, create=True)
    exp = store.create_experiment("unit", spec, "random", "test", 1000.0)
    store.set_status(exp.id, RunStatus.RUNNING, 1000.0)
    # run by a live coordinator (this process holds the lease): `metrics` of an abandoned run counts no queue
    assert store.acquire_lease(exp.id, lease_owner_id(), time.time(), LEASE_TTL) is None
    live = TuningMetrics()
    listener = MetricsListener(live)
    listener.run_started(store.experiment("unit"), [], resumed=False, total_trials=10)

    def new(number: int, queued: bool):  # type: ignore[no-untyped-def]
        rec = store.new_trial(exp.id, {"x": 0.5}, 0, 1001.0 + number, "t{number}/trial.log", queued=queued)
        assert rec is not None and rec.number == number
        (listener.trial_queued if queued else listener.trial_started)(rec)
        return rec

    new(0, queued=True)                            # prefetched behind a running trial: not begun
    failed = new(1, queued=False)                  # began, failed, waits out its retry's back-off
    backoff = replace(failed, state=TrialState.QUEUED, error="crashed: boom", failure_kind=FailureKind.CRASHED)
    store.save_trial(exp.id, backoff, "trial_retry", 1010.0)
    listener.trial_retrying(backoff, Failure(FailureKind.CRASHED, "boom"), 1.0)
    failed = new(2, queued=False)                  # its retry queued for a worker: the second attempt not begun
    backoff = replace(failed, state=TrialState.QUEUED, error="crashed: boom", failure_kind=FailureKind.CRASHED)
    store.save_trial(exp.id, backoff, "trial_retry", 1011.0)
    listener.trial_retrying(backoff, Failure(FailureKind.CRASHED, "boom"), 1.0)
    again = replace(backoff, attempts=2)
    store.save_trial(exp.id, again, "trial_retry_started", 1012.0)
    listener.trial_queued(again)
    queued = new(3, queued=True)                   # queued, then began
    began = replace(queued, state=TrialState.RUNNING, started_at=1013.0)
    store.save_trial(exp.id, began, "trial_started", 1013.0)
    listener.trial_started(began)

    stored = samples(metrics_from_store(store, "unit", time.time()).decode())
    heard = samples(live.exposition().decode())
    store.close()
    expected = {"tunesmith_trials_started_total": 3,  # trial 1 and 2 once each, 3 as it began; 0 never
                "tunesmith_queue_length": 3,          # 0 for a worker, 1 for its back-off, 2 for a worker
                "tunesmith_workers_busy": 1}          # 3
    for name, count in expected.items():
        assert (value(stored, name, experiment="unit"), value(heard, name, experiment="unit")) == (count, count), name


def test_attempts_stopped_before_they_began_count_neither_from_the_store_nor_live_after_a_resume(project):
    """A Ray run interrupted while trial 1 was prefetched (recorded `queued`, then stopped before it started):
    its record says 1 attempt, none began. `tunesmith metrics` subtracted only a trial's last never-begun attempt
    and the live replay at the resume subtracted none, so before the re-run they said 1 and 2, and once the
    re-run began both said 3 though 2 attempts (trial 0's, trial 1's second) began. Written to a real store as
    the runner writes it (new_trial, save_trial with the runner's event kinds), without Ray."""
    from dataclasses import replace

    from tunesmith.monitoring.metrics import TuningMetrics, metrics_from_store
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.records import RunStatus, TrialState
    from tunesmith.storage.sql import SQLStore

    spec = _experiment(project).spec
    store = SQLStore(project.storage, create=True)
    exp = store.create_experiment("unit", spec, "random", "test", 1000.0)
    store.set_status(exp.id, RunStatus.RUNNING, 1000.0)
    first = store.new_trial(exp.id, {"x": 0.5}, 0, 1001.0, "t{number}/trial.log")             # began at once
    assert first is not None
    store.save_trial(exp.id, replace(first, state=TrialState.COMPLETED, values=(1.0,), finished_at=1002.0),
                     "trial_completed", 1002.0)
    prefetched = store.new_trial(exp.id, {"x": 0.6}, 0, 1001.5, "t{number}/trial.log", queued=True)
    assert prefetched is not None                                                               # Ray's prefetch
    stopped = replace(prefetched, state=TrialState.INTERRUPTED, error="stopped before it started")
    store.save_trial(exp.id, stopped, "trial_interrupted", 1003.0)
    store.set_status(exp.id, RunStatus.INTERRUPTED, 1003.0)

    def started(exposition: bytes) -> float:
        return value(samples(exposition.decode()), "tunesmith_trials_started_total", experiment="unit")

    assert started(metrics_from_store(store, "unit", time.time())) == 1
    # the resume: marked running, the live listener replays the history, then trial 1 re-runs, queued, and begins
    store.set_status(exp.id, RunStatus.RUNNING, 1010.0)
    live = TuningMetrics()
    listener = MetricsListener(live, store=store)
    listener.run_started(store.experiment("unit"), store.trials(exp.id), resumed=True, total_trials=2)
    assert (started(metrics_from_store(store, "unit", time.time())), started(live.exposition())) == (1, 1)
    again = replace(stopped, state=TrialState.QUEUED, attempts=2, started_at=1011.0, finished_at=None)
    store.save_trial(exp.id, again, "trial_rerun", 1011.0)
    listener.trial_queued(again)
    assert (started(metrics_from_store(store, "unit", time.time())), started(live.exposition())) == (1, 1)
    began = replace(again, state=TrialState.RUNNING, started_at=1012.0)
    store.save_trial(exp.id, began, "trial_started", 1012.0)
    listener.trial_started(began)
    assert (started(metrics_from_store(store, "unit", time.time())), started(live.exposition())) == (2, 2)
    # a re-run submitted running began as it was submitted (no trial_started follows)
    store.save_trial(exp.id, replace(began, state=TrialState.INTERRUPTED, finished_at=1013.0), "trial_interrupted",
                     1013.0)
    rerun = replace(began, attempts=3, started_at=1014.0)
    store.save_trial(exp.id, rerun, "trial_rerun", 1014.0)
    listener.trial_started(rerun)
    resumed_again = TuningMetrics()
    MetricsListener(resumed_again, store=store).run_started(store.experiment("unit"), store.trials(exp.id),
                                                                    resumed=True, total_trials=2)
    counts = (started(metrics_from_store(store, "unit", time.time())), started(live.exposition()),
              started(resumed_again.exposition()))
    store.close()
    assert counts == (3, 3, 3)


def test_the_runner_tells_listeners_of_a_trial_queued_for_a_worker(project):
    """The hook above is only worth its wiring: a run whose executor says each job will wait (as Ray's prefetch
    does) tells ``trial_queued`` at submission and ``trial_started`` when its AttemptStarted comes, and its live
    metrics then agree with the store's."""
    from tunesmith.clock import SystemClock
    from tunesmith.events import Listeners, RunListener
    from tunesmith.executor.base import AttemptStarted
    from tunesmith.executor.inline import InlineExecutor
    from tunesmith.monitoring.metrics import TuningMetrics, metrics_from_store
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage.sql import SQLStore

    class WaitingInline(InlineExecutor):  # every job waits for its worker, then begins in the next poll
        def next_job_waits(self) -> bool:
            return True

        def poll(self, timeout):
            begun = [AttemptStarted(j.number, j.attempt, 0.0) for j in list(self._pending)[:1]]
            return [*begun, *super().poll(timeout)]

    class Heard(RunListener):
        def __init__(self) -> None:
            self.heard: list[tuple[str, int]] = []

        def trial_queued(self, trial) -> None:
            self.heard.append(("queued", trial.number))

        def trial_started(self, trial) -> None:
            self.heard.append(("started", trial.number))

    spec = spec_from_dict(project.spec(name="waits", budget={"trials": 2}, executor={"kind": "inline"},
                                       base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    heard, live = Heard(), TuningMetrics()
    Runner(store, exp, plan, Listeners(heard, MetricsListener(live)), SystemClock(),
           executor=WaitingInline()).run(resumed=False)
    assert heard.heard == [("queued", 0), ("started", 0), ("queued", 1), ("started", 1)]
    rebuilt = samples(metrics_from_store(store, "waits", time.time()).decode())
    parsed = samples(live.exposition().decode())
    for name in ("tunesmith_trials_started_total", "tunesmith_queue_length"):
        assert value(parsed, name, experiment="waits") == value(rebuilt, name, experiment="waits"), name


# -- several coordinators on one experiment (resume --join) ---------------------------------------------------------

LEAD, PEER = "far-host:1:lead", "far-host:2:peer"  # coordinators on another machine: at work while they beat
EXPERIMENT_WIDE = ("tunesmith_trials_started_total", "tunesmith_trials_finished_total", "tunesmith_best_value",
                   "tunesmith_time_to_best_seconds", "tunesmith_trials_since_best",
                   "tunesmith_trial_duration_seconds_count", "tunesmith_last_trial_finished_timestamp_seconds")


def _experiment_wide(parsed):
    return {k: v for k, v in parsed.items() if k[0] in EXPERIMENT_WIDE}


def test_a_coordinator_counts_its_peers_trials_and_agrees_with_the_store(project):
    """Two coordinators on one experiment, each running 2 trials on its 2 workers. The lead's metrics counted only
    its own trials (its best a stale one of its own), `tunesmith metrics` said 2 workers and 4 busy. Every
    exposition now is the experiment's: the lead counts the peer's trials as it reads them from the store, and the
    workers are both coordinators'. Written to a real store as the runner writes it."""
    from dataclasses import replace

    from tunesmith.monitoring.metrics import TuningMetrics, metrics_from_store
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.records import RunStatus, TrialState
    from tunesmith.storage.sql import SQLStore

    spec = _experiment(project).spec
    store = SQLStore(project.storage, create=True)
    exp = store.create_experiment("unit", spec, "random", "test", time.time())
    store.set_status(exp.id, RunStatus.RUNNING, time.time(), {"owner": LEAD})
    live = TuningMetrics()
    listener = MetricsListener(live, str(project.root / "lead.prom"), store=store, refresh_every=0.05)
    listener.run_started(store.experiment("unit"), [], resumed=False, total_trials=10)

    def new(owner):  # type: ignore[no-untyped-def]
        rec = store.new_trial(exp.id, {"x": 0.5}, 0, time.time(), "t{number}/trial.log", owner=owner)
        assert rec is not None
        if owner == LEAD:
            listener.trial_started(rec)
        return rec

    def finish(rec, loss):  # type: ignore[no-untyped-def]
        now = time.time()
        final = replace(rec, state=TrialState.COMPLETED, values=(loss,), finished_at=now, duration_s=0.5)
        store.save_trial(exp.id, final, "trial_completed", now)
        if rec.owner == LEAD:
            listener.trial_finished(final, final)  # (the runner's best: its own, the peer's not yet synced)
        return final

    try:
        lead = [new(LEAD), new(LEAD)]
        store.set_status(exp.id, RunStatus.RUNNING, time.time(), {"owner": PEER})  # the joiner comes in
        store.heartbeat(exp.id, [], time.time(), PEER)
        peer = [new(PEER), new(PEER)]

        def both(name, expected):  # type: ignore[no-untyped-def]
            def agree():  # type: ignore[no-untyped-def]
                heard = samples(live.exposition().decode())
                stored = samples(metrics_from_store(store, "unit", time.time()).decode())
                return value(heard, name, experiment="unit") == value(stored, name, experiment="unit") == expected
            wait_for(agree, timeout=10)

        both("tunesmith_trials_started_total", 4)
        both("tunesmith_workers_busy", 4)
        both("tunesmith_workers", 4)  # 2 coordinators at work, 2 workers each: utilisation 100%, not 200%
        finish(peer[0], 0.01)
        finish(lead[0], 0.5)
        both("tunesmith_trials_since_best", 1)  # the lead's finished after the peer's best
        finish(lead[1], 0.3)
        both("tunesmith_workers_busy", 1)
        store.record_event(exp.id, "coordinator_done", time.time(), detail={"owner": LEAD, "reason": "budget"})
        listener.run_finished(store.experiment("unit"), store.trials(exp.id), "budget")
        left = samples((project.root / "lead.prom").read_text())
        # what the lead exported last: the experiment as the store had it then, the peer's trials and best included
        assert value(left, "tunesmith_trials_started_total", experiment="unit") == 4
        assert value(left, "tunesmith_trials_finished_total", experiment="unit", state="completed") == 3
        assert value(left, "tunesmith_best_value", experiment="unit", metric="loss", direction="minimize") == 0.01
        assert value(left, "tunesmith_experiment_running", experiment="unit") == 0
        assert value(left, "tunesmith_workers_busy", experiment="unit") == 0  # it left: it runs nothing
        # nor has it any slot: the 4 it last saw, kept in its textfile, made a dashboard's max over coordinators
        # read the lead running alone fully busy as 50% busy (the 2 of its own workers of the joiner's 4)
        assert value(left, "tunesmith_workers", experiment="unit") == 0
        stored_then = samples(metrics_from_store(store, "unit", time.time()).decode())
        assert _experiment_wide(left) == _experiment_wide(stored_then)
        finish(peer[1], 0.2)
        store.record_event(exp.id, "coordinator_done", time.time(), detail={"owner": PEER, "reason": "budget"})
        store.set_status(exp.id, RunStatus.COMPLETED, time.time())
        final = samples(metrics_from_store(store, "unit", time.time()).decode())
        assert value(final, "tunesmith_trials_finished_total", experiment="unit", state="completed") == 4
        assert value(final, "tunesmith_workers", experiment="unit") == 0  # nobody at work: no slots, as each said
        assert value(final, "tunesmith_workers_busy", experiment="unit") == 0
    finally:
        listener.close()
        store.close()


JOINED = '''
import os, time

def objective(config, trial):  # held until the test has seen both coordinators at work (at most 60 s)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(float(os.environ["TRIAL_SECONDS"]))
    return {"loss": config["x"]}
'''


@pytest.mark.slow
def test_a_joined_run_exports_the_experiment_from_every_coordinator(project):
    """The SRE's run: `run --metrics-file lead.prom`, then `resume --join --metrics-file join.prom`. The lead's file
    ended with its own 6 trials of 8 and a stale best, the joiner's with 8 started and 6 finished, and summing them
    (as the dashboards did) counted 12 of an 8-trial budget. Now whichever left last exported what `tunesmith
    metrics` says, the other no more than that, and while both ran the workers were both coordinators'."""
    from tunesmith.monitoring.metrics import metrics_from_store
    from tunesmith.storage.sql import SQLStore

    project.write("joined.py", JOINED)
    project.write_spec(project.spec("joined", trial={"function": "joined:objective"}, budget={"trials": 8},
                                    executor={"kind": "process", "workers": 2}))
    release = project.root / "release"
    env = {**os.environ, "TRIAL_SECONDS": "0.2", "RELEASE": str(release), "TUNESMITH_STORAGE": project.storage,
           "COLUMNS": "200"}

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "tunesmith.cli", *args, "-q"], cwd=project.root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    lead = start("run", "joined.yaml", "--metrics-file", "lead.prom")
    joiner = None
    seen = []  # (workers, busy) from `tunesmith metrics` while the run goes on
    try:
        wait_for(lambda: (project.root / "lead.prom").exists(), timeout=60)
        joiner = start("resume", "joined", "--join", "--metrics-file", "join.prom")
        store = SQLStore(project.storage, create=False)
        try:
            while lead.poll() is None or joiner.poll() is None:  # what `tunesmith metrics` prints, in this process
                parsed = samples(metrics_from_store(store, "joined", time.time()).decode())
                seen.append((value(parsed, "tunesmith_workers", experiment="joined"),
                             value(parsed, "tunesmith_workers_busy", experiment="joined")))
                if seen[-1][0] == 4:
                    release.touch()
                time.sleep(0.2)
        finally:
            store.close()
        for proc in (lead, joiner):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, out + err
    finally:
        for proc in (lead, joiner):
            if proc is not None and proc.returncode is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert all(busy <= workers for workers, busy in seen), seen
    assert any(workers == 4 for workers, _ in seen), seen  # both at work, each with 2 workers
    stored = samples(project.cli("metrics", "joined", check=True).stdout)
    assert value(stored, "tunesmith_trials_finished_total", experiment="joined", state="completed") == 8
    files = [samples((project.root / f).read_text()) for f in ("lead.prom", "join.prom")]
    last = max(files, key=lambda p: value(p, "tunesmith_trials_finished_total", experiment="joined",
                                            state="completed"))
    assert _experiment_wide(last) == _experiment_wide(stored)
    for parsed in files:
        for key in _experiment_wide(parsed):
            if key[0].endswith("_total"):
                assert parsed[key] <= stored[key], key
        assert value(parsed, "tunesmith_experiment_running", experiment="joined") == 0
    best = project.show("joined")["best"]
    assert value(last, "tunesmith_best_value", experiment="joined", metric="loss",
                 direction="minimize") == pytest.approx(best["values"]["loss"])


def test_the_metrics_serving_line_of_json_logs_carries_what_every_line_does(project):
    """`--log-format json` promises timestamp, time, event and experiment on every line; the first one,
    `{"event":"metrics_serving","url":...}`, had neither the times nor the experiment."""
    project.write_spec(project.spec("served", executor={"kind": "inline"}, budget={"trials": 1}))
    before = time.time()
    run = project.cli("run", "served.yaml", "--metrics-port", "0", "--log-format", "json")
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stderr.splitlines()[0])
    assert first["event"] == "metrics_serving" and first["url"].startswith("http://127.0.0.1:"), first
    assert first["experiment"] == "served"
    assert before <= first["timestamp"] <= time.time() and first["time"].endswith("+00:00"), first
    resumed = project.cli("resume", "served", "--metrics-port", "0", "--log-format", "json")
    assert resumed.returncode == 0, resumed.stderr
    first = json.loads(resumed.stderr.splitlines()[0])
    assert (first["event"], first["experiment"]) == ("metrics_serving", "served") and "timestamp" in first, first
    # a run refused before it starts says one line of error, not a server announced for a run that never ran
    for args in (("run", "served.yaml"), ("resume", "nosuch")):
        for log_format in ("human", "json"):
            refused = project.cli(*args, "--metrics-port", "0", "--log-format", log_format)
            assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
            assert "http://" not in refused.stderr, refused.stderr
            if log_format == "human":
                assert refused.stderr.startswith("error: "), refused.stderr
            else:  # its one line is the log's, as every line of it
                said = json.loads(refused.stderr)
                assert (said["event"], said["exit_code"]) == ("run_exit", 2) and said["message"], said


def test_a_store_that_cannot_be_read_at_the_end_is_told_once_and_the_textfile_still_ends_the_run(project):
    """The metrics read other coordinators' trials from the store at the run's end too: a store failing there must
    not drop the listener before it writes the textfile's last state (it would say running 1 for ever)."""
    from tunesmith.errors import StorageError
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.records import RunStatus
    from tunesmith.storage.sql import SQLStore

    class Failing(SQLStore):
        def unfinished_trials(self, experiment_id, skip=()):  # type: ignore[no-untyped-def]
            raise StorageError("cannot read running trials in the store: disk I/O error")

    store = Failing(project.storage, create=True)
    exp = store.create_experiment("unit", _experiment(project).spec, "random", "test", time.time())
    store.set_status(exp.id, RunStatus.RUNNING, time.time())
    told = []
    listener = MetricsListener(TuningMetrics(), str(project.root / "unit.prom"), store=store)
    listener.warn_through(told.append)
    try:
        listener.run_started(store.experiment("unit"), [], resumed=False, total_trials=1)
        rec = store.new_trial(exp.id, {"x": 0.5}, 0, time.time(), "t{number}/trial.log")
        listener.trial_started(rec)
        listener.run_finished(store.experiment("unit"), store.trials(exp.id), "done")
        listener.run_finished(store.experiment("unit"), store.trials(exp.id), "done")
    finally:
        store.close()
    parsed = samples((project.root / "unit.prom").read_text())
    assert value(parsed, "tunesmith_experiment_running", experiment="unit") == 0
    assert value(parsed, "tunesmith_trials_started_total", experiment="unit") == 1
    assert len(told) == 1 and "disk I/O error" in told[0], told


def test_a_metrics_file_that_is_a_fifo_is_refused_and_a_symlink_followed(project):
    """The textfile was written beside the path and renamed over it every second: a FIFO named by --metrics-file
    (as root, a device such as /dev/null) was replaced by a plain file, and a symlink by a file of its own."""
    import stat

    project.write_spec(project.spec("f", executor={"kind": "inline"}, budget={"trials": 2}))
    os.mkfifo(project.root / "m.prom")
    fifo = project.cli("run", "f.yaml", "--quiet", "--metrics-file", "m.prom")
    assert (fifo.returncode, fifo.stdout) == (2, ""), fifo.stderr
    assert fifo.stderr.splitlines() == [
        "error: --metrics-file: m.prom is a FIFO, not a file: the textfile is rewritten whole every second, for "
        "node_exporter's textfile collector to read; name a .prom file in its textfile directory"]
    assert stat.S_ISFIFO(os.stat(project.root / "m.prom").st_mode)
    (project.root / "textfiles").mkdir()
    (project.root / "l.prom").symlink_to("textfiles/f.prom")
    run = project.cli("run", "f.yaml", "--quiet", "--metrics-file", "l.prom")
    assert run.returncode == 0, run.stderr  # (not "exists": the refused run recorded nothing)
    assert (project.root / "l.prom").is_symlink(), "the link is kept"
    assert "tunesmith_trials_finished_total" in (project.root / "textfiles" / "f.prom").read_text()


def _sample(path, name: str, **labels: str) -> float | None:
    """One sample of the textfile at ``path``, or None (no file yet, no such series)."""
    parsed = samples(path.read_text()) if path.exists() else {}
    return parsed.get((name, tuple(sorted(labels.items()))))


def test_a_run_waiting_for_a_quota_slot_says_so_in_its_metrics(project, monkeypatch):
    """Walk K: a run waiting for a quota slot exported running 1, no busy worker, no activity since its start and
    nothing of the wait, so the stall alert paged after 30 minutes, sending on-call to the workers. Its textfile and
    `tunesmith metrics` now say it waits (as `show` does), the wait's start counts as activity, and once the wait is
    over the gauge reads 0 again."""
    from tunesmith.storage import SQLStore

    monkeypatch.setenv("TUNESMITH_USER", "waits")
    store = SQLStore(project.storage)
    path = project.root / "waiter.prom"
    try:
        store.set_quota("user:waits", 1, now=time.time())
        assert store.acquire_slot("elsewhere:1:abc", 0, {"user:waits": None}, now=time.time(), ttl=120).granted
        project.write_spec(project.spec("waiter", executor={"kind": "inline"}, budget={"trials": 2}))
        proc = start_cli(project, "run", "waiter.yaml", "-q", "--metrics-file", "waiter.prom")
        try:
            wait_for(lambda: _sample(path, "tunesmith_quota_waiting", experiment="waiter") == 1, timeout=60)
            live = samples(path.read_text())
            from_store = samples(project.cli("metrics", "waiter", check=True).stdout)
            began = next(e.at for e in store.events(store.experiment("waiter").id) if e.kind == "quota_wait")
            for parsed in (live, from_store):
                assert value(parsed, "tunesmith_quota_waiting", experiment="waiter") == 1
                assert value(parsed, "tunesmith_experiment_running", experiment="waiter") == 1
                assert value(parsed, "tunesmith_workers_busy", experiment="waiter") == 0
                assert value(parsed, "tunesmith_last_activity_timestamp_seconds",
                             experiment="waiter") == pytest.approx(began)
            store.hold_slots("elsewhere:1:abc", set(), now=time.time(), ttl=120)  # the other run gives its slot back
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    finally:
        store.close()
    ended = samples(path.read_text())
    assert value(ended, "tunesmith_quota_waiting", experiment="waiter") == 0
    assert value(ended, "tunesmith_trials_finished_total", experiment="waiter", state="completed") == 2


def test_a_killed_coordinators_textfile_stops_telling_the_time(project, monkeypatch):
    """Walk K: SIGKILLed, a coordinator's textfile said running 1 with its workers busy for good, as a live one's
    does, and no rule could tell. Its exposition time does: a live run's moves on every couple of seconds, also while
    no trial finishes; a dead one's stands still. `tunesmith metrics` reads the run as not running, made now."""
    monkeypatch.setenv("SLOW_SECONDS", "60")
    project.write_spec(project.spec("k", trial={"function": "objectives:slow"}, budget={"trials": 2},
                                    executor={"kind": "process", "workers": 2}))
    path = project.root / "k.prom"
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", "k.yaml", "-q", "--metrics-file", str(path)],
                            cwd=project.root, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # its own session: its workers die with it
    try:
        wait_for(lambda: _sample(path, "tunesmith_workers_busy", experiment="k") == 2, timeout=60)
        made = _sample(path, "tunesmith_exposition_timestamp_seconds", experiment="k")
        assert made is not None and abs(made - time.time()) < 5
        wait_for(lambda: _sample(path, "tunesmith_exposition_timestamp_seconds", experiment="k") > made + 1,
                 timeout=15)  # rewritten while both trials run and nothing else happens
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    last = _sample(path, "tunesmith_exposition_timestamp_seconds", experiment="k")
    time.sleep(2.5)
    assert _sample(path, "tunesmith_exposition_timestamp_seconds", experiment="k") == last
    assert _sample(path, "tunesmith_experiment_running", experiment="k") == 1  # what the alert reads past
    before = time.time()
    from_store = samples(project.cli("metrics", "k", check=True).stdout)
    assert value(from_store, "tunesmith_experiment_running", experiment="k") == 0
    assert before <= value(from_store, "tunesmith_exposition_timestamp_seconds", experiment="k") <= time.time()


def test_a_run_stopped_by_an_error_leaves_its_textfile_saying_it_is_not_running(project):
    """A run that raised (its store or Ray cluster gone) was never told run_finished: its textfile said running, its
    workers busy, for as long as it stayed, as a killed coordinator's does. A run refused before it started writes no
    textfile at all."""
    import io

    from tunesmith.clock import FakeClock
    from tunesmith.events import RunListener
    from tunesmith.monitoring.observers import MonitoringOptions, observed

    path, clock = project.root / "e.prom", FakeClock(start=2000.0)
    with pytest.raises(RuntimeError, match="went away"), \
            observed(RunListener(), MonitoringOptions(metrics_file=str(path)), io.StringIO(), clock) as listener:
        listener.run_started(_experiment(project), [], resumed=False, total_trials=2)
        clock.advance(1.0)  # past the textfile's throttle
        listener.trial_started(_trial(0, "running"))
        assert _sample(path, "tunesmith_workers_busy", experiment="unit") == 1
        raise RuntimeError("the store went away")
    assert _sample(path, "tunesmith_experiment_running", experiment="unit") == 0
    assert _sample(path, "tunesmith_workers_busy", experiment="unit") == 0
    refused = project.root / "refused.prom"
    with pytest.raises(RuntimeError, match="exists"), \
            observed(RunListener(), MonitoringOptions(metrics_file=str(refused)), io.StringIO()):
        raise RuntimeError("experiment 'unit' exists")
    assert not refused.exists()


def test_a_metrics_file_node_exporter_never_reads_is_one_warning(project):
    """Walk K: `--metrics-file tunesmith.txt` (or NAME.prom.tmp, NAME.metrics) was taken without a word, and
    node_exporter's textfile collector, which reads *.prom only, never exported it: "no metrics", found days later.
    One line of warning, in the log's own form; the file is written all the same (something else may read it)."""
    project.write_spec(project.spec("t", executor={"kind": "inline"}, budget={"trials": 1}))
    run = project.cli("run", "t.yaml", "-q", "--metrics-file", "t.metrics")
    assert (run.returncode, run.stdout) == (0, ""), run.stderr
    assert run.stderr.splitlines() == ["warning: --metrics-file t.metrics: node_exporter's textfile collector reads "
                                       "only files whose name ends in .prom; it will not read this one"]
    assert "tunesmith_trials_finished_total" in (project.root / "t.metrics").read_text()
    resumed = project.cli("resume", "t", "--metrics-file", "t.prom.tmp", "--log-format", "json")
    assert resumed.returncode == 0, resumed.stderr
    warned = [e for e in map(json.loads, resumed.stderr.splitlines()) if e["event"] == "warning"]
    assert len(warned) == 1 and "t.prom.tmp: node_exporter's textfile collector" in warned[0]["message"], warned
    quiet = project.cli("resume", "t", "-q", "--metrics-file", "t.prom")
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_run_is_warned_that_another_live_run_writes_its_metrics_file(project, monkeypatch):
    """Walk K: two runs of one name from two stores on one host, each given the documented NAME.prom, rewrote one
    file every second in turn: their counters went up and down, and Prometheus read every drop as a reset. The
    second run is told as it starts; a file a finished run left is no one's."""
    monkeypatch.setenv("SLOW_SECONDS", "60")
    project.write_spec(project.spec("same", trial={"function": "objectives:slow"}, budget={"trials": 1},
                                    executor={"kind": "process", "workers": 1}), "a.yaml")
    project.write_spec(project.spec("same", executor={"kind": "inline"}, budget={"trials": 1}, workdir="b-work"),
                       "b.yaml")  # (another team's folder: a's trial folders are not its)
    path = project.root / "same.prom"
    a = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", "a.yaml", "-q", "--metrics-file", "same.prom",
                          "--storage", f"sqlite:///{project.root / 'a.db'}"], cwd=project.root,
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _sample(path, "tunesmith_workers_busy", experiment="same") == 1, timeout=60)
        # a, stopped, writes no more: its last write (a second ago) is live to b's check, and b's own last write,
        # which says b ended, stays the file's (a rewriting it after b ended left a live run's file: CI's flake)
        os.killpg(a.pid, signal.SIGSTOP)
        b = project.cli("run", "b.yaml", "-q", "--metrics-file", "same.prom", "--storage",
                        f"sqlite:///{project.root / 'b.db'}")
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
    assert b.returncode == 0, b.stderr
    assert b.stderr.splitlines() == [
        "warning: --metrics-file same.prom: a live run of experiment 'same' writes this file too (it said so within "
        "10 s); the two overwrite each other's figures every second: give each run a file of its own (one per store, "
        "e.g. NAME-STORE.prom)"]
    again = project.cli("resume", "same", "-q", "--metrics-file", "same.prom", "--storage",
                        f"sqlite:///{project.root / 'b.db'}")
    assert (again.returncode, again.stderr) == (0, ""), "b's own file, which says it ended, is no one's now"


CRASHES_ONCE = '''
import os

def crashes_once(config, trial):
    mark = f"crashed-{trial.number}"
    if trial.number == 0 and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(3)  # the worker dies: retried
    return {"loss": config["x"], "acc": 1 - config["x"]}
'''


def test_the_readme_lists_every_field_each_json_log_event_has(project):
    """Walk K: `failure_kind`, `best_trial`, `delay_s`, `params`, `strategy`, `strategy_reason`, `total_trials`,
    `finished_before` and `finished` were emitted but not documented, for a format promised to log shippers. Every
    event of real runs (a retry, two objectives, a metrics server, a warning, a resume, a refusal) against the README's
    table of fields per event."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("| `event` | fields |", 1)[1].split("\n\n", 1)[0]
    documented: dict[str, set[str]] = {}
    for row in table.splitlines()[2:]:
        events, fields = row.strip("|").split("|", 1)
        for event in re.findall(r"`(\w+)`", events):
            documented[event] = set(re.findall(r"`(\w+)`", fields))
    project.write("crashes.py", CRASHES_ONCE)
    project.write_spec(project.spec("j", trial={"function": "crashes:crashes_once"}, budget={"trials": 3},
                                    objective=[{"metric": "loss", "direction": "minimize"},
                                               {"metric": "acc", "direction": "maximize"}],
                                    executor={"kind": "process", "workers": 1, "retry_backoff": 0.1}))
    lines = []
    for args in (("run", "j.yaml", "--metrics-port", "0", "--metrics-file", "j.txt"), ("resume", "j"),
                 ("resume", "nosuch")):
        proc = project.cli(*args, "--log-format", "json")
        lines += [json.loads(line) for line in proc.stderr.splitlines()]
    seen: dict[str, set[str]] = {}
    for line in lines:
        seen.setdefault(line["event"], set()).update(set(line) - {"timestamp", "time", "event", "experiment"})
    assert {"metrics_serving", "run_started", "run_resumed", "warning", "trial_started", "trial_retrying",
            "trial_finished", "run_stopping", "run_finished", "run_exit"} <= set(seen), sorted(seen)
    for event, fields in seen.items():
        assert fields <= documented.get(event, set()), (event, sorted(fields - documented.get(event, set())))
    finished = [e for e in lines if e["event"] == "trial_finished" and e["state"] == "completed"]
    assert finished and all(e["values_by_metric"] == dict(zip(("loss", "acc"), e["values"], strict=True))
                            for e in finished)
    warning = next(e for e in lines if e["event"] == "warning")
    assert warning["message"] == warning["reason"] and "j.txt" in warning["message"]
