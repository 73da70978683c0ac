"""The MLflow writer in a process of its own, so MLflow's CPU work never competes with the loop for the GIL.

The live listener's thread talks to it through :class:`TrackerProcess`, which has the tracker's three methods
(``parent_run``, ``sync_trial``, ``finish_parent``) and turns each into one JSON line on the child's stdin:
nothing waits for MLflow except ``finish_parent``, which waits for the child's last line (what it wrote, or its
error). Records cross as JSON (never pickle). A child still writing when the run ends is left to finish on its own.

    python -m tunesmith.tracking.tracker_process URI EXPERIMENT_NAME FIELD    (reads JSON lines on stdin)

FIELD: where the URI came from (``tracking.mlflow.uri``, ``MLFLOW_TRACKING_URI``), which the child's errors name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tunesmith.records import (
    ExperimentRecord, FailureKind, Report, RunStatus, TrialRecord, TrialState,
)


class TrackerProcess:
    """A stand-in for :class:`~tunesmith.tracking.mlflow_tracker.MlflowTracker` whose work runs in a child."""

    def __init__(self, uri: str, experiment_name: str, field: str) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tunesmith.tracking.tracker_process", uri, experiment_name, field],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)  # Ctrl-C on the run does not cut a write in half

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(json.dumps(message) + "\n")
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            words = self._last_words()
            reply = json.loads(words) if words.startswith("{") else {}
            raise RuntimeError(reply.get("error") or words or "the MLflow writer process ended") from None

    def parent_run(self, experiment: ExperimentRecord, environment: Mapping[str, Any] | None = None) -> str:
        self._send({"op": "start", "experiment": experiment_json(experiment), "environment": environment})
        return "in-child"

    def sync_trial(self, parent_run_id: str, experiment: ExperimentRecord, trial: TrialRecord) -> bool:
        self._send({"op": "trial", "trial": trial_json(trial)})
        return True

    def finish_parent(self, run_id: str, experiment: ExperimentRecord, best: TrialRecord | None) -> None:
        self._send({"op": "finish", "experiment": experiment_json(experiment),
                    "best": trial_json(best) if best else None})
        assert self._child.stdin is not None
        self._child.stdin.close()
        words = self._last_words()
        reply = json.loads(words) if words.startswith("{") else {"error": words or "no answer"}
        if reply.get("error"):
            raise RuntimeError(reply["error"])

    def _last_words(self) -> str:
        """The child's last line, once it has ended (its stdout closes when it exits)."""
        assert self._child.stdout is not None
        lines = self._child.stdout.read().strip().splitlines()
        self._child.stdout.close()
        try:
            self._child.wait(60)
        except subprocess.TimeoutExpired:
            pass  # it closed its output but lingers; it ends on its own
        return lines[-1] if lines else ""


# -- JSON codec for the records that cross --------------------------------------------------------------------
def experiment_json(e: ExperimentRecord) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "spec": dict(e.spec), "status": e.status.value, "created_at": e.created_at,
            "updated_at": e.updated_at, "strategy": e.strategy, "strategy_reason": e.strategy_reason,
            "attributes": dict(e.attributes)}


def experiment_from_json(d: Mapping[str, Any]) -> ExperimentRecord:
    return ExperimentRecord(**{**d, "status": RunStatus(d["status"])})


def trial_json(t: TrialRecord) -> dict[str, Any]:
    return {"number": t.number, "state": t.state.value, "params": dict(t.params), "seed": t.seed,
            "values": list(t.values) if t.values is not None else None, "metrics": dict(t.metrics),
            "intermediate": [[r.step, r.value] for r in t.intermediate], "attempts": t.attempts, "error": t.error,
            "failure_kind": t.failure_kind.value if t.failure_kind else None, "log_path": t.log_path,
            "started_at": t.started_at, "finished_at": t.finished_at, "duration_s": t.duration_s}


def trial_from_json(d: Mapping[str, Any]) -> TrialRecord:
    return TrialRecord(**{**d, "state": TrialState(d["state"]),
                          "values": tuple(d["values"]) if d["values"] is not None else None,
                          "intermediate": tuple(Report(int(s), float(v)) for s, v in d["intermediate"]),
                          "failure_kind": FailureKind(d["failure_kind"]) if d["failure_kind"] else None})


def main(argv: list[str]) -> int:
    from tunesmith.tracking.mlflow_tracker import MlflowTracker

    uri, name, field = argv
    tracker = MlflowTracker(uri, name, field)  # its errors name where the URI came from, as in the run's process
    experiment: ExperimentRecord | None = None
    parent = ""
    written = 0
    try:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg["op"] == "start":
                experiment = experiment_from_json(msg["experiment"])
                parent = tracker.parent_run(experiment, msg.get("environment"))
            elif msg["op"] == "trial" and experiment is not None:
                written += tracker.sync_trial(parent, experiment, trial_from_json(msg["trial"]))
            elif msg["op"] == "finish" and experiment is not None:
                experiment = experiment_from_json(msg["experiment"])
                best = trial_from_json(msg["best"]) if msg.get("best") else None
                tracker.finish_parent(parent, experiment, best)
                print(json.dumps({"written": written, "parent_run_id": parent}), flush=True)
                return 0
    except BaseException as e:  # noqa: BLE001 - reported to the run, which records it as an event
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]}),
              flush=True)
        return 1
    print(json.dumps({"error": "the run ended before telling the writer to finish"}), flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
