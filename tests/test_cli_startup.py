"""What a command loads before it can refuse bad input: every CLI start the suite and a user's scripts make pays for
its imports (SQLAlchemy alone was ~0.25 s of CPU of a bad spec's ~0.65 s `run`), so a command that stops before it
opens a store must not import the store's library."""

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from tunesmith.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exited:
    print(exited.code, sorted(m for m in ("sqlalchemy", "alembic", "sklearn", "optuna") if m in sys.modules))
"""


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_spec_refused_as_bad_input_never_loads_the_store_library(tmp_path: Path, command: str) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nobjectiv: {metric: loss}\n")
    proc = subprocess.run([sys.executable, "-c", PROBE, command, "bad.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
    assert "objectiv" in proc.stderr
