"""The data a task experiment ran on, over its resumes.

A task's data is fingerprinted when the experiment is recorded (the ``data_fingerprint`` attribute, which drift,
reproduce and re-tunes compare with). A ``resume`` that finds the data changed says so and records a
``data_changed`` event holding the new fingerprint and the first trial number it allocates on it, so that `show`
can say which trials ran on which data: trials from before and after a change are not comparable. Trials re-run
after the change (lost or interrupted ones, numbered before it) ran on the new data too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.records import ExperimentRecord, TrialRecord
from tunesmith.storage.base import Event

if TYPE_CHECKING:
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.storage.sql import SQLStore

DATA_CHANGED = "data_changed"


@dataclass(frozen=True, slots=True)
class DataEpoch:
    """One fingerprint of the data and the trials that ran on it.

    ``fingerprint`` is None for a change recorded before fingerprints were kept in the event (only ``changes``
    says what differed); ``from_trial`` is None there too. ``re_run``: trials numbered before ``from_trial`` that
    were (re-)started on this data."""

    fingerprint: Mapping[str, Any] | None
    from_trial: int | None
    since: float | None                # when the change was found (None: the data the experiment started on)
    changes: tuple[str, ...] = ()      # what differs from the data before, in words
    re_run: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"from_trial": self.from_trial, "since": self.since, "changes": list(self.changes),
                "re_run": list(self.re_run),
                "fingerprint": None if self.fingerprint is None else dict(self.fingerprint)}


def record_data_change(store: SQLStore, experiment: ExperimentRecord, spec: ExperimentSpec, now: float,
                         warn: Callable[[str], None]) -> None:
    """On resume: warn when ``spec``'s task data differs from what the experiment started on, and record a
    ``data_changed`` event when it differs from what the last run ran on (a new epoch; a second resume on the
    same changed data warns again and records nothing new)."""
    started = experiment.attributes.get("data_fingerprint")
    if spec.task is None or not started:
        return
    from tunesmith.tasks import fingerprint, fingerprint_changes

    now_on = fingerprint(spec.task, spec.base_dir)
    changes = fingerprint_changes(started, now_on)
    if changes:
        warn(f"the data changed since this experiment started ({'; '.join(changes)}): trials from before and after "
             "are not comparable")
    epochs = data_epochs(experiment.attributes, store.events(experiment.id), ())
    last = epochs[-1].fingerprint  # (None: a change recorded before events kept the fingerprint)
    since_last = fingerprint_changes(dict(last), now_on) if last is not None else changes
    if since_last:
        recorded = sum(store.trial_counts_of(experiment.id).values())  # numbers 0.. are taken: the next one
        store.record_event(experiment.id, DATA_CHANGED, now,
                           detail={"changes": since_last, "fingerprint": now_on, "from_trial": recorded})


def data_epochs(attributes: Mapping[str, Any], events: Sequence[Event],
                trials: Sequence[TrialRecord]) -> list[DataEpoch]:
    """Each fingerprint the experiment's trials ran on, oldest first (one when the data never changed; none
    without a fingerprint). ``trials`` tells which earlier-numbered trials were re-run after each change."""
    started = attributes.get("data_fingerprint")
    if not started:
        return []
    epochs = [DataEpoch(started, 0, None)]
    for e in events:
        if e.kind != DATA_CHANGED:
            continue
        fingerprint, from_trial = e.payload.get("fingerprint"), e.payload.get("from_trial")
        changes, last = tuple(e.payload.get("changes") or ()), epochs[-1]
        if last.fingerprint is not None and fingerprint == last.fingerprint:
            continue  # (two coordinators resuming at once may each have recorded the one change)
        if last.fingerprint is None and len(epochs) > 1 and changes == last.changes:
            # the previous tunesmith recorded a fingerprint-less event on every resume while the data differed from
            # the start (the words compare with the start, the hash among them): the same data, one change. The
            # change began at the first; this one may say what the data was.
            epochs[-1] = DataEpoch(fingerprint, last.from_trial, last.since, last.changes)
            continue
        epochs.append(DataEpoch(fingerprint, from_trial, e.at, changes))
    for i, epoch in enumerate(epochs[1:], start=1):
        until = epochs[i + 1].since if i + 1 < len(epochs) else None
        re_run = tuple(sorted(t.number for t in trials if epoch.from_trial is not None
                              and t.number < epoch.from_trial and t.started_at is not None
                              and epoch.since is not None and t.started_at >= epoch.since
                              and (until is None or t.started_at < until)))
        epochs[i] = DataEpoch(epoch.fingerprint, epoch.from_trial, epoch.since, epoch.changes, re_run)
    return epochs
