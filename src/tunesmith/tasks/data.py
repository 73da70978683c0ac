"""Loading a task's rows: CSV (the csv module + numpy), Parquet (pyarrow, when installed), bundled scikit-learn
datasets and seeded generators; and the dataset fingerprint recorded with an experiment.

Rows with a time column are sorted by it (stably) at load, so every later step (holdout, folds) can rely on
row order being time order. Group and time columns are not features unless ``data.features`` names them; a time
column named there is fed as the numbers that order the rows (a date's POSIX seconds), in new rows too; as text
codes of its dates where ``data.time_as`` says ``codes`` (experiments recorded before, fed so).
String feature columns are encoded as integer codes of their sorted distinct values (missing: NaN). The codes
use no label, so they leak nothing about the target; put an encoder in the pipeline for anything smarter.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from tunesmith.digests import HashingReader, bytes_digest
from tunesmith.errors import SpecError
from tunesmith.spec.task_config import DataConfig, GenerateConfig
from tunesmith.suggestions import closest, listed

_MISSING = {"", "na", "nan", "null", "none", "n/a"}
_CACHE_SIZE = 4


def is_missing(value: Any) -> bool:
    """Whether a cell as read (CSV text, a Parquet value) is a missing value: None, NaN, or a text such as ``NA``,
    ``n/a`` or an empty cell."""
    return value is None or (isinstance(value, str) and value.strip().lower() in _MISSING) or \
        (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Feature matrix, target, optional groups and time, in row order (time order when there is a time)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    time: np.ndarray | None
    feature_names: tuple[str, ...]
    column_types: dict[str, str]
    content_hash: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the rows' columns made loading notice, for `validate` and `run` to say
    # time-ordered rows: each row's position in the file (None: the file's order), to read a row back as written
    file_rows: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.X[idx], self.y[idx], None if self.groups is None else self.groups[idx],
                       None if self.time is None else self.time[idx], self.feature_names, self.column_types,
                       self.content_hash, self.source, warnings=self.warnings)


_cache: dict[tuple[Any, ...], Dataset] = {}


def load_dataset(data: DataConfig, base_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The rows ``data`` describes (cached per process while the file is unchanged).

    Raises:
        SpecError: at ``task.data.*``: a missing file, one that is not UTF-8 text (CSV), not Parquet or malformed,
            an unknown column, an unreadable value, no pyarrow.
    """
    key: tuple[Any, ...] = (data.model_dump_json(), str(base_dir))
    if data.path is not None:
        path = _resolve(data.path, base_dir)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SpecError("task.data.path", f"file {str(path)!r} does not exist") from None
        key += (st.st_mtime_ns, st.st_size)
    if key in _cache:
        return _cache[key]
    if data.path is not None:
        ds = _load_file(data, _resolve(data.path, base_dir))
    elif data.sklearn is not None:
        ds = _load_sklearn(data.sklearn)
    else:
        assert data.generate is not None
        ds = generate(data.generate)
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = ds
    return ds


