"""A data file tunesmith cannot read (not UTF-8, not Parquet though named .parquet, empty, cut short, malformed
quoting) is one clear error naming the file and the field or flag it came from, exit 2, no traceback, nothing
recorded: each used to be a UnicodeDecodeError or pyarrow's ArrowInvalid traceback, exit 1 (a new user's walk)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pytest
from _cli_input_setup import cli_quiet
from helpers import cli_in_folder

from tunesmith.errors import SpecError
from tunesmith.spec.task_config import DataConfig
from tunesmith.tasks.data import _cache, load_dataset, read_columns, read_header

ROWS = "city,x,y\nOslo,0.0,0\nMalmö,0.1,1\nBergen,0.2,0\nÅrhus,0.3,1\n" * 4
SPEC = """\
name: enc
objective: {metric: accuracy, direction: maximize}
task:
  estimator: sklearn.linear_model.LogisticRegression
  data: {path: DATA, target: y}
  cv: {kind: stratified, folds: 2}
space:
  logisticregression__C: {type: float, low: 0.01, high: 10, log: true}
budget: {trials: 1}
"""


@pytest.fixture(autouse=True)
def _no_cached_rows() -> None:
    _cache.clear()


def _latin1(folder: Path, name: str = "latin1.csv") -> Path:
    path = folder / name
    path.write_bytes(ROWS.encode("latin-1"))
    return path


def _refused(path: Path, field: str = "--data") -> str:
    with pytest.raises(SpecError) as e:
        read_columns(path, field)
    assert e.value.path == field
    assert path.name in e.value.message, e.value.message
    return e.value.message


def test_a_latin1_csv_names_the_line_the_byte_and_the_fix(tmp_path: Path) -> None:
    path = _latin1(tmp_path)
    message = _refused(path)
    assert "latin1.csv is not UTF-8 text: line 3 holds byte 0xf6" in message and "'ö'" in message
    assert "save the file as UTF-8" in message
    with pytest.raises(SpecError, match="not UTF-8 text") as e:  # the task's own data: named as task.data.path
        load_dataset(DataConfig(path=str(path), target="y"))
    assert e.value.path == "task.data.path"
    with pytest.raises(SpecError, match="not UTF-8 text"):
        read_header(path)


def test_utf16_and_binary_files_named_csv_say_what_they_are(tmp_path: Path) -> None:
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes(ROWS.encode("utf-16"))
    assert "is UTF-16 text" in _refused(utf16) and "iconv -f utf-16 -t utf-8" in _refused(utf16)
    binary = tmp_path / "zipped.csv"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)))
    assert "is not a text file (it holds NUL bytes" in _refused(binary)


def test_a_csv_cut_short_inside_quotes_or_quoted_wrongly_is_refused_with_its_line(tmp_path: Path) -> None:
    """Read leniently, a quote never closed swallowed the rest of the file into one field, silently."""
    cut = tmp_path / "cut.csv"
    cut.write_text('city,x,y\nOslo,0.1,0\n"Malm,0.2,1\nBergen,0.3,0\n')
    assert "cut.csv line 3: a quoted field that starts in this row is never closed" in _refused(cut)
    # a quote closed before its field ends (padded or aligned exports, backslash escapes) loads as it always did:
    # strict quoting refused these, and recorded experiments on such files could no longer resume or reproduce
    loose = tmp_path / "loose.csv"
    loose.write_text('city,x,y\n"Oslo" ,0.1,0\nBergen,0.3,0\n"Malm"x,0.2,1\n"a \\"b\\"",0.4,1\n')
    assert read_columns(loose, "--data")["city"] == ["Oslo", "Bergen", "Malmx", 'a \\b\\""']
    data = load_dataset(DataConfig(path=str(loose), target="y", features=["x"]))
    assert data.content_hash == "sha256:" + hashlib.sha256(loose.read_bytes()).hexdigest(), "the bytes, once"
    short = tmp_path / "short.csv"
    short.write_text("city,x,y\nOslo,0.1,0\nBerg")
    assert "short.csv line 3: 1 fields; the header has 3" in _refused(short)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty.csv is empty" in _refused(empty)


def test_a_file_named_parquet_that_is_not_parquet_empty_or_cut_short(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    csv_named_parquet = tmp_path / "s.parquet"
    csv_named_parquet.write_text(ROWS)
    message = _refused(csv_named_parquet)
    assert "s.parquet is not a Parquet file" in message and "a CSV file must be named .csv" in message
    with pytest.raises(SpecError, match="s.parquet is not a Parquet file"):
        read_header(csv_named_parquet, "--data")
    with pytest.raises(SpecError, match="s.parquet is not a Parquet file") as e:
        load_dataset(DataConfig(path=str(csv_named_parquet), target="y"))
    assert e.value.path == "task.data.path"
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    assert "empty.parquet is empty (0 bytes)" in _refused(empty)
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"x": [0.1, 0.2, 0.3], "y": [0, 1, 0]}), whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[:40])
    assert "cut.parquet is cut short or damaged" in _refused(cut)
    named_csv = tmp_path / "really_parquet.csv"
    named_csv.write_bytes(whole.read_bytes())
    assert "really_parquet.csv is a Parquet file, not CSV text; name it .parquet" in _refused(named_csv)


def _no_traceback(proc) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr.replace("error:", ""), proc.stderr


@pytest.mark.slow
def test_every_command_refuses_an_unreadable_file_with_exit_2_and_records_nothing(project) -> None:
    pytest.importorskip("pyarrow")
    good = project.root / "good.csv"
    good.write_text(ROWS, encoding="utf-8")
    _latin1(project.root, "new.csv")
    (project.root / "new.parquet").write_text(ROWS)
    _latin1(project.root, "latin1.csv")
    (project.root / "bad.yaml").write_text(SPEC.replace("DATA", "latin1.csv").replace("name: enc", "name: bad"))
    # run's refusal as a process of its own, validate's (the same spec read) in this process: test_cycle's
    # cli_in_folder, the CLI's own main, exit code and stderr, a start-up importing scikit-learn fewer
    here = functools.partial(cli_in_folder, project.root)
    for command, cli in (("run", project.cli), ("validate", here)):
        proc = cli(command, "bad.yaml")
        _no_traceback(proc)
        assert "task.data.path: latin1.csv is not UTF-8 text: line 3" in proc.stderr, proc.stderr
    assert not project.db.exists(), "nothing recorded"  # no store: the refusals came before any
    (project.root / "enc.yaml").write_text(SPEC.replace("DATA", "good.csv"))
    cli_quiet(project, "run", "enc.yaml", "-q")  # set-up, in this process: the commands refusing below are the test
    for n, (data, says) in enumerate((("new.csv", "--data: new.csv is not UTF-8 text"),
                                      ("new.parquet", "--data: new.parquet is not a Parquet file"))):
        # drift's and retune's refusals as processes, of one file each; cycle's in this process (it refuses an
        # unusable --data as a process of its own in test_drift_bad_input), a start-up importing scikit-learn fewer
        for k, command in enumerate((("drift", "enc"), ("retune", "enc"), ("cycle", "enc.yaml"))):
            cli = project.cli if k < 2 and n == k else here
            proc = cli(*command, "--data", data)
            _no_traceback(proc)
            assert says in proc.stderr, (command, data, proc.stderr)
    assert project.show("enc").get("retunes") in (None, [])
    assert "retune" not in cli_quiet(project, "ls", "--json")


def test_a_csv_without_a_header_row_is_said_to_have_none(tmp_path: Path) -> None:
    """Its first row of values read as the header: "column '0' appears twice in the header", true but no help."""
    rows = "2023-08-07,0,8.59,0,114.73\n2023-10-28,5,5.1,0,108.01\n2023-11-26,6,8.53,1,132.34\n"
    twice = tmp_path / "nohdr.csv"
    twice.write_text(rows)
    assert _refused(twice) == ("nohdr.csv: column '0' appears twice in the header; its first row holds no name "
                               "(no letter in any field): the file seems to have no header row; add one naming the "
                               "columns")
    once = tmp_path / "nohdr1.csv"
    once.write_text(rows.replace(",0,8.59,0,", ",0,8.59,1,", 1))
    with pytest.raises(SpecError) as e:
        load_dataset(DataConfig(path=str(once), target="y"))
    assert (e.value.path, e.value.message) == ("task.data.target", (
        "no column 'y' in nohdr1.csv; columns: 2023-08-07, 0, 8.59, 1, 114.73; its first row holds no name (no "
        "letter in any field): the file seems to have no header row; add one naming the columns"))
