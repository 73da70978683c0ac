"""The promotion report: every gate, its verdict and evidence, and what was registered, as JSON and Markdown."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunesmith.errors import UserInputError
from tunesmith.promotion.gates import GateResult


def check_report_dir(report_dir: str | None) -> None:
    """Refuse a ``--report-dir`` that is no folder, before anything is judged or registered. One that does not exist
    is not made (a typo made a tree of folders, as root one at /), as --output's and --json-out's folders are not;
    the default, ``<workdir>/promotions``, is.

    Raises:
        UserInputError: ``report_dir`` does not exist, or is a file.
    """
    if not report_dir or os.path.isdir(report_dir):
        return
    if os.path.exists(report_dir):
        raise UserInputError(f"--report-dir: {report_dir!r} is a file, not a folder; name the folder the reports go in")
    raise UserInputError(f"--report-dir: folder {report_dir!r} does not exist; create it, or leave --report-dir out "
                         "(<workdir>/promotions, made for you)")


def write_report(folder: Path, data: Mapping[str, Any], gates: list[GateResult]) -> tuple[Path, Path]:
    """Write ``<folder>/<time>-<model>-trial<N>.json`` and ``.md`` (``folder`` made if need be: the default one;
    a ``--report-dir`` is checked by :func:`check_report_dir`); returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    at = float(data["at"])
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(at)) + f"{int(at % 1 * 1000):03d}Z"
    base = f"{stamp}-{data['model_name']}-trial{data['trial']}"
    payload = {**data, "gates": [g.to_json() for g in gates]}
    json_path, md_path = folder / f"{base}.json", folder / f"{base}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(payload), encoding="utf-8")
    return json_path, md_path


def markdown(report: Mapping[str, Any]) -> str:
    lines = [f"# Promotion of {report['experiment']} trial {report['trial']} to {report['model_name']}", "",
             f"**Decision: {report['decision']}**", ""]
    lines += [*(f"Note: {note}" for note in report.get("notes", ())), *([""] if report.get("notes") else [])]
    if report.get("version"):
        lines.append(f"Registered version {report['version']}; alias `champion` -> {report['version']}"
                     + (f", `previous` -> {report['previous_champion']}" if report.get("previous_champion") else ""))
        lines.append("")
    elif report["decision"] in ("already the champion", "dry run: already the champion"):  # promote.Decision
        lines += [f"Already the champion: version {report['champion_before']}; nothing registered", ""]
    failed = [g for g in report["gates"] if g["verdict"] == "failed"]
    if failed:
        lines += [f"Rejected by: {', '.join(g['gate'] for g in failed)}", ""]
    lines += ["| gate | verdict | evidence |", "|---|---|---|"]
    for g in report["gates"]:
        lines.append(f"| `{g['gate']}` | {g['verdict']} | {g['message']} |")
    if not report["gates"]:
        lines.append("| (none) | passed | no gate configured |")
    lines += ["", "## Candidate", "", f"- params: `{json.dumps(report['params'])}`",
              f"- metrics: `{json.dumps(report['metrics'], default=str)}`",
              f"- by {report['actor']['user']}@{report['actor']['host']}: `{report['actor']['command']}`", ""]
    return "\n".join(lines)
