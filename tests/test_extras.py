"""The one wording an error uses to say how to install an extra, or a newer tunesmith (src/tunesmith/extras.py)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tunesmith.extras import EXTRAS, install_extra, update_tunesmith

ROOT = Path(__file__).resolve().parents[1]


def test_each_extra_is_one_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)


def test_the_wording_installs_from_the_checkout():
    assert install_extra("mlflow") == "pip install -e '.[mlflow]' in tunesmith's checkout (the mlflow extra)"
    assert install_extra("ray", force_reinstall=True) == (
        "pip install --force-reinstall -e '.[ray]' in tunesmith's checkout (the ray extra)")
    assert update_tunesmith() == "git pull, then pip install -e . in tunesmith's checkout"
    with pytest.raises(ValueError, match="no extra 'mlfow'"):
        install_extra("mlfow")


def test_no_message_installs_tunesmith_from_a_package_index():
    """Messages said pip install 'tunesmith[mlflow]' and pip install -U tunesmith: tunesmith is on no index."""
    by_name = re.compile(r"""pip install[^\n]*?(?<![\w./-])["']?tunesmith(?:\[[\w,\s-]*\])?["']?(?=[\s`)"]|$)""")
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "src" / "tunesmith").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if by_name.search(line)]
    assert found == []


def test_importing_tunesmith_imports_no_extra():
    code = ("import sys, tunesmith, tunesmith.extras, tunesmith.tracking, tunesmith.storage.opening; "
            "print(sorted({'mlflow', 'ray', 'plotly', 'prometheus_client', 'torch'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
