"""The rows ``beat_champion`` scores the champion on: the candidate's holdout rows, encoded as the champion's own
experiment encodes its data (its feature list, in its order; its text columns' level tables), read with
:func:`tunesmith.tasks.rows_like` as ``drift`` reads new rows for a champion.

The champion was handed the candidate's matrix: a candidate listing the same features in another order gave it
scrambled columns (a copy of the champion "beat" it, 0.80 against 0.23), and one whose data had a new text level gave
it codes shifted by one. The champion's experiment is the one its version's tags name, in this store. Where its
encoding cannot be known (a version tunesmith did not register, another store's experiment, trial code's model, its
data file changed since, the candidate's rows lacking one of its columns), the comparison is refused, saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.errors import SpecError
from tunesmith.promotion.tuned_data import changes_since_run, data_file
from tunesmith.promotion.version_tags import EXPERIMENT_TAG, of_experiment

if TYPE_CHECKING:
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.model_registry import ModelVersion


class CannotCompare(Exception):
    """The champion's encoding of the candidate's rows is not known; the message says why."""


def champion_holdout(store: TrialStore, champion: ModelVersion, candidate: ExperimentSpec, candidate_X: Any) -> Any:
    """The candidate's holdout rows (in the order the candidate's holdout scores them) as the champion's experiment
    encodes them: ``candidate_X`` itself where that experiment reads the same data from the same folder (its own
    trial, a re-tune on the same file), unchanged since it ran.

    Raises:
        CannotCompare: the champion's experiment is not known here or is no task's, its data changed since it ran,
            or the candidate's rows lack one of its feature columns.
    """
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import prepare, reference_columns, rows_like

    name = champion.tags.get(EXPERIMENT_TAG)
    if not name:
        raise CannotCompare("it carries no tunesmith.experiment tag (registered outside tunesmith), so the rows it "
                            "takes and how their text columns are encoded are not known")
    experiment = store.experiment(name) if name in store.experiment_names() else None
    if experiment is None or not of_experiment(champion, experiment):
        raise CannotCompare(f"it was registered from experiment {name!r}, which this store does not hold (another "
                            "store's, or deleted), so how that experiment encodes its rows is not known here; promote "
                            "with the store that holds it (--storage)")
    spec = spec_from_dict(experiment.spec, recorded=True)
    if spec.task is None:
        raise CannotCompare(f"it is the model experiment {name!r}'s trial code handed over, whose input rows "
                            "tunesmith does not know")
    try:
        changes = changes_since_run(store, experiment, spec)
    except SpecError as e:
        raise CannotCompare(f"its experiment {name!r}'s data cannot be read ({e.message}), and the champion's "
                            "encoding of text columns is rebuilt from it") from None
    if changes:
        raise CannotCompare(f"its experiment {name!r}'s data file {data_file(spec)} changed since it ran "
                            f"({'; '.join(changes)}), and the champion's encoding of the rows (its text columns' "
                            "levels) is rebuilt from that file; restore it")
    assert candidate.task is not None
    if spec.task.data == candidate.task.data and spec.base_dir == candidate.base_dir:
        return candidate_X   # the same file, read and encoded the same way: nothing to re-read or re-encode
    prep = prepare(candidate.task, candidate.base_dir)
    rows = prep.holdout_idx if prep.dataset.file_rows is None else prep.dataset.file_rows[prep.holdout_idx]
    raw = reference_columns(candidate.task.data, candidate.base_dir)
    held = {column: [values[i] for i in rows] for column, values in raw.items()}
    try:
        return rows_like(spec.task.data, spec.base_dir, data_file(candidate), "beat_champion", held).X
    except SpecError as e:
        raise CannotCompare(f"the candidate's rows cannot be encoded as its experiment {name!r} encodes its own: "
                            f"{e.message}") from None


__all__ = ["CannotCompare", "champion_holdout"]
