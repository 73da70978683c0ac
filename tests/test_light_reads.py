"""Commands that show no learning curve read none: a long run's reports (100 a trial) are most of what its store
holds, and `delete`, `show`, `trials --limit 1` and `metrics` of 6,705 trials read them all (3-8 s, 275 MB), `delete`
twice, to learn whether a coordinator is at work (walk P #5). What each command reads is seen in the SQL statements
it runs (SQLAlchemy's ``before_cursor_execute``), on a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.helpers import cli_in_process
from tunesmith import api
from tunesmith.storage import SQLStore


@pytest.fixture
def long_run(project):
    """Experiment ``long``: 6 inline trials, 5 reports each, no scheduler."""
    api.run(project.spec("long", trial={"function": "objectives:reporting"}, executor={"kind": "inline"}),
            storage=project.storage)
    return project


@pytest.fixture
def statements() -> Iterator[list[tuple[str, object]]]:
    """Every SQL statement run (with its parameters) while the test runs, in order."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def _reads(statements: list[tuple[str, object]], table: str) -> list[tuple[str, object]]:
    """The SELECTs that read ``table`` (a trial's columns: ``trials.params``; a report's: ``trial_reports``)."""
    return [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT") and table in s]


@pytest.mark.parametrize("command", [["show", "long"], ["show", "long", "--json"], ["trials", "long"],
                                     ["trials", "long", "--limit", "1"], ["metrics", "long"]],
                         ids=" ".join)
def test_a_command_that_shows_no_curve_reads_no_report(long_run, statements, command):
    code, out, err = cli_in_process(*command, "--storage", long_run.storage)
    assert code == 0, err
    assert out.strip()
    assert _reads(statements, "trial_reports") == [], f"{' '.join(command)} read the trials' reports"


def test_trials_json_with_a_limit_reads_only_the_listed_trials_reports(long_run, statements):
    """`trials --json` prints curves: those of the trials listed, read for them alone; what it prints is what a
    full read of those trials says."""
    code, out, err = cli_in_process("trials", "long", "--sort", "loss", "--limit", "2", "--json",
                                    "--storage", long_run.storage)
    assert code == 0, err
    listed = json.loads(out)
    numbers = [t["number"] for t in listed]
    [(_, parameters)] = _reads(statements, "trial_reports")
    assert list(parameters)[1:] == sorted(numbers), "the reports of other trials than those listed were read"
    store = SQLStore(long_run.storage, create=False)
    try:
        full = {t.number: t for t in store.trials(store.experiment("long").id)}
    finally:
        store.close()
    assert [t["intermediate"] for t in listed] == [[[r.step, r.value] for r in full[n].intermediate] for n in numbers]
    assert all(len(t["intermediate"]) == 5 for t in listed)


@pytest.mark.parametrize("output", ["--json", "--csv"])
def test_trials_sorted_with_curves_reads_each_trial_once(long_run, statements, output):
    """Sorting lists every trial: `trials --sort loss --json` (or --csv) read every trial without its curve, then
    every trial again with it. Now once, with curves, sorted in memory (review surface, item 3)."""
    code, out, err = cli_in_process("trials", "long", "--sort", "loss", output, "--storage", long_run.storage)
    assert code == 0 and out.strip(), err
    assert len(_reads(statements, "trials.params")) == 1, "the trials were read more than once"
    assert len(_reads(statements, "trial_reports")) == 1, "the reports were read more than once"


def test_delete_asks_once_whether_a_coordinator_is_at_work_and_reads_no_trial(long_run, statements):
    """`delete --yes` checked twice (before the prompt it does not show, and in the deletion), each time reading
    every trial with its reports, for their owners' beats: now once, each owner's latest beat in one query."""
    code, out, err = cli_in_process("delete", "long", "--yes", "--storage", long_run.storage)
    assert (code, out.strip()) == (0, "deleted long"), err
    assert len(_reads(statements, "FROM coordinator_beats")) == 1, "the check ran more than once"
    assert _reads(statements, "trial_reports") == [] and _reads(statements, "trials.params") == []


def test_resume_counts_only_its_own_experiments_trials(long_run, statements):
    """A resume whose workdir holds trial folders counts the experiment's trials (and its budget's stop counts them
    again): each count grouped every trial of the store by experiment, a large store's other experiments' too
    (100k trials read to learn six). Now each count is of the experiment's own trials, through its index."""
    api.run(long_run.spec("other", trial={"function": "objectives:reporting"}, executor={"kind": "inline"}),
            storage=long_run.storage)
    statements.clear()
    result = api.resume("long", storage=long_run.storage)
    assert len(result.trials) == 6
    counts = [s for s, _ in _reads(statements, "FROM trials") if "count(" in s.lower()]
    assert counts, "resume counted no trials: the check of its trial folders did not run"
    assert all("WHERE trials.experiment_id" in s for s in counts), f"a count read every experiment's: {counts}"
