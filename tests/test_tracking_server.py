"""Tracking on a real MLflow tracking server (`mlflow server`, HTTP), where MLflow's REST store behaves otherwise
than its database store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import completed_in_process


def _cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    """`tunesmith ARGS` from ``cwd`` on the store there, in this process (MLflow's print writes to sys.stdout, which
    this captures as a subprocess's stdout would): exit code, stdout, stderr."""
    done = completed_in_process(cwd, *args, env={"TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}"})
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
def test_cycle_and_watch_json_stay_json_on_a_tracking_server(tmp_path: Path, mlflow_server: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """On an HTTP tracking server MLflow prints "🏃 View run ... at: http://..." on stdout as a run is ended (the
    promote step's sync ends the experiment's run): `cycle --json`'s stdout was no longer JSON."""
    from tests.test_cycle import SPEC
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    spec = {**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}, "tracking": {"mlflow": {"uri": mlflow_server, "experiment": "bc-http"}}}
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(spec))
    code, out, err = _cli(tmp_path, "cycle", "bc.yaml", "--data", "reference.csv", "-m", "clf-http", "--json")
    assert code == 0, (out, err)
    assert json.loads(out)["outcome"] == "promoted", out  # the first tuning, promoted: its run ended on the server
    assert "View run" in err, err  # MLflow's address of the run, for a person: on stderr
    code, out, err = _cli(tmp_path, "watch", "bc", "--data", "shifted.csv", "-m", "clf-http", "--cycles", "1",
                          "--json")
    assert code == 0, (out, err)
    [line] = [json.loads(line) for line in out.splitlines()]  # one JSON line per cycle, nothing else
    assert line["outcome"] == "promoted" and line["champion"] == "bc-retune-1", line