def _resolve(path: str, base_dir: str | os.PathLike[str] | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(base_dir or ".") / p


# -- files ---------------------------------------------------------------------------------------------------------

def _load_file(data: DataConfig, path: Path) -> Dataset:
    # one read: the bytes hashed are the bytes parsed (two opens could hash one file and parse its replacement). The
    # hash is of the file's bytes, as it always was, so the fingerprints recorded before still match.
    if path.suffix.lower() == ".csv":
        with path.open("rb") as f:
            hashing = HashingReader(f)
            try:
                columns = _read_csv(path, io.TextIOWrapper(io.BufferedReader(hashing), encoding="utf-8-sig",
                                                           newline=""))
            except _QuotedInPart:  # read again as before strict quoting (rare: a second open of the file)
                columns = _read_csv(path, strict=False)
            digest = hashing.digest()
    else:  # Parquet is read by seeking: its bytes are held once, as before
        raw = path.read_bytes()
        digest = bytes_digest(raw)
        columns = _read_parquet(path, raw)
        del raw
    names = list(columns)
    for field_name in ("target", "groups", "time"):
        col = getattr(data, field_name)
        if col is not None and col not in columns:
            raise SpecError(f"task.data.{field_name}", _no_column(col, names, path))
    if data.features is not None:
        for i, col in enumerate(data.features):
            if col not in columns:
                raise SpecError(f"task.data.features.{i}", _no_column(col, names, path))
        features = list(data.features)
    else:
        features = [c for c in names if c not in (data.target, data.groups, data.time)]
    if not features:
        raise SpecError("task.data", f"{path.name} has no feature columns besides target, groups and time")
    assert data.target is not None
    n = len(columns[data.target])
    types: dict[str, str] = {}
    X = np.empty((n, len(features)), dtype=float)
    time = None
    if data.time is not None:
        time, types[data.time] = _time_column(columns[data.time], data.time)
    for j, col in enumerate(features):
        # the time column as a feature is its numbers (a date's POSIX seconds), as it orders the rows: text codes of
        # its dates would give every date new rows bring (every later one) a missing value. An experiment recorded
        # before says ``time_as: codes``, and is fed the codes its trials were fit on (its type stays the time's).
        if time is not None and col == data.time:
            X[:, j] = _feature_column(columns[col])[0] if data.time_as_codes else time
        else:
            X[:, j], types[col] = _feature_column(columns[col])
        # as new rows are (drift, retune, cycle): an inf that reached only the holdout crashed the run's last refit.
        # Read off the parsed column (a text column's codes are finite), not by parsing every cell once more.
        if types[col] != "string" and (rows := np.flatnonzero(np.isinf(X[:, j]))).size:
            raise SpecError("task.data.path", _infinite_values(path.name, col, rows.size, int(rows[0]),
                                                               columns[col][rows[0]]))
    y, types[data.target] = _target_column(columns[data.target], data.target)
    groups = None
    if data.groups is not None:
        groups = np.asarray([str(v) for v in columns[data.groups]], dtype=object)
        types[data.groups] = _kind(columns[data.groups])
    said = () if data.features is not None else identifier_like_columns(X, features, types, path.name)
    said += text_column_warnings(columns, features, types, path.name)
    ds = Dataset(X, y, groups, time, tuple(features), types, digest, str(path), warnings=said)
    return _time_sorted(ds)


IDENTIFIER_SHARE = 0.95
IDENTIFIER_MIN_ROWS = 20
"""A feature column of whole numbers or text holding a distinct value on at least IDENTIFIER_SHARE of the rows, in a
file of at least IDENTIFIER_MIN_ROWS rows, looks like an identifier (a patient or order number, a date): taken as a
feature because ``data.features`` was not given, it tells a model nothing that holds for new rows, and every batch
of new ids is drift. A tiny file's columns are all nearly distinct, so it is not judged."""


def identifier_like_columns(X: np.ndarray, features: list[str], types: Mapping[str, str],
                            name: str) -> tuple[str, ...]:
    """A warning for each column of ``features`` (``X``'s, as loaded from file ``name``) that looks like an
    identifier (:data:`IDENTIFIER_SHARE`). A text column's codes are distinct where its values are."""
    n = X.shape[0]
    if n < IDENTIFIER_MIN_ROWS:
        return ()
    said = []
    for j, col in enumerate(features):
        if types[col] not in ("int", "string"):
            continue
        values = X[:, j]
        distinct = len(np.unique(values[~np.isnan(values)]))
        if distinct >= IDENTIFIER_SHARE * n:
            what = "whole numbers" if types[col] == "int" else "text values"
            said.append(f"task.data.features: column {col!r} of {name} looks like an identifier ({distinct} distinct "
                        f"{what} over {n} rows) and is a feature, as task.data.features is not given: a model learns "
                        "nothing from it that holds for new rows, and drift flags it on every batch; list the "
                        f"feature columns in task.data.features, or drop the column from {name}")
    return tuple(said)


MOSTLY_SHARE = 0.9
"""A text feature column whose present cells are numbers (or ISO dates) on at least MOSTLY_SHARE of them is a
column of numbers (of dates) that a few stray cells (``?``, ``-``) or its dates made text: said, since its text codes
sort ``9.5`` after ``10.2`` and match no value new rows bring that the file lacks."""
_STRAY_SHOWN = 3


def text_column_warnings(columns: Mapping[str, list[Any]], features: list[str], types: Mapping[str, str],
                         name: str) -> tuple[str, ...]:
    """A warning for each text column of ``features`` (``columns``, as read from file ``name``) that holds numbers
    but for a few cells, naming those cells, or holds dates (:data:`MOSTLY_SHARE`). A column of dates that is the
    task's time column is no text column: it is fed as its timestamps."""
    said = []
    for col in features:
        if types[col] != "string":
            continue
        distinct = _distinct_present(columns[col])
        present = sum(rows for _, _, rows in distinct)
        strays = [(v, i, rows) for v, i, rows in distinct if _number(v) is None]
        stray_rows = sum(rows for _, _, rows in strays)
        if stray_rows <= (1 - MOSTLY_SHARE) * present:
            shown = ", ".join(f"{str(v)!r} (row {i + 1})" for v, i, _ in strays[:_STRAY_SHOWN])
            more = f" and {len(strays) - _STRAY_SHOWN} other value(s)" if len(strays) > _STRAY_SHOWN else ""
            said.append(f"task.data.features: column {col!r} of {name} is read as text because of {stray_rows} "
                        f"value(s) that are not numbers: {shown}{more}: its numbers are encoded as text levels "
                        "(sorted as text, 9.5 after 10.2), and a number new rows bring that the file lacks is a "
                        "missing value for the model; correct those cells, or empty them (a missing value)")
            continue
        dates = sum(rows for v, _, rows in distinct if date_seconds(v) is not None)
        if present and dates >= MOSTLY_SHARE * present:
            said.append(f"task.data.features: column {col!r} of {name} holds dates; as a feature it is encoded as "
                        "text levels, which the dates of new rows never match (each a missing value for the model): "
                        "name it task.data.time (the rows are then time-ordered, and a time column listed in "
                        "task.data.features is fed as its timestamp), derive numeric features from it, or leave it "
                        "out of task.data.features")
    return tuple(said)


def _distinct_present(values: list[Any]) -> list[tuple[Any, int, int]]:
    """Each distinct present (not missing) cell of ``values`` as (the cell, its first row, how many rows hold it), by
    first row. Parsed once per value, not once per row: a column has far fewer values than rows, and this runs on
    every load, in every worker."""
    seen: dict[Any, list[Any]] = {}
    for i, v in enumerate(values):
        key = v if isinstance(v, str) else (type(v), str(v))  # (a Parquet cell: a list is no dict key, its text is)
        entry = seen.get(key)
        if entry is None:
            seen[key] = [v, i, 1]
        else:
            entry[2] += 1
    return [(v, i, rows) for v, i, rows in seen.values() if not is_missing(v)]


def _no_column(col: str, names: list[str], path: Path) -> str:
    close = closest(col, names)
    hint = f"did you mean {close!r}? " if close else ""
    return f"no column {col!r} in {path.name}; {hint}columns: {listed(names)}{_no_header_row(names)}"


def _no_header_row(header: list[str]) -> str:
    """``; ...seems to have no header row...`` where no field of a CSV's header holds a letter (``2023-08-07``, ``0``,
    ``8.59``: a first row of values, read as the column names); else ``""``."""
    if any(any(ch.isalpha() for ch in name) for name in header):
        return ""
    return ("; its first row holds no name (no letter in any field): the file seems to have no header row; add one "
            "naming the columns")


class _QuotedInPart(Exception):
    """A quote closed before its field ends (`"x" ,1`, `"a \\"b\\""`, `"x"y`): files that loaded before strict
    quoting, read again without it (the text after the quote joins the field, as it always did)."""


def _read_csv(path: Path, text: IO[str] | None = None, strict: bool = True) -> dict[str, list[Any]]:
    """``path``'s columns; ``text``: the file opened as text already (UTF-8, a BOM dropped, newlines untranslated).

    Strict quoting: a quoted field never closed (a file cut short inside one, a stray quote) is refused, not read
    as one field holding the rest of the file. Any other quoting fault reads the file again with ``strict``
    False, as before; given ``text``, it raises :class:`_QuotedInPart` for the caller to do so.
    """
    row_start = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") if text is None else text as f:
            reader = csv.reader(f, strict=strict)
            try:
                header = next(reader)
            except StopIteration:
                raise SpecError("task.data.path", f"{path.name} is empty; it needs a header row and data "
                                "rows") from None
            header = [h.strip() for h in header]
            _refuse_other_separator(header, path)
            dup = next((h for h in header if header.count(h) > 1), None)
            if dup is not None:
                raise SpecError("task.data.path", f"{path.name}: column {dup!r} appears twice in the header"
                                                  f"{_no_header_row(header)}")
            cols: list[list[str]] = [[] for _ in header]
            row_start = reader.line_num + 1
            for row in reader:
                lineno, row_start = row_start, reader.line_num + 1
                if not row:
                    continue
                if len(row) != len(header):
                    raise SpecError("task.data.path", f"{path.name} line {lineno}: {len(row)} fields; the header "
                                    f"has {len(header)}")
                for c, v in zip(cols, row, strict=True):
                    c.append(v.strip())
    except UnicodeDecodeError:
        raise SpecError("task.data.path", not_utf8(path)) from None
    except csv.Error as e:
        if strict and "unexpected end of data" not in str(e):
            if text is None:  # opened here: read again, as before strict quoting
                return _read_csv(path, strict=False)
            raise _QuotedInPart from None
        raise SpecError("task.data.path", _malformed_csv(path, row_start, e)) from None
    if not cols or not cols[0]:
        raise SpecError("task.data.path", f"{path.name} has a header but no data rows")
    return dict(zip(header, cols, strict=True))


def _refuse_other_separator(header: list[str], path: Path) -> None:
    """A header read as one column that holds ``;`` or a tab: a file exported with another separator (a spreadsheet
    in a locale whose decimal mark is a comma writes ``;``), refused with the conversion, not reported later as a
    file lacking every column but one named ``a;b;c``. (There is no separator option: task.data reads commas.)

    Raises:
        SpecError: at ``task.data.path`` (a caller's own field replaces it).
    """
    if len(header) != 1:
        return
    sep = max((";", "\t"), key=header[0].count)
    if sep not in header[0]:
        return
    said, written = ("';'", ";") if sep == ";" else ("a tab", "\\t")
    convert = f"csv.writer(sys.stdout).writerows(csv.reader(sys.stdin, delimiter='{written}'))"
    raise SpecError("task.data.path", f"{path.name} seems to use {said} between fields (its header reads as one "
                    f"column, {header[0][:60]!r}); tunesmith reads comma-separated CSV: convert it, e.g. python -c "
                    f"\"import csv, sys; {convert}\" < {path.name} > {path.stem}_commas.csv")


def not_utf8(path: Path) -> str:
    """Why ``path`` cannot be read as text: what the file is instead (Parquet, UTF-16, binary), or the first line
    holding a byte that is not UTF-8; and the fix.

    Looked for only once decoding failed (the file read again, a line at a time): the reader that failed was
    reading blocks, not lines, and knows no line number."""
    fix = (f"save the file as UTF-8 (a spreadsheet's \"CSV UTF-8\", or iconv -f cp1252 -t utf-8 {path.name} > "
           f"utf8-{path.name})")
    with path.open("rb") as f:
        head = f.read(4096)
        if head.startswith(b"PAR1"):
            return f"{path.name} is a Parquet file, not CSV text; name it .parquet"
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return f"{path.name} is UTF-16 text; tunesmith reads data files as UTF-8: {fix.replace('cp1252', 'utf-16')}"
        if b"\0" in head:
            return (f"{path.name} is not a text file (it holds NUL bytes: compressed, or another format?); a CSV "
                    "file is UTF-8 text, with a header row and data rows")
        f.seek(0)
        for lineno, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                byte = line[e.start]
                latin = bytes([byte]).decode("cp1252", errors="replace")
                readable = latin.isprintable() and latin != "\ufffd"
                seen = f", which Latin-1/Windows-1252 reads as {latin!r}" if readable else ""
                return (f"{path.name} is not UTF-8 text: line {lineno} holds byte 0x{byte:02x}{seen}; tunesmith "
                        f"reads data files as UTF-8: {fix}")
    return f"{path.name} is not UTF-8 text; tunesmith reads data files as UTF-8: {fix}"  # (changed since it failed)


def _malformed_csv(path: Path, line: int, error: csv.Error) -> str:
    if "unexpected end of data" in str(error):
        return (f"{path.name} line {line}: a quoted field that starts in this row is never closed (a file cut "
                "short, or a stray '\"'); close the quote or remove it")
    return f"{path.name} line {line}: malformed CSV ({error}); a field in quotes must be quoted whole (\"a, b\")"


def _read_parquet(path: Path, raw: bytes | None = None) -> dict[str, list[Any]]:
    pq, arrow_error = _pyarrow_parquet("task.data.path")
    try:
        table = pq.read_table(path if raw is None else io.BytesIO(raw))
    except (arrow_error, OSError) as e:  # ArrowInvalid: not Parquet; OSError (ArrowIOError): cut short
        raise SpecError("task.data.path", not_parquet(path, e)) from None
    return {name: ["" if v is None else v for v in table.column(name).to_pylist()] for name in table.column_names}


def _pyarrow_parquet(field: str) -> tuple[Any, type[Exception]]:
    """pyarrow's Parquet module and the base of its errors (imported here only: pyarrow is optional)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SpecError(field, "reading Parquet needs pyarrow: pip install pyarrow (or convert the file to "
                        "CSV)") from None
    return pq, pa.ArrowException


def not_parquet(path: Path, error: Exception) -> str:
    """Why pyarrow could not read ``path`` (``error``: what it raised): empty, not Parquet at all (a CSV named
    .parquet), or damaged."""
    with path.open("rb") as f:
        head = f.read(4)
        size = f.seek(0, os.SEEK_END)
        if size >= 4:
            f.seek(-4, os.SEEK_END)
        tail = f.read(4)
    if size == 0:
        return f"{path.name} is empty (0 bytes); a Parquet file holds its columns and rows"
    if head == b"PAR1" and tail != b"PAR1":
        return (f"{path.name} is cut short or damaged: it starts as a Parquet file but lacks Parquet's end marker "
                "'PAR1'; copy or write it again")
    if head != b"PAR1" or tail != b"PAR1":
        text = all(32 <= b < 127 or b in b"\t\r\n" for b in head.removeprefix(b"\xef\xbb\xbf"))
        hint = "; it looks like text: a CSV file must be named .csv" if text else ""
        return f"{path.name} is not a Parquet file (no Parquet marker 'PAR1' at its start and end){hint}"
    return f"{path.name} is not a readable Parquet file (damaged or cut short?): {error}"


def _number(v: Any) -> float | None:
    """``v`` as a float; NaN for a missing value; None when it is not a number."""
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    if isinstance(v, str):
        if v.lower() in _MISSING:
            return math.nan
        try:
            return float(v)
        except ValueError:
            return None
    return None


def refuse_infinite_values(columns: Mapping[str, list[Any]], features: list[str], name: str,
                           field: str = "--data") -> None:
    """Rows (``columns``, as read from file ``name``: new rows, or the task's own as loaded) with an infinite value
    (``inf``, ``-inf``, ``1e999``) in a numeric feature column: refused, naming the column, the count and the first
    row, before a drift check skips its champion on scikit-learn's "Input X contains infinity", a re-tune records
    an experiment whose every trial fails on it, or a run's holdout refit crashes on one. No pipeline takes one, an
    imputer included (it fills NaN only). A text column's ``inf`` is one of its categories, not a number.

    Raises:
        SpecError: at ``field``.
    """
    for col in (c for c in features if c in columns):
        numbers = [_number(v) for v in columns[col]]
        if any(x is None for x in numbers):
            continue
        rows = [i for i, x in enumerate(numbers) if x is not None and math.isinf(x)]
        if rows:
            raise SpecError(field, _infinite_values(name, col, len(rows), rows[0], columns[col][rows[0]]))


def _infinite_values(name: str, col: str, count: int, first: int, raw: Any) -> str:
    return (f"{name} column {col!r} holds {count} infinite value(s) (row {first + 1}: {raw!r}), which no model "
            "takes, nor an imputer; replace them with numbers (or empty cells, when the pipeline imputes) or drop "
            "those rows")


def _kind(values: list[Any]) -> str:
    return _kind_of_numbers([_number(v) for v in values])


def _kind_of_numbers(nums: list[float | None]) -> str:
    """A column's kind from its cells as :func:`_number` read them (None: not a number)."""
    if any(x is None for x in nums):
        return "string"
    finite = [x for x in nums if x is not None and not math.isnan(x)]
    return "int" if finite and all(x.is_integer() for x in finite) else "float"


def _feature_column(values: list[Any]) -> tuple[np.ndarray, str]:
    nums = [_number(v) for v in values]
    if all(x is not None for x in nums):
        return np.asarray(nums, dtype=float), _kind_of_numbers(nums)
    present = sorted({str(v) for v in values if not (isinstance(v, str) and v.lower() in _MISSING)})
    code = {v: float(i) for i, v in enumerate(present)}
    return np.asarray([code.get(str(v), math.nan) for v in values], dtype=float), "string"


def feature_matrix(columns: Mapping[str, list[Any]], features: list[str]) -> np.ndarray:
    """The ``features`` of ``columns`` (a file's, as read) encoded as :func:`load_dataset` encodes a task's own
    data: numbers as read, a string column as codes of its sorted values, a missing value as NaN."""
    return np.column_stack([_feature_column(columns[col])[0] for col in features]) if features else \
        np.empty((0, 0))


def _target_column(values: list[Any], name: str) -> tuple[np.ndarray, str]:
    missing = [i for i, v in enumerate(values) if isinstance(v, str) and v.lower() in _MISSING]
    if missing:
        raise SpecError("task.data.target", f"column {name!r} has {len(missing)} empty value(s) ({_rows(missing)}); "
                                            "drop those rows or fill them (a label cannot be imputed)")
    kind = _kind(values)
    if kind == "string":
        return np.asarray([str(v) for v in values], dtype=object), kind
    arr = np.asarray([_number(v) for v in values], dtype=float)
    return (arr.astype(np.int64), kind) if kind == "int" else (arr, kind)


def _rows(indices: list[int], shown: int = 3) -> str:
    """``row 4``, ``rows 4 and 51``, ``rows 4, 9, 10 and 2 more``: the first ``shown`` of ``indices`` (0-based
    positions among the data rows) as the row numbers every data message uses."""
    numbers = [str(i + 1) for i in indices[:shown]]
    if len(indices) == 1:
        return f"row {numbers[0]}"
    if len(indices) > shown:
        return f"rows {', '.join(numbers)} and {len(indices) - shown} more"
    return f"rows {', '.join(numbers[:-1])} and {numbers[-1]}"


def _time_column(values: list[Any], name: str) -> tuple[np.ndarray, str]:
    """The time column as numbers: as read when every cell is one (``float``), else each cell's POSIX seconds
    (:func:`date_seconds`, ``datetime``): what rows are sorted by, and what the model is fed when ``features``
    lists the column.

    Raises:
        SpecError: at ``task.data.time``: a missing cell, or one neither a number nor an ISO date.
    """
    nums = [_number(v) for v in values]
    if all(x is not None and not math.isnan(x) for x in nums):
        return np.asarray(nums, dtype=float), "float"
    out = []
    for i, v in enumerate(values):
        if is_missing(v):
            raise SpecError("task.data.time", f"column {name!r} row {i + 1} is empty (a missing value); the time "
                                              "column orders the rows, so no cell of it may be missing: fill in "
                                              "its date or drop the row")
        seconds = date_seconds(v)
        if seconds is None:
            raise SpecError("task.data.time", f"column {name!r} row {i + 1}: {v!r} is neither a number nor an ISO "
                                              "date (2024-01-31 or 2024-01-31T12:00:00)")
        out.append(seconds)
    return np.asarray(out, dtype=float), "datetime"


def date_seconds(value: Any) -> float | None:
    """``value`` (an ISO date text, or a Parquet date or datetime) as POSIX seconds; None when it is none of those.

    A date or time without a zone is read as UTC, not as this machine's local time: the same cell is the same
    number on every machine that refits or scores the model (and no DST hour repeats)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def _time_sorted(ds: Dataset) -> Dataset:
    if ds.time is None:
        return ds
    order = np.argsort(ds.time, kind="stable")
    return replace(ds.subset(order), file_rows=order)


# -- bundled and generated -------------------------------------------------------------------------------------------

def _load_sklearn(name: str) -> Dataset:
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=float)
    y = np.asarray(bunch.target)
    names = tuple(str(n) for n in getattr(bunch, "feature_names", [f"x{i}" for i in range(X.shape[1])]))
    return Dataset(X, y, None, None, names, {n: "float" for n in names} | {"target": _kind(list(y[:50]))},
                   _array_hash(X, y), f"sklearn:{name}")


def generate(cfg: GenerateConfig) -> Dataset:
    """A seeded synthetic dataset (see :class:`GenerateConfig` for the kinds)."""
    rng = np.random.default_rng(cfg.seed)
    n, d = cfg.n_rows, cfg.n_features
    groups = time = None
    if cfg.kind == "classification":
        from sklearn.datasets import make_classification

        X, y = make_classification(n_samples=n, n_features=d, n_informative=min(5, d), n_redundant=0,
                                   n_repeated=0, random_state=cfg.seed)
    elif cfg.kind == "regression":
        from sklearn.datasets import make_regression

        X, y = make_regression(n_samples=n, n_features=d, n_informative=min(5, d), noise=10.0, random_state=cfg.seed)
    elif cfg.kind == "noise":
        X = rng.normal(size=(n, d))
        y = rng.integers(0, 2, size=n)
    elif cfg.kind == "groups":
        # Each group has its own random label and its own region of feature space: the label is predictable only
        # by recognising a group already seen in training.
        g = rng.integers(0, cfg.n_groups, size=n)
        labels = rng.integers(0, 2, size=cfg.n_groups)
        centers = rng.normal(scale=3.0, size=(cfg.n_groups, d))
        X = centers[g] + rng.normal(scale=0.3, size=(n, d))
        y = labels[g]
        groups = np.asarray([f"g{v}" for v in g], dtype=object)
    else:  # random_walk: target and features are independent random walks (a spurious regression)
        X = np.cumsum(rng.normal(size=(n, d)), axis=0)
        y = np.cumsum(rng.normal(size=n))
        time = np.arange(n, dtype=float)
    names = tuple(f"x{i}" for i in range(d))
    return Dataset(np.asarray(X, dtype=float), np.asarray(y), groups, time, names, {k: "float" for k in names},
                   _array_hash(np.asarray(X, dtype=float), np.asarray(y)), f"generate:{cfg.kind}")


def _array_hash(X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(y).astype(str).astype("U").tobytes())
    return f"sha256:{h.hexdigest()}"


# -- fingerprint ---------------------------------------------------------------------------------------------------

def dataset_fingerprint(data: DataConfig, base_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A JSON-able description of the data: content hash, shape, column types, source."""
    ds = load_dataset(data, base_dir)
    return {
        "content_hash": ds.content_hash,
        "n_rows": ds.n_rows,
        "n_cols": int(ds.X.shape[1]),
        "columns": dict(ds.column_types),
        "source": data.path if data.path is not None else ds.source,
        "target": data.target,
        "groups": data.groups,
        "time": data.time,
    }


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (empty when the data is the same)."""
    out = []
    if old.get("content_hash") != new.get("content_hash"):
        out.append(f"content hash {str(old.get('content_hash'))[:19]}... -> {str(new.get('content_hash'))[:19]}...")
    for key in ("n_rows", "n_cols", "source", "target", "groups", "time"):
        if old.get(key) != new.get(key):
            out.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    old_cols, new_cols = old.get("columns") or {}, new.get("columns") or {}
    if old_cols != new_cols:
        added = sorted(set(new_cols) - set(old_cols))
        removed = sorted(set(old_cols) - set(new_cols))
        retyped = sorted(c for c in set(old_cols) & set(new_cols) if old_cols[c] != new_cols[c])
        for label, cols in (("added", added), ("removed", removed), ("retyped", retyped)):
            if cols:
                out.append(f"columns {label}: {', '.join(cols)}")
    return out


# -- other rows, encoded like the task's ------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RowsLike:
    """Rows of another file with a task's feature columns, encoded as the task's data encodes them.

    ``X`` follows the reference's feature order; a string column's codes are the reference's (its sorted
    values), so a model fit on the reference reads them right; a value the reference never had is missing.
    ``y`` is None when the file has no label column. ``raw`` keeps every column as read (for drift tests).
    """

    X: np.ndarray
    y: np.ndarray | None
    raw: dict[str, list[Any]]
    target: str
    path: str


def not_a_file(path: str | os.PathLike[str]) -> str:
    """Why ``path`` cannot be read as a data file: it is empty (``--data "$NEW_ROWS"`` with the variable unset, which
    would otherwise read as the working folder), a folder, or nothing is there."""
    if not os.fspath(path):
        return "an empty value (an unset variable?); give the CSV or Parquet file"
    if os.path.isdir(path):
        return f"{str(path)!r} is a folder, not a file; give the CSV or Parquet file in it"
    return f"file {str(path)!r} does not exist"


def _data_file(path: str | os.PathLike[str], field: str) -> Path:
    """``path``, a file that is there.

    Raises:
        SpecError: at ``field``: :func:`not_a_file` (an empty value is said as such, not as ``.``, a folder).
    """
    if not os.fspath(path):  # Path("") is ".", the working folder
        raise SpecError(field, not_a_file(path))
    p = Path(path)
    if not p.is_file():
        raise SpecError(field, not_a_file(p))
    return p


def read_columns(path: str | os.PathLike[str], field: str = "task.data.path") -> dict[str, list[Any]]:
    """Every column of a CSV or Parquet file, as read (strings from CSV, typed values from Parquet).

    Raises:
        SpecError: at ``field``: no such file, not CSV/Parquet, not UTF-8 text (CSV), a malformed file, no pyarrow
            for Parquet.
    """
    p = _data_file(path, field)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise SpecError(field, f"must name a .csv or .parquet file; got {str(p)!r}")
    try:
        return _read_csv(p) if suffix == ".csv" else _read_parquet(p)
    except SpecError as e:
        raise SpecError(field, e.message) from None


def read_header(path: str | os.PathLike[str], field: str = "task.data.path") -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows.

    Raises:
        SpecError: at ``field``: no such file, an empty CSV or one not UTF-8, a file that is not Parquet, no
            pyarrow for Parquet.
    """
    p = _data_file(path, field)
    if p.suffix.lower() != ".csv":
        pq, arrow_error = _pyarrow_parquet(field)
        try:
            return list(pq.read_schema(p).names)
        except (arrow_error, OSError) as e:
            raise SpecError(field, not_parquet(p, e)) from None
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)  # (an unclosed quote in it is found where the rows are read)
    except UnicodeDecodeError:
        raise SpecError(field, not_utf8(p)) from None
    if header is None:
        raise SpecError(field, f"{p.name} is empty; it needs a header row and data rows")
    header = [h.strip() for h in header]
    try:
        _refuse_other_separator(header, p)
    except SpecError as e:
        raise SpecError(field, e.message) from None
    return header


