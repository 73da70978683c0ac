"""The JSON-lines protocol between the coordinator and its worker processes (no pickle on any pipe).

coordinator -> worker: ``{"op": "run", "job": {...}}``, ``{"op": "prune"}``, ``{"op": "ack", "prune": bool}`` (the
decision on the reports sent so far, for jobs with ``sync_reports``), ``{"op": "preload", "function": ...,
"base_dir": ...}``, ``{"op": "exit"}``
worker -> coordinator: ``{"ev": "ready", "pid": N}``, ``{"ev": "report", "number": N, "step": S, "value": V}``
(with ``"restated": true`` for an earlier attempt's report restated from the trial's checkpoint: no ack follows),
``{"ev": "result", "number": N, "attempt": A, "outcome": {...}}`` (the outcome's ``notes``: what the attempt has for
the run's warnings; its failure's ``raised_at``: where an exception was raised, for fail fast, absent from a
worker of a tunesmith before it), or instead ``{"ev": "unwritable", "number": N, "attempt": A, "reason": "..."}``:
the trial's folder refused a write of its log (a full disk: evaluation/unwritable_folder.py), and the run stops
"""

from __future__ import annotations

from typing import Any

from tunesmith.records import Failure, FailureKind, Outcome, RaisedAt


def outcome_to_json(o: Outcome) -> dict[str, Any]:
    return {
        "values": list(o.values) if o.values is not None else None,
        "metrics": dict(o.metrics),
        "failure": _failure_to_json(o.failure) if o.failure else None,
        "pruned": o.pruned,
        "duration_s": o.duration_s,
        "notes": list(o.notes),
    }


def outcome_from_json(d: dict[str, Any]) -> Outcome:
    f = d.get("failure")
    return Outcome(
        values=tuple(d["values"]) if d.get("values") is not None else None,
        metrics=d.get("metrics") or {},
        failure=_failure_from_json(f) if f else None,
        pruned=bool(d.get("pruned")),
        duration_s=float(d.get("duration_s") or 0.0),
        notes=tuple(d.get("notes") or ()),
    )


def _failure_to_json(f: Failure) -> dict[str, Any]:
    where = f.raised_at
    raised_at = {"exception": where.exception, "place": where.place, "line": where.line} if where else None
    return {"kind": f.kind.value, "message": f.message, "raised_at": raised_at}


def _failure_from_json(f: dict[str, Any]) -> Failure:
    raised_at = f.get("raised_at")
    return Failure(FailureKind(f["kind"]), f["message"], RaisedAt(**raised_at) if raised_at else None)
