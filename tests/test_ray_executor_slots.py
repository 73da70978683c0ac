"""The Ray executor's choice of a slot for an attempt, without a cluster: made once per trial.

The runner asks ``next_job_waits()`` (to record the trial queued or running) and then ``submit``s it; both need the
slot the attempt goes to, and the choice was made twice (a scan of every lane each time).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tunesmith.executor.ray import RayExecutor, _Lane, _Running
from tunesmith.records import FailureKind


@pytest.fixture
def executor(monkeypatch, tmp_path):
    """Two slots whose actors are up; lane 0 runs an attempt that started at 5.0. Nothing is sent to Ray: what a
    submit sends is recorded (its slot), and put on its lane as sending would."""
    ex = RayExecutor(workers=2)
    busy = _Running(SimpleNamespace(number=0), None, 0, 1, 0.0, 0, started=5.0)
    ex._lanes = [_Lane(actor=None, id=1, ready=None, runs=[busy]), _Lane(actor=None, id=2, ready=None)]
    ex.sent = []  # type: ignore[attr-defined]

    def send(run: _Running, submitted: bool = False) -> None:
        ex.sent.append(run.slot)  # type: ignore[attr-defined]
        ex._lanes[run.slot].runs.append(run)

    monkeypatch.setattr(ex, "_send", send)
    choose = ex._next_slot
    ex.choices = 0  # type: ignore[attr-defined]

    def counted() -> int:
        ex.choices += 1  # type: ignore[attr-defined]
        return choose()

    monkeypatch.setattr(ex, "_next_slot", counted)
    ex.job = lambda n: SimpleNamespace(number=n, log_path=str(tmp_path / f"{n}.log"))  # type: ignore[attr-defined]
    return ex


def test_the_slot_is_chosen_once_per_trial_and_the_submit_goes_where_the_runner_was_told(executor):
    assert executor.next_job_waits() is False  # lane 1 is idle and up: it begins at once
    executor.submit(executor.job(1))
    assert (executor.sent, executor.choices) == ([1], 1)
    assert executor.next_job_waits() is True  # both run: it waits behind the attempt that started first (lane 0)
    executor.submit(executor.job(2))
    assert (executor.sent, executor.choices) == ([1, 0], 2)


def test_a_submit_nobody_asked_about_chooses_its_slot_itself(executor):
    executor.submit(executor.job(1))
    assert (executor.sent, executor.choices) == ([1], 1)
    assert executor.next_job_waits() is True
    executor.stop(99, FailureKind.INTERRUPTED)  # (no such trial: nothing is killed)
    executor.submit(executor.job(2))  # stop came between: the slot is chosen again, not taken from before
    assert (executor.sent, executor.choices) == ([1, 0], 3)
