"""The optional extras and how an error says to install one.

tunesmith is published on no package index (README's install section): installing it by name (with or without an
extra) would install nothing, or another project's package of that name. An extra is added from tunesmith's
checkout, and a newer tunesmith is the checkout updated and reinstalled; every message saying so takes its wording
from here.
"""

from __future__ import annotations

# pyproject.toml's [project.optional-dependencies] that a user installs for a feature (tests/test_extras.py)
EXTRAS = ("postgres", "gp", "metrics", "report", "mlflow", "ray")


def install_extra(extra: str, *, force_reinstall: bool = False) -> str:
    """The command that installs ``extra`` and where to run it: "pip install -e '.[ray]' in tunesmith's checkout
    (the ray extra)". ``force_reinstall``: the same, reinstalling what is installed (a broken install)."""
    if extra not in EXTRAS:
        raise ValueError(f"no extra {extra!r}: tunesmith's are {', '.join(EXTRAS)}")
    option = " --force-reinstall" if force_reinstall else ""
    return f"pip install{option} -e '.[{extra}]' in tunesmith's checkout (the {extra} extra)"


def update_tunesmith() -> str:
    """How to get a newer tunesmith: its checkout updated, then installed again."""
    return "git pull, then pip install -e . in tunesmith's checkout"
