"""What an experiment ran on: Python, platform, package versions, the code's git commit, the CPU (and GPU).

Captured once per run and recorded with the experiment (and on its MLflow parent run), so a result can be
traced to the code and libraries that produced it. Nothing here is a secret: URLs lose their credentials.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from tunesmith.redaction import redact

PACKAGES = ("tunesmith", "optuna", "scikit-learn", "numpy", "scipy", "pandas", "sqlalchemy", "pydantic", "mlflow",
            "skops", "torch")


def capture(code_dir: str | None) -> dict[str, Any]:
    """The environment as a JSON-able mapping: python, platform, cpu, gpu, packages, git (of ``code_dir``)."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = package_version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_model(),
        "packages": packages,
        "git": git_state(code_dir) if code_dir else None,
    }


def package_version(name: str) -> str:
    """``importlib.metadata.version(name)``, read off the metadata's ``Version`` header alone: that function parses
    the whole file as an e-mail message, long description included (2 ms a package, 11 packages on every run).

    Raises:
        importlib.metadata.PackageNotFoundError: ``name`` is not installed.
    """
    dist = metadata.distribution(name)
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the headers
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "version":
            return value.strip()
    return dist.version


def git_state(folder: str, tracking: str | None = None) -> dict[str, Any] | None:
    """``{commit, dirty, remote}`` of the git work tree holding ``folder``; None outside one (or without git), and
    where the work tree does not track the file ``tracking`` (in ``folder``): an installed package in a virtual
    environment inside another project's work tree is no checkout of its own."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if tracking is not None and git("ls-files", "--error-unmatch", "--", tracking) is None:
        return None
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    remote = git("config", "--get", "remote.origin.url")
    return {"commit": commit, "dirty": bool(status), "remote": redact(remote) if remote else None}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_model() -> str | None:
    """The first NVIDIA GPU's name when nvidia-smi answers quickly, else None."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    names = done.stdout.strip().splitlines() if done.returncode == 0 else []
    return names[0] if names else None
