"""A stored spec written back as a YAML spec file, which the loader reads again (`tunesmith spec NAME`), its secrets
hidden unless asked for."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from typing import Any

import yaml

from tunesmith.redaction import REDACTED, spec_secrets_hidden
from tunesmith.spec.model import INTERACTIVE
from tunesmith.spec.task_config import DataConfig, folds_keep_time_order

_WIDTH = 120


def recorded_spec_yaml(name: str, stored: Mapping[str, Any], show_secrets: bool = False) -> str:
    """Experiment ``name``'s stored spec as a YAML spec file: every key as stored (the seed and workdir its run
    filled in too), its secrets hidden (:func:`~tunesmith.redaction.spec_secrets_hidden`) unless ``show_secrets``,
    with comment lines above it saying what it is, what was hidden, and which of its paths are relative to the
    folder the spec was read from (``base_dir``), which is left out: the loader takes it from the file's folder, so
    the file finds the same code and data when it is kept in that folder."""
    shown = stored if show_secrets else spec_secrets_hidden(stored)
    data = {key: value for key, value in shown.items() if key != "base_dir"}
    if isinstance(data.get("space"), Mapping):
        data["space"] = {param: domain_as_written(domain) for param, domain in data["space"].items()}
    if isinstance(data.get("task"), Mapping):
        data["task"] = _task_as_written(data["task"])
    header = [f"The spec experiment {name!r} was recorded with: what its run ran (its seed and workdir as filled in)."]
    folder, relative = stored.get("base_dir"), _relative_to_spec_folder(stored)
    if relative and folder:
        header.append(f"Its run read it from {folder}: {', '.join(relative)} {'is' if len(relative) == 1 else 'are'} "
                      "found from the spec file's folder; keep this file there for `tunesmith validate` and `run`.")
    if stored.get("workdir"):
        header.append("Its workdir holds that run's trial folders: to run this file as a new experiment (`run --name "
                      "NEW`, or a new name: line), delete the workdir: line, and the new run gets a folder of its own.")
    if shown != stored:
        header.append(f"Its secrets are shown as {REDACTED} (the store keeps them, for a resume): what reads like a "
                      f"password, token or key; `tunesmith spec {name} --show-secrets` prints them as recorded, "
                      f"and a {REDACTED} left in is refused when the file runs.")
    if REDACTED in str(shown.get("storage", "")):  # (what is printed: an older record still holds the password)
        header.append("Its storage: is recorded without its password: put it back (or delete the line and give "
                      "--storage) to run this file.")
    trial = stored.get("trial") or {}
    if str(trial.get("function", "")).startswith(INTERACTIVE + ":"):
        header.append("Its trial function was defined interactively (a notebook, python -c): no file names it; "
                      f"continue it from Python, with tunesmith.resume({name!r}, trial=...).")
    comments = [f"# {line}" for said in header for line in textwrap.wrap(said, width=_WIDTH - 2)]
    return "\n".join(comments) + "\n" + "".join(_yaml_of(key, value) for key, value in data.items())


def _task_as_written(task: Mapping[str, Any]) -> dict[str, Any]:
    """A stored task without ``cv.shuffle`` where its folds keep time order: every stored spec holds ``shuffle:
    true`` (its default), which a spec file may not write for time-ordered folds (``task.cv.shuffle`` is refused
    there: it was ignored), so the printed spec would not validate again."""
    cv, data = task.get("cv"), task.get("data")
    if not isinstance(cv, Mapping):
        return dict(task)
    time_ordered = isinstance(data, Mapping) and folds_keep_time_order(cv.get("kind"), DataConfig.model_validate(data))
    return {**task, "cv": {k: v for k, v in cv.items() if not (time_ordered and k == "shuffle")}}


def _yaml_of(key: str, value: Any) -> str:
    """One top-level key as YAML: leaf mappings and lists on one line (``{metric: loss, direction: minimize}``), and
    each parameter of the space on its own line, as the README's examples write them."""
    if key == "space" and isinstance(value, Mapping):
        return "space:\n" + "".join(f"  {_flow({param: domain})}\n" for param, domain in value.items())
    if not isinstance(value, Mapping | list):
        return f"{_flow({key: value})}\n"
    return yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=None, allow_unicode=True, width=_WIDTH)


def _flow(value: Any) -> str:
    """``value`` (a mapping of one key) as YAML on one line, without the braces around it."""
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=True, allow_unicode=True, width=2**31)
    return text.strip().removeprefix("{").removesuffix("}")


def domain_as_written(domain: Mapping[str, Any]) -> dict[str, Any]:
    """A stored parameter domain with its ``type`` first and its ``when`` last, as one writes them (the model
    stores the condition first)."""
    shown = {key: value for key, value in domain.items() if key not in ("type", "when")}
    return {**({"type": domain["type"]} if "type" in domain else {}), **shown,
            **({"when": domain["when"]} if "when" in domain else {})}


def _relative_to_spec_folder(stored: Mapping[str, Any]) -> list[str]:
    """The fields of ``stored`` that name something from the spec's folder: a trial function's module or file not
    given by an absolute path, a command that runs there, a task's data file given by a relative path."""
    trial, task = stored.get("trial") or {}, stored.get("task") or {}
    function, data = str(trial.get("function") or ""), task.get("data") or {}
    found = []
    if function and not function.startswith(INTERACTIVE + ":") and not os.path.isabs(function.rpartition(":")[0]):
        found.append(f"trial.function {function!r}")
    if trial.get("command") and trial.get("cwd", "spec_dir") == "spec_dir":
        found.append("trial.command (it runs there)")
    if isinstance(data.get("path"), str) and not os.path.isabs(data["path"]):
        found.append(f"task.data.path {data['path']!r}")
    return found