def reference_columns(data: DataConfig, base_dir: str | os.PathLike[str] | None = None) -> dict[str, list[Any]]:
    """The task's own rows as raw columns (features and target by name), whatever their source."""
    if data.path is not None:
        return read_columns(_resolve(data.path, base_dir))
    ds = load_dataset(data, base_dir)
    cols: dict[str, list[Any]] = {n: ds.X[:, j].tolist() for j, n in enumerate(ds.feature_names)}
    cols["target"] = ds.y.tolist()
    return cols


def rows_like(data: DataConfig, base_dir: str | os.PathLike[str] | None, path: str | os.PathLike[str],
              field: str = "--data", columns: Mapping[str, list[Any]] | None = None) -> RowsLike:
    """Rows of the file at ``path`` encoded like the task's data (see :class:`RowsLike`); ``columns``: the file's
    columns as the caller already read them (:func:`read_columns`), None: read here.

    Raises:
        SpecError: at ``field``: the file is missing or unreadable, lacks a feature column, or has a value that
            is not a number in a numeric column.
    """
    reference = load_dataset(data, base_dir)
    raw = dict(columns) if columns is not None else read_columns(path, field)
    name = Path(path).name
    missing = [c for c in reference.feature_names if c not in raw]
    if missing:
        raise SpecError(field, f"{name} lacks the experiment's feature column(s) {listed(missing, 10)}; "
                               f"its columns: {listed(raw)}")
    target = data.target or "target"
    types = reference.column_types
    coded = {c for c in reference.feature_names  # text codes: a text column, and dates fed so (``time_as: codes``)
             if types.get(c) == "string" or (c == data.time and data.time_as_codes and types.get(c) == "datetime")}
    ref_raw = reference_columns(data, base_dir) if coded else {}
    n = len(next(iter(raw.values())))
    X = np.empty((n, len(reference.feature_names)), dtype=float)
    for j, col in enumerate(reference.feature_names):
        if col in coded:
            present = sorted({str(v) for v in ref_raw[col] if not (isinstance(v, str) and v.lower() in _MISSING)})
            code = {v: float(i) for i, v in enumerate(present)}
            X[:, j] = [code.get(str(v), math.nan) for v in raw[col]]
            continue
        if reference.column_types.get(col) == "datetime":  # the time column as a feature: POSIX seconds
            X[:, j] = _dates_like(raw[col], col, name, field)
            continue
        nums = [_number(v) for v in raw[col]]
        bad = next((i for i, x in enumerate(nums) if x is None), None)
        if bad is not None:
            raise SpecError(field, f"{name} column {col!r} row {bad + 1}: {raw[col][bad]!r} is not a number, as "
                                   "it is in the experiment's data")
        X[:, j] = np.asarray(nums, dtype=float)
    y = None
    if target in raw:
        try:
            y, _ = _target_column(raw[target], target)
        except SpecError as e:
            raise SpecError(field, e.message) from None
        if reference.y.dtype.kind in "iu" and y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
    return RowsLike(X, y, raw, target, str(path))


def _dates_like(values: list[Any], col: str, name: str, field: str) -> np.ndarray:
    """New rows' cells of a date column the task feeds its model (its time column, listed in ``features``) as
    POSIX seconds, as the task's own are (:func:`date_seconds`); a missing cell is NaN, as any feature's.

    Raises:
        SpecError: at ``field``: a cell that is not an ISO date.
    """
    out = np.empty(len(values), dtype=float)
    for i, v in enumerate(values):
        seconds = math.nan if is_missing(v) else date_seconds(v)
        if seconds is None:
            raise SpecError(field, f"{name} column {col!r} row {i + 1}: {v!r} is not an ISO date (2024-01-31 or "
                                   "2024-01-31T12:00:00), as it is in the experiment's data")
        out[i] = seconds
    return out
