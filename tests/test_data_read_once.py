"""A task's data file is read once per load: the bytes hashed for its fingerprint are the bytes parsed (it was opened
twice, to hash and to parse, so a file replaced in between was recorded under the other's hash). The fingerprint is
still the SHA-256 of the file's bytes: fingerprints recorded before match the same file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunesmith.spec.task_config import DataConfig
from tunesmith.tasks.data import _cache, dataset_fingerprint, fingerprint_changes, load_dataset

# A BOM, CRLF line ends, a quoted field across lines, a blank line: what a text reader must not change in the hash
CSV = "\ufeffa,b,label\r\n1.5,x,0\r\n2.5,\"y\r\nz\",1\r\n3.5,x,0\r\n\r\n4.5,w,1\r\n".encode()
# recorded for CSV by the code before this change (two opens: Path.read_bytes, then the CSV reader)
RECORDED = {"content_hash": "sha256:cfad33d378d906e00df37c6b4030fba7550ad68713da9704e2279d6362b5f428", "n_rows": 4,
            "n_cols": 2, "columns": {"a": "float", "b": "string", "label": "int"}, "target": "label",
            "groups": None, "time": None}


@pytest.fixture(autouse=True)
def _no_cached_rows() -> None:
    _cache.clear()  # a load cached by an earlier test of the same file would open nothing


def _opens(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    opened: list[str] = []
    real = Path.open

    def counting(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            opened.append(str(args[0] if args else kwargs.get("mode", "r")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting)
    return opened


def test_a_csv_is_opened_once_and_an_old_fingerprint_still_matches(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    opened = _opens(monkeypatch, path)
    data = DataConfig(path=str(path), target="label")
    fingerprint = dataset_fingerprint(data)
    assert len(opened) == 1, opened
    assert {k: v for k, v in fingerprint.items() if k != "source"} == RECORDED
    assert fingerprint_changes({**RECORDED, "source": str(path)}, fingerprint) == []
    ds = load_dataset(data)
    assert ds.X[:, 0].tolist() == [1.5, 2.5, 3.5, 4.5] and ds.y.tolist() == [0, 1, 0, 1]


def test_a_csv_larger_than_any_read_buffer_hashes_to_its_bytes(tmp_path: Path) -> None:
    rows = "".join(f"{i * 0.5},{'é' * (i % 7)}s{i},{i % 2}\n" for i in range(40_000))
    path = tmp_path / "big.csv"
    path.write_text("a,b,label\n" + rows, encoding="utf-8")
    ds = load_dataset(DataConfig(path=str(path), target="label"))
    assert ds.content_hash == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.n_rows == 40_000 and ds.X[-1, 0] == 39_999 * 0.5


def test_a_parquet_file_is_parsed_from_the_bytes_hashed(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]}), path)
    ds = load_dataset(DataConfig(path=str(path), target="label"))
    assert ds.content_hash == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert np.array_equal(ds.X[:, 0], [1.0, 2.0, 3.0, 4.0])
