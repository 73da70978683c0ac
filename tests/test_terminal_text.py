"""Text from a spec or a trial as the terminal shows it: literally, never read as Rich markup (styles, OSC-8 links)
nor sent raw as escape sequences (a screen clear, a window title). `--json` keeps the text as it is."""

from __future__ import annotations

import io
import json

from rich.console import Console

from tunesmith import api
from tunesmith.terminal_text import escape, visible_controls

LINK = "[link=https://evil.example/login]see docs[/link]"
STYLED = "[bold red]q[/bold red]"
METRIC = "[i]loss[/i]"
RAISES = 'def objective(config, trial):\n    raise ValueError("boom \\x1b[2J\\x1b]0;PWNED\\x07\\x9b31mred")\n'


def _printed(markup: str) -> str:
    shown = io.StringIO()
    Console(file=shown, width=200, force_terminal=True, color_system="truecolor", highlight=False).print(markup)
    return shown.getvalue()


def test_markup_and_control_characters_print_as_written_and_visible():
    text = f"{LINK} {STYLED} \x1b[2J\x1b]0;title\x07 \x9b31m\rend"
    printed = _printed(escape(text))
    assert printed == f"{LINK} {STYLED} \\x1b[2J\\x1b]0;title\\x07 \\x9b31m\\x0dend\n", printed
    assert visible_controls("a\nb\tc\x00\x7f") == "a\nb\tc\\x00\\x7f"  # a newline and a tab are kept


def test_run_show_and_trials_print_spec_names_and_choices_as_written(project):
    """The best trials table (`run`'s last and `show`'s) read a categorical choice as a link and a parameter or
    metric name as styles; each prints as the spec wrote it, and --json has the names as they are."""
    project.write("o.py", f"def objective(config, trial):\n    return {{{METRIC!r}: 1.0}}\n")
    spec = project.write_spec(project.spec(
        "rich", objective={"metric": METRIC, "direction": "minimize"}, executor={"kind": "inline"},
        space={"p": {"type": "categorical", "choices": [LINK]}, STYLED: {"type": "int", "low": 0, "high": 1}},
        budget={"trials": 1}, trial={"function": "o:objective"}))
    run = project.cli("run", str(spec), env={"FORCE_COLOR": "1"})
    show = project.cli("show", "rich", env={"FORCE_COLOR": "1"})
    trials = project.cli("trials", "rich", env={"FORCE_COLOR": "1"})
    for proc in (run, show, trials):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "\x1b]8;" not in proc.stdout, proc.stdout  # no OSC-8 hyperlink
    for proc in (run, show):
        assert f"p={LINK}" in proc.stdout, proc.stdout
        assert f"{STYLED}=" in proc.stdout, proc.stdout
        assert f"{METRIC} (min)" in proc.stdout, proc.stdout
    assert json.dumps({METRIC: 1.0}) in trials.stdout, trials.stdout  # the values column
    (listed,) = json.loads(project.cli("trials", "rich", "--json", check=True).stdout)
    params = listed["params"]  # (STYLED's value is whichever of its two the trial drew)
    assert params.keys() == {"p", STYLED} and params["p"] == LINK and params[STYLED] in (0, 1), params


def test_a_trials_exception_message_never_reaches_the_terminal_raw(project):
    """`run`'s failure line and last line, and `trials`' error column, kept every control character of the
    message: a screen clear, a window title. Each is shown as Python writes it; --json keeps the message."""
    project.write("f.py", RAISES)
    spec = project.write_spec(project.spec("fn", executor={"kind": "inline"}, budget={"trials": 1},
                                           trial={"function": "f:objective"}))
    run = project.cli("run", str(spec))
    trials = project.cli("trials", "fn")
    assert run.returncode == 1, run.stdout + run.stderr
    for said in (run.stdout, run.stderr, trials.stdout):
        assert "\x1b" not in said and "\x07" not in said and "\x9b" not in said, repr(said)
    assert "boom \\x1b[2J\\x1b]0;PWNED\\x07\\x9b31mred" in run.stdout, run.stdout
    assert "boom \\x1b[2J\\x1b]0;PWNED\\x07\\x9b31mred" in run.stderr, run.stderr
    assert "boom \\x1b[2J" in trials.stdout, trials.stdout
    (listed,) = json.loads(project.cli("trials", "fn", "--json", check=True).stdout)
    assert "boom \x1b[2J\x1b]0;PWNED\x07\x9b31mred" in listed["error"]


def test_the_python_apis_failure_lines_show_control_characters_visibly(project, capfd):
    project.write("f.py", RAISES)
    api.run(project.spec("fn", executor={"kind": "inline"}, budget={"trials": 1}, trial={"function": "f:objective"}),
            storage=project.storage)
    _out, err = capfd.readouterr()
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err, repr(err)
    assert "boom \\x1b[2J\\x1b]0;PWNED\\x07\\x9b31mred" in err, err


def test_importing_the_runner_does_not_load_rich():
    """`import tunesmith.runner` (the Python API's run and resume) loaded Rich through events.py ->
    terminal_text.py, whose escape() is the only user of it: Rich is imported when escape() first runs."""
    import subprocess
    import sys

    code = "import sys, tunesmith.runner; print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert said.strip() == "[]", said
