"""An inline trial's output: its own thread's prints, warnings and log records go to its trial.log, other threads'
to the process's streams."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tunesmith


def _chatty(tag: str, together: threading.Barrier) -> Callable[[dict[str, Any], Any], float]:
    """A trial function that writes its tag on stdout, stderr and through logging, while the other run's trial writes
    too. (Its warnings go to stderr as well, but pytest records warnings.)"""

    def objective(config: dict[str, Any], trial: Any) -> float:
        together.wait(timeout=60)  # both runs' trials (and the test's own thread) write at the same time
        handler = logging.StreamHandler()  # sys.stderr as the trial sees it
        log = logging.getLogger(f"chatty-{tag}")
        log.addHandler(handler)
        try:
            for i in range(5):
                print(f"{tag}-stdout-{trial.number}-{i}")
                print(f"{tag}-stderr-{trial.number}-{i}", file=sys.stderr)
                log.warning(f"{tag}-logging-{trial.number}-{i}")
                time.sleep(0.01)
        finally:
            log.removeHandler(handler)
        return config["x"]

    return objective


def test_two_inline_runs_in_threads_each_log_only_their_own_output_and_the_streams_come_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """contextlib.redirect_stdout/stderr swapped the process's streams: thread A saved the real stdout and set its
    log, B saved A's log and set its own, A put the real one back, then B "restored" A's log, closed by then. Every
    later print raised "I/O operation on closed file", and meanwhile each run's output (and the test's own thread's)
    went into the other's logs."""
    streams = sys.stdout, sys.stderr, sys.breakpointhook
    together = threading.Barrier(3)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            results[tag] = tunesmith.run(
                {"name": f"chatty-{tag}", "objective": {"metric": "loss", "direction": "minimize"},
                 "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": _chatty(tag, together),
                 "budget": {"trials": 3}, "executor": {"kind": "inline"}, "seed": 0, "workdir": str(tmp_path / tag)},
                storage=f"sqlite:///{tmp_path / tag}.db")
        except BaseException as e:  # noqa: BLE001 - told by the test's own thread
            errors.append(e)
            together.abort()

    threads = [threading.Thread(target=run, args=(tag,)) for tag in ("A", "B")]
    for thread in threads:
        thread.start()
    for number in range(3):  # the test's own thread writes while each pair of trials does
        together.wait(timeout=60)
        print(f"main-stdout-{number}")
        print(f"main-stderr-{number}", file=sys.stderr)
    for thread in threads:
        thread.join(timeout=120)
    left = sys.stdout, sys.stderr, sys.breakpointhook
    sys.stdout, sys.stderr, sys.breakpointhook = streams  # the tests after this one print, whatever happened here
    assert left == streams, "the process's streams were not given back"
    assert not errors, errors
    for tag, other in (("A", "B"), ("B", "A")):
        trials = results[tag].trials
        assert [t.state.value for t in trials] == ["completed"] * 3, tag
        for t in trials:
            text = Path(str(t.log_path)).read_text()
            for i in range(5):
                for kind in ("stdout", "stderr", "logging"):
                    assert f"{tag}-{kind}-{t.number}-{i}\n" in text, (tag, kind, text)
            assert f"{other}-" not in text and "main-" not in text, text
    said = capsys.readouterr()
    assert all(f"main-stdout-{n}" in said.out and f"main-stderr-{n}" in said.err for n in range(3)), said
    assert "-stdout-" not in said.out.replace("main-stdout-", ""), said.out


def test_cross_val_score_of_a_search_on_joblib_threads_gives_the_streams_back() -> None:
    """The walk's case: two TunedSearchCV fits at once under joblib's threading backend left sys.stdout and
    sys.stderr on a closed trial.log of a deleted temporary folder."""
    from joblib import parallel_backend
    from scipy.stats import loguniform
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from tunesmith.sklearn import TunedSearchCV

    X, y = load_iris(return_X_y=True)
    streams = sys.stdout, sys.stderr
    try:
        with parallel_backend("threading", n_jobs=2):
            scores = cross_val_score(TunedSearchCV(LogisticRegression(max_iter=300), {"C": loguniform(1e-2, 1e2)},
                                                   n_iter=4, cv=3, random_state=0), X, y, cv=4)
    finally:
        left = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = streams
    assert left == streams, left
    assert len(scores) == 4 and min(scores) > 0.8, scores


def test_a_search_started_while_another_threads_trial_runs_prints_its_verbose_lines_on_its_own_stdout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fit() keeps sys.stdout for its verbose lines, which its trials print: kept while another thread's inline
    trial ran, that was the stream that writes to the calling thread's trial log, so they went into the logs."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tunesmith.sklearn import TunedSearchCV

    running, release = threading.Event(), threading.Event()

    def waits(config: dict[str, Any], trial: Any) -> float:
        running.set()
        release.wait(timeout=60)
        return config["x"]

    def run() -> None:
        tunesmith.run({"name": "waits", "objective": {"metric": "loss", "direction": "minimize"},
                       "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": waits,
                       "budget": {"trials": 1}, "executor": {"kind": "inline"}, "workdir": str(tmp_path)},
                      storage=f"sqlite:///{tmp_path / 'waits.db'}")

    other = threading.Thread(target=run)
    other.start()
    try:
        assert running.wait(timeout=60)
        X, y = load_iris(return_X_y=True)
        TunedSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2, verbose=2).fit(X, y)
    finally:
        release.set()
        other.join(timeout=60)
    out = capsys.readouterr().out
    assert "Fitting 2 folds for each of 2 candidates" in out, out
    assert out.count("] END {'C': ") == 2, out
