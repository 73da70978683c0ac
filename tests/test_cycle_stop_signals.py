"""A stop signal during a `cycle` / `watch` step outside a tuning run: noted, and the command stops once the step
(the cycle) has ended, not in the middle of it (a promotion between registering a version, moving its aliases and
writing its audit event). Through the real CLI in a subprocess; the cycle is a fake whose step sends the signal to
its own process, so the signal lands inside the step every time (a real promote step is too short to aim at)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = '''
import os, signal, sys, time
from tunesmith import cli, cycle
from tunesmith.stop_signals import handlers_restored

signals, then = sys.argv[1].split(","), sys.argv[2]


class Runner:  # what a tuning run's runner gives on_runner
    class spec:
        class executor:
            kind = "inline"

    def request_stop(self, reason, immediate=False):
        print("run stopped before its first trial:", reason, file=sys.stderr, flush=True)


def run_cycle(store, target, data, **options):
    if then == "tail":  # the signals land in a tuning run's tail (its holdout refit), its runner's handlers installed
        with handlers_restored():
            options["on_runner"](Runner())
            for name in signals:
                os.kill(os.getpid(), getattr(signal, name))
            time.sleep(0.2)
        signals.clear()
    print("step began", file=sys.stderr, flush=True)
    for name in signals:
        os.kill(os.getpid(), getattr(signal, name))
    time.sleep(0.2)  # the step goes on (a refit, a registration)
    print("step ended", file=sys.stderr, flush=True)
    if then == "tune":
        with handlers_restored():
            options["on_runner"](Runner())
    if then == "failed":
        return cycle.CycleReport("bc", "bc", "bc", cycle.CycleOutcome.FAILED,
                                 (cycle.CycleStep("promote", cycle.StepStatus.FAILED, "registry down"),))
    return cycle.CycleReport("bc", "bc", "bc", cycle.CycleOutcome.NO_DRIFT,
                             (cycle.CycleStep("drift", cycle.StepStatus.DONE, "no drift"),))


class Store:  # what watch gives back between cycles, and the command closes as it ends
    def release_connections(self):
        pass

    def close(self):
        pass


cycle._target_store = lambda storage, target, *paths: (Store(), None)  # paths: --data, --reference
cycle.run_cycle = run_cycle
cli.main(sys.argv[3:])
'''


def _run(tmp_path: Path, signals: str, then: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", FAKE, signals, then, *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_watch_stopped_during_a_step_lets_the_step_end_then_exits_130(tmp_path: Path, signame: str) -> None:
    """SIGTERM raised KeyboardInterrupt wherever watch was, a promotion included, and said "nothing is lost"."""
    proc = _run(tmp_path, signame, "-", "watch", "bc", "--data", "d.csv", "--every", "1h", "--json")
    assert proc.returncode == 130, proc.stderr
    assert "step ended" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "no_drift"  # the cycle is reported, and watch does not wait
    said = proc.stderr.strip().splitlines()[-1]
    assert said.startswith(f"watch: stopped by {signame} during a cycle, once it had ended"), proc.stderr


def test_watch_asked_twice_during_a_step_stops_at_once_saying_the_step_may_be_unfinished(tmp_path: Path) -> None:
    proc = _run(tmp_path, "SIGTERM,SIGTERM", "-", "watch", "bc", "--data", "d.csv", "--every", "1h")
    assert proc.returncode == 130 and "step ended" not in proc.stderr, proc.stderr
    assert "may not have finished" in proc.stderr and "nothing is lost" not in proc.stderr, proc.stderr


def test_a_tuning_run_reached_after_a_stop_signal_stops_before_its_first_trial(tmp_path: Path) -> None:
    proc = _run(tmp_path, "SIGTERM", "tune", "watch", "bc", "--data", "d.csv", "--every", "1h", "--cycles", "1")
    assert proc.returncode == 130, proc.stderr
    assert "run stopped before its first trial: interrupted by SIGTERM" in proc.stderr, proc.stderr


def test_cycle_stopped_by_sigterm_outside_its_run_ends_the_cycle_then_exits_130(tmp_path: Path) -> None:
    """`cycle` was killed by SIGTERM outside its tuning run: exit 143, no report, a step cut anywhere."""
    proc = _run(tmp_path, "SIGTERM", "-", "cycle", "bc", "--data", "d.csv", "--json")
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert "step ended" in proc.stderr and json.loads(proc.stdout)["outcome"] == "no_drift", proc.stderr
    assert "cycle: stopped by SIGTERM once the cycle had ended" in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", ["cycle", "watch"])
def test_a_stop_signal_in_a_tuning_runs_tail_is_noted_and_the_command_exits_130(tmp_path: Path, command: str) -> None:
    """SIGTERM after a run's loop had ended (its shutdown grace, its holdout refit) reached only the runner's handler:
    the run ended completed, the cycle went on, and the signal was never noted (exit 0)."""
    proc = _run(tmp_path, "SIGTERM", "tail", command, "bc", "--data", "d.csv", "--json",
                *(("--cycles", "2", "--every", "1s") if command == "watch" else ()))
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert f"{command}: stopped by SIGTERM" in proc.stderr and proc.stdout.count('"outcome"') == 1, proc.stderr


def test_cycle_asked_twice_stops_at_once_saying_so_and_reports_interrupted(tmp_path: Path) -> None:
    """A second signal in `cycle` exited 130 with nothing said and no report: the JSON a CI step parses was missing."""
    proc = _run(tmp_path, "SIGTERM,SIGTERM", "-", "cycle", "bc", "--data", "d.csv", "--json", "--json-out", "r.json")
    assert proc.returncode == 130 and "step ended" not in proc.stderr, proc.stderr
    assert "cycle: stopped at once" in proc.stderr and "may not have finished" in proc.stderr, proc.stderr
    for report in (json.loads(proc.stdout), json.loads((tmp_path / "r.json").read_text())):
        assert report["outcome"] == "interrupted" and report["exit_code"] == 130, report
        assert report["stopped_by"] == "SIGTERM" and report["target"] == "bc", report


@pytest.mark.parametrize(("then", "code"), [("-", 130), ("failed", 1)])
def test_cycle_json_exit_code_is_the_processs_after_a_noted_signal(tmp_path: Path, then: str, code: int) -> None:
    """After a noted signal the JSON said exit_code 0 (or 1) while the process exited 130; a failure was masked."""
    proc = _run(tmp_path, "SIGTERM", then, "cycle", "bc", "--data", "d.csv", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == code and report["stopped_by"] == "SIGTERM", (report, proc.stderr)


def test_watch_json_exit_code_is_the_processs_after_a_noted_signal(tmp_path: Path) -> None:
    proc = _run(tmp_path, "SIGTERM", "failed", "watch", "bc", "--data", "d.csv", "--every", "1h", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == 1 and report["stopped_by"] == "SIGTERM", (report, proc.stderr)
