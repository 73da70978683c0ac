"""Whether a task experiment's data file still holds the rows its last trials ran on: the latest fingerprint recorded
(the run's, or the ``data_changed`` a resume recorded) against the file as it is now.

``promote`` refits the trial's model on the file as it is and re-carves the holdout from it: a file edited since the
run (a colleague's corrected extract written over it) shipped a model tuned on one dataset and fitted on another,
its holdout score taken on other rows, without a word; and ``beat_champion`` rebuilt the champion's text codes from
its experiment's file, whatever it holds now. ``resume`` and ``reproduce`` warn of such a change, ``drift`` refuses
it as a reference; a promotion refuses it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tunesmith.errors import UserInputError
from tunesmith.records import ExperimentRecord

if TYPE_CHECKING:
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.storage.base import TrialStore


def changes_since_run(store: TrialStore, experiment: ExperimentRecord, spec: ExperimentSpec) -> list[str] | None:
    """What differs between ``experiment``'s task data now and the latest fingerprint recorded of it, in words
    (:func:`tunesmith.tasks.fingerprint_changes`); empty where nothing changed; None where there is nothing to
    compare with (trial code, no fingerprint recorded), which a caller asking "unchanged?" must not read as yes.

    Raises:
        SpecError: the data file is gone or unreadable (``task.data.path``).
    """
    from tunesmith.data_history import data_epochs
    from tunesmith.tasks import fingerprint, fingerprint_changes

    if spec.task is None:
        return None
    epochs = data_epochs(experiment.attributes, store.events(experiment.id), ())
    recorded = epochs[-1].fingerprint if epochs else None   # the rows its last trials ran on
    if not recorded:
        return None
    return fingerprint_changes(dict(recorded), fingerprint(spec.task, spec.base_dir))


def data_file(spec: ExperimentSpec) -> str:
    """The task's data as a user finds it: its file's path (resolved from the spec's folder), else its source."""
    assert spec.task is not None
    data = spec.task.data
    if data.path is None:
        return f"sklearn:{data.sklearn}" if data.sklearn is not None else "generated data"
    return data.path if os.path.isabs(data.path) else os.path.normpath(os.path.join(spec.base_dir or ".", data.path))


def refuse_changed_data(store: TrialStore, experiment: ExperimentRecord, spec: ExperimentSpec) -> None:
    """A promotion of a task experiment whose data changed since its last trials ran: refused before the refit.

    Raises:
        UserInputError: naming the file, what changed, and the ways out (exit 2).
    """
    changes = changes_since_run(store, experiment, spec)
    if not changes:
        return
    shown = data_file(spec)
    raise UserInputError(
        f"task.data.path: {shown} changed since experiment {experiment.name!r} ran ({'; '.join(changes)}); promote "
        "refits the model on the file as it is now, which would ship a model fitted (and its holdout scored) on other "
        "rows than it was tuned on; nothing was done. Restore the file the experiment ran on, or tune on the new "
        f"data: tunesmith retune {experiment.name} --data {shown}")


__all__ = ["changes_since_run", "data_file", "refuse_changed_data"]
