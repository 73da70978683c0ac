"""A resumed nsga2 run goes on with the generations it evolved.

Optuna's NSGA-II stamps each trial with its generation as it asks for it and builds a generation's parents from the
completed trials stamped with the one before. A resume replays the finished trials into a new study: unstamped,
they were in no population, and the new trials started again at generation 0 (drawn at random, as the first
generation is), the evolved generations ignored."""

from __future__ import annotations

from typing import Any

import optuna


def _generations(runner: Any) -> list[int | None]:
    """The generation stamps of the trials in ``runner``'s NSGA-II study, in its order."""
    study = runner._strategy.study
    key = optuna.samplers.NSGAIISampler._get_generation_key()
    return [t.system_attrs.get(key) for t in study.get_trials(deepcopy=False)]


def test_a_resumed_nsga2_run_puts_its_trials_in_the_generations_an_uninterrupted_run_did(project: Any) -> None:
    from tunesmith.events import RunListener
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    def spec(name: str) -> Any:
        return spec_from_dict(project.spec(name=name, strategy={"name": "nsga2", "options": {"population_size": 4}},
                                           budget={"trials": 12}, seed=3, executor={"kind": "inline"},
                                           base_dir=str(project.root)))

    store = SQLStore(project.storage)
    whole: list[Any] = []
    run_experiment(spec("whole"), store, on_runner=whole.append)
    assert _generations(whole[0]) == [0] * 4 + [1] * 4 + [2] * 4   # the premise: Optuna's own stamps

    cut: list[Any] = []

    class StopAfterSix(RunListener):
        def trial_finished(self, trial: Any, best: Any) -> None:
            if trial.number == 5:
                cut[0].request_stop()

    assert len(run_experiment(spec("cut"), store, StopAfterSix(), on_runner=cut.append).trials) == 6
    resumed: list[Any] = []
    assert len(resume_experiment("cut", store, on_runner=resumed.append).trials) == 12
    assert _generations(resumed[0]) == _generations(whole[0])
    store.close()
