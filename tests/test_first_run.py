"""What a new user meets first: the README's command example, failure reasons that say why, fail fast, versions.

Through the installed `tunesmith` command, as a user runs it, in folders of their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from _faults_setup import read_json
from helpers import cli_in_process, completed_in_process, tune_in_process

from tunesmith.budget import FAIL_FAST_TRIALS, BudgetTracker
from tunesmith.evaluation.command import command_warnings
from tunesmith.evaluation.output_tail import read_tail, summarize
from tunesmith.redaction import redact
from tunesmith.records import Direction, FailureKind, TrialRecord, TrialState
from tunesmith.spec.model import Budget

README = Path(__file__).resolve().parents[1] / "README.md"
TUNESMITH = shutil.which("tunesmith", path=os.path.dirname(sys.executable)) or "tunesmith"


def readme_block(first_line: str) -> str:
    """The README's fenced code block that starts with ``first_line`` (the example a user copies)."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line + "\n") or block.startswith(first_line + ":"):
            return block
    raise AssertionError(f"the README has no code block starting with {first_line!r}")


def tunesmith(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    env.pop("TUNESMITH_STORAGE", None)  # the default store, ./tunesmith.db, as a new user has it
    return subprocess.run([TUNESMITH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_here(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """:func:`tunesmith` ARGS run as the command's own code in this process (helpers.completed_in_process), for a
    later `show` whose words are checked, or a `run` that records the trials a test is about (their reasons, how
    fail fast read them), where the command itself is proven as a process by another test: no CLI start-up (~0.7
    s of CPU). The trials' functions and commands still run in worker processes (only a process executor's run goes
    here: an inline one would import the folder's train.py into this process, where another test's module of that
    name may be loaded)."""
    assert args[0] != "run" or "inline" not in (cwd / args[1]).read_text(), "an inline trial would run here"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TUNESMITH_STORAGE", raising=False)  # the default store, ./tunesmith.db, as tunesmith() has it
        return completed_in_process(cwd, *args, env={"COLUMNS": "250"})


def trials_json(name: str, cwd: Path) -> list[dict[str, Any]]:
    """`tunesmith trials NAME --json` on the folder's default store (in this process: a reading, not the subject)."""
    return sorted(read_json("trials", name, storage=_default_store(cwd)), key=lambda t: t["number"])


def show_json(name: str, cwd: Path) -> dict[str, Any]:
    return read_json("show", name, storage=_default_store(cwd))


def _default_store(cwd: Path) -> str:
    return f"sqlite:///{cwd / 'tunesmith.db'}"


@pytest.fixture
def branin(tmp_path: Path) -> Path:
    """The README's command example, copied into a folder of its own: b.yaml and branin.py."""
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "b.yaml").write_text(readme_block("# b.yaml"))
    (folder / "branin.py").write_text(readme_block("# branin.py"))
    return folder


# -- command trials run in the spec's folder ------------------------------------------------------------------------

@pytest.mark.slow
def test_the_readme_command_example_completes_from_the_spec_folder(branin: Path) -> None:
    spec = yaml.safe_load((branin / "b.yaml").read_text())
    assert "python3 branin.py" in spec["trial"]["command"], "the example uses a path relative to the spec"
    proc = tunesmith("run", "b.yaml", cwd=branin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = trials_json("branin", branin)
    assert len(trials) == spec["budget"]["trials"]
    assert all(t["state"] == "completed" for t in trials), [t["error"] for t in trials]


def test_the_readme_example_runs_from_another_folder(branin: Path) -> None:
    spec = yaml.safe_load((branin / "b.yaml").read_text())
    (branin / "b.yaml").write_text(yaml.safe_dump({**spec, "budget": {"trials": 3}}))  # the folder is the point
    proc = tunesmith("run", "sub/b.yaml", cwd=branin.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {t["state"] for t in trials_json("branin", branin.parent)} == {"completed"}


@pytest.mark.slow
def test_cwd_trial_dir_keeps_the_old_folder_and_says_why_it_fails(branin: Path) -> None:
    """The issue's first run: a relative script path from the trial's folder. Now it stops after 5 and says why."""
    spec = yaml.safe_load((branin / "b.yaml").read_text())
    spec["trial"]["cwd"] = "trial_dir"
    spec["budget"]["trials"] = 40
    (branin / "b.yaml").write_text(yaml.safe_dump(spec))
    proc = run_here("run", "b.yaml", cwd=branin)  # the README's run as a process: the two tests above
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    trials = trials_json("branin", branin)
    assert len(trials) == FAIL_FAST_TRIALS, "the run stopped instead of burning its budget"
    for t in trials:
        trial_dir = str(Path(t["log_path"]).parent)
        assert t["failure_kind"] == "exit_code"
        assert t["error"].startswith("exit_code: command exited with code 2; stderr: ")
        assert f"can't open file '{trial_dir}/branin.py'" in t["error"], "ran in the trial's own folder"
        assert "can't open file" in Path(t["log_path"]).read_text(), "the whole output stays in the log"
    # the live progress line, and the run's own last word
    assert f"trial 0 failed: {trials[0]['error']}" in proc.stdout
    assert "The run stopped: the first 5 trials to finish in this run failed the same way" in proc.stderr
    assert "can't open file" in proc.stderr
    shown = show_json("branin", branin)
    assert shown["status"] == "failed"


def test_a_typo_in_cwd_is_named_with_the_fix(branin: Path) -> None:
    text = (branin / "b.yaml").read_text().replace('branin.py --x {x} --y {y}"}',
                                                    'branin.py --x {x} --y {y}", cwd: trail_dir}')
    (branin / "b.yaml").write_text(text)
    proc = tunesmith("run", "b.yaml", cwd=branin)
    assert proc.returncode == 2
    assert "trial.cwd: must be one of 'spec_dir' or 'trial_dir'; got 'trail_dir' (did you mean 'trial_dir'?)" in (
        " ".join(proc.stderr.split()))
    assert not (branin / "tunesmith.db").exists(), "nothing recorded"


def test_validate_warns_about_a_script_that_is_not_where_the_command_runs(branin: Path) -> None:
    """Three folders, one `validate` over them (a subprocess each cost ~0.6 s of CPU): the README's example as it
    is, with its script moved away, and with the command run in the trial's folder; each spec's lines name it."""
    moved, trial_dir = branin.parent / "moved", branin.parent / "trialdir"
    shutil.copytree(branin, moved)
    (moved / "branin.py").rename(moved / "other.py")
    shutil.copytree(branin, trial_dir)
    (trial_dir / "b.yaml").write_text((trial_dir / "b.yaml").read_text().replace('{y}"}', '{y}", cwd: trial_dir}'))
    proc = tunesmith("validate", "sub/b.yaml", "moved/b.yaml", "trialdir/b.yaml", cwd=branin.parent)
    assert proc.returncode == 0, "a guess from the command's words warns, never refuses"
    assert len(proc.stdout.splitlines()) == 3 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert "sub/b.yaml" not in proc.stderr, "nothing to say about the README's example"
    said = " ".join(proc.stderr.split())
    assert (f"warning: moved/b.yaml: trial.command names 'branin.py', which is not in the spec's folder {moved}"
            in said), said
    (line,) = [w for w in proc.stderr.splitlines() if w.startswith("warning: trialdir/b.yaml: ")]
    assert "write {spec_dir}/branin.py" in line, proc.stderr


def test_the_spec_dir_fix_names_the_script_as_a_path_not_with_a_dot_folder(tmp_path: Path) -> None:
    """`./train.sh {x}` run in the trial's folder: the warning's fix read `write {spec_dir}/./train.sh`, a path
    with a `.` folder in it, for `{spec_dir}/train.sh`."""
    (tmp_path / "train.sh").write_text("echo 0.5\n")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "name": "dotted", "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "budget": {"trials": 1},
        "trial": {"command": "sh ./train.sh {x}", "cwd": "trial_dir"}}))
    proc = tunesmith("validate", "s.yaml", cwd=tmp_path)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 0 and "names './train.sh' relative to the trial's own folder" in said, said
    assert "write {spec_dir}/train.sh for the one in the spec's folder" in said, said


def test_command_warnings_read_only_relative_script_words(tmp_path: Path) -> None:
    (tmp_path / "here.py").write_text("")
    assert command_warnings("python here.py --x {x} {trial_dir}/out.py", "spec_dir", str(tmp_path)) == []
    assert command_warnings("python /abs/train.py && sh ./run.sh -c 'x.py y'", "spec_dir", str(tmp_path)) == [
        f"trial.command names './run.sh', which is not in the spec's folder {tmp_path}, where commands run"]
    assert command_warnings("python {spec_dir}/here.py", "trial_dir", str(tmp_path)) == []
    assert command_warnings("echo 'unbalanced", "spec_dir", str(tmp_path)) == []
    assert command_warnings(None, "spec_dir", str(tmp_path)) == []


def test_command_warnings_offer_the_script_a_misspelt_one_meant(tmp_path: Path) -> None:
    """`python trian.py` beside train.py warned only that trian.py is not there."""
    (tmp_path / "train.py").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.sh").write_text("")
    assert command_warnings("python trian.py --x {x}", "spec_dir", str(tmp_path)) == [
        f"trial.command names 'trian.py', which is not in the spec's folder {tmp_path}, where commands run; "
        "did you mean 'train.py'?"]
    assert command_warnings("sh sub/rnu.sh", "spec_dir", str(tmp_path)) == [
        f"trial.command names 'sub/rnu.sh', which is not in the spec's folder {tmp_path}, where commands run; "
        "did you mean 'sub/run.sh'?"]
    assert command_warnings("python zzz.py", "spec_dir", str(tmp_path)) == [
        f"trial.command names 'zzz.py', which is not in the spec's folder {tmp_path}, where commands run"]



def test_command_warnings_name_a_program_the_shell_would_not_find_or_run(tmp_path: Path) -> None:
    """`trian.py`-style typos in the program itself (`nosuchprog {x}`), and a script not marked executable, passed
    validate and failed every trial with the shell's `not found` / `Permission denied` (exit 127 / 126)."""
    (tmp_path / "run.sh").write_text("echo '{\"loss\": 1}'\n")
    assert command_warnings("nosuchprog --x {x}", "spec_dir", str(tmp_path)) == [
        "trial.command runs 'nosuchprog', which is not on PATH on this machine"]
    assert command_warnings("./run.sh {x}", "spec_dir", str(tmp_path)) == [
        "trial.command runs './run.sh', which is not executable: chmod +x ./run.sh, or run it as sh ./run.sh"]
    (tmp_path / "run.sh").chmod(0o755)
    quiet = ["./run.sh {x}", "sh run.sh {x}", "OMP_NUM_THREADS=1 python -c 'print(1)'", "cd sub && make",
             "exec sh run.sh", "$HOME/bin/train {x}", "{spec_dir}/run.sh"]
    assert [w for c in quiet for w in command_warnings(c, "spec_dir", str(tmp_path))] == []
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mytool").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "mytool").chmod(0o755)
    assert command_warnings("mytool {x}", "spec_dir", str(tmp_path), {"PATH": str(tmp_path / "bin")}) == [], \
        "trial.env's PATH is the one the command runs with"
    (tmp_path / "s.yaml").write_text("name: s\nobjective: {metric: loss, direction: minimize}\n"
                                     "space: {x: {type: float, low: 0, high: 1}}\ntrial: {command: 'nosuchprog {x}'}\n")
    proc = tunesmith("validate", "s.yaml", cwd=tmp_path)
    assert proc.returncode == 0, "a guess from the command's words warns, never refuses"
    assert "warning: trial.command runs 'nosuchprog', which is not on PATH on this machine" in proc.stderr

def test_command_warnings_stay_quiet_for_what_the_shell_runs_itself(tmp_path: Path) -> None:
    """walk2's not-on-PATH guess warned falsely: a subshell `(cd sub && ...)` read as a program '(cd', a block
    scalar opening with a comment as '#', the builtins `:` and `read`, and a program found on the PATH the command
    sets for itself."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.py").write_text("")
    quiet = ["(cd sub && python train.py {x})", "# train on the small set first\npython -c 'print(1)' {x}",
             ": warm-up; python -c 'print(1)' {x}", "read line < /dev/null; echo {x}",
             "PATH=/opt/tools:$PATH mytool {x}"]
    assert {c: command_warnings(c, "spec_dir", str(tmp_path)) for c in quiet} == {c: [] for c in quiet}
    assert command_warnings("# a comment\nnosuchprog {x}", "spec_dir", str(tmp_path)) == [
        "trial.command runs 'nosuchprog', which is not on PATH on this machine"], "the line after the comment counts"


# -- failure reasons ---------------------------------------------------------------------------------------------

FAILING = '''
import sys

def objective(config, trial):
    print("configuration", config, "number", trial.number)
    print("reading", "data.csv", file=sys.stderr)
    if {condition}:
        raise KeyError("lr")
    return config["x"]
'''


def _function_spec(folder: Path, condition: str, trials: int, workers: int = 2) -> Path:
    (folder / "train.py").write_text(FAILING.format(condition=condition))
    spec = {"name": "fn", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "strategy": "random",
            "budget": {"trials": trials}, "executor": {"workers": workers}, "trial": {"function": "train:objective"},
            "seed": 3}
    path = folder / "fn.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_function_raising_on_every_configuration_stops_after_the_first_few(tmp_path: Path) -> None:
    _function_spec(tmp_path, "True", trials=30)
    proc = tunesmith("run", "fn.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trials = trials_json("fn", tmp_path)
    # two workers: the trial running beside the fifth failure may finish too
    assert FAIL_FAST_TRIALS <= len(trials) <= FAIL_FAST_TRIALS + 1
    for t in trials:
        assert t["error"].startswith("exception: KeyError: 'lr' (at train.py:8 in objective); output: "), t["error"]
        assert t["error"].endswith(f"configuration {{'x': {t['params']['x']!r}}} number {t['number']} | reading data.csv")
        assert "Traceback" in Path(t["log_path"]).read_text(), "the traceback stays in the log"
    assert "the first 5 trials to finish in this run failed the same way, so no configuration is likely to work: " \
           "exception: KeyError: 'lr'" in " ".join(proc.stderr.split())


def _run_failing_fast(folder: Path, condition: str, old: str, new: str) -> tuple[str, list[dict[str, Any]]]:
    """Run train.py (FAILING with ``old`` made ``new``) on 30 trials: it stops after the first few, failed fast, exit 1.
    Returns what the run said on stderr, on one line, and its trials. The run is the command's code in this process
    (run_here): a process says it in test_a_function_raising_on_every_configuration_stops_after_the_first_few."""
    _function_spec(folder, condition, trials=30)
    train = folder / "train.py"
    train.write_text(train.read_text().replace(old, new))
    proc = run_here("run", "fn.yaml", "--quiet", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trials = trials_json("fn", folder)
    assert FAIL_FAST_TRIALS <= len(trials) <= FAIL_FAST_TRIALS + 1, [t["error"] for t in trials]
    return " ".join(proc.stderr.split()), trials


def test_a_function_raising_with_the_configuration_in_its_message_stops_after_the_first_few(tmp_path: Path) -> None:
    """`raise ValueError("boom for lr=%r" % config["x"])`: each message differed, so no two failures were "the same
    way" and all 20 trials ran and failed. The same exception type raised at the same place is the same way."""
    said, trials = _run_failing_fast(tmp_path, "True", 'raise KeyError("lr")',
                                     'raise ValueError("boom for lr=%r" % config["x"])')
    assert len({t["error"].partition(" (at")[0] for t in trials}) == len(trials), "each message its own"
    assert "the first 5 trials to finish in this run failed the same way, so no configuration is likely to work: " \
           "exception: ValueError: boom for lr=" in said


def test_a_program_a_function_runs_failing_by_the_configuration_is_not_failing_the_same_way(tmp_path: Path) -> None:
    """`subprocess.run([...], check=True)` whose child exits 3 for some configurations and is SIGKILLed (an OOM
    kill) for others: compared by type and innermost frame, every failure was `CalledProcessError (at
    subprocess.py:571 in run)`, and the run stopped after 5 trials as failing the same way. The place is the user's
    line that called the library, and the message (values masked) tells an exit status from a signal."""
    _function_spec(tmp_path, "True", trials=8)
    train = tmp_path / "train.py"
    train.write_text(train.read_text().replace('raise KeyError("lr")', 'import subprocess; subprocess.run([sys.'
                     'executable, "-c", f"import os, sys; os.kill(os.getpid(), 9) if {trial.number % 2} else '
                     'sys.exit(3)"], check=True)'))
    proc = run_here("run", "fn.yaml", "--quiet", cwd=tmp_path)
    assert "failed the same way" not in proc.stderr, proc.stderr
    trials = trials_json("fn", tmp_path)
    assert len(trials) == 8 and {t["state"] for t in trials} == {"failed"}, [t["error"] for t in trials]
    for t in trials:
        what = "died with <Signals.SIGKILL: 9>." if t["number"] % 2 else "returned non-zero exit status 3."
        assert t["error"].startswith("exception: CalledProcessError: Command "), t["error"]
        assert f"{what} (at subprocess.py:" in t["error"], t["error"]
        assert " in run, called from train.py:8 in objective); output: " in t["error"], t["error"]


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_the_same_message_raised_at_two_lines_of_a_file_named_with_brackets_is_not_failing_the_same_way(
        tmp_path: Path, kind: str) -> None:
    """`train(2).py` (a second copy, as a download names it) raising one message at line 4 for odd trials and line 5
    for even ones: fail fast read the place back out of the reason (`(at train(2).py:4 in objective)`) by a pattern
    that takes no bracket in a file's name, found none, compared the whole reason with its numbers masked, line
    numbers included, and stopped the run after 5 trials as failing the same way. The place travels with the
    failure, beside its words."""
    (tmp_path / "train(2).py").write_text('def objective(config, trial):\n'
                                           '    if trial.number % 2:\n'
                                           '        pass\n'
                                           '        raise ValueError("no data")\n'
                                           '    raise ValueError("no data")\n')
    spec = {"name": "fn", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "strategy": "random",
            "budget": {"trials": 8}, "executor": {"kind": kind, "workers": 1},
            "trial": {"function": "train(2).py:objective"}, "seed": 3}
    (tmp_path / "fn.yaml").write_text(yaml.safe_dump(spec))
    # a process for the inline case (its trials run in the command's own process); the command's code in this
    # process for the other (run_here), its trials in a worker process
    proc = tunesmith("run", "fn.yaml", "--quiet", cwd=tmp_path) if kind == "inline" else \
        run_here("run", "fn.yaml", "--quiet", cwd=tmp_path)
    assert "failed the same way" not in proc.stderr, proc.stderr
    trials = trials_json("fn", tmp_path)
    assert len(trials) == 8 and {t["state"] for t in trials} == {"failed"}, [t["error"] for t in trials]
    for t in trials:
        line = 4 if t["number"] % 2 else 5
        assert t["error"] == f"exception: ValueError: no data (at train(2).py:{line} in objective)", t["error"]


def test_a_program_a_function_runs_failing_with_another_exit_status_each_time_fails_the_same_way(
        tmp_path: Path) -> None:
    """The same call, exiting 3 or 4 by the configuration: the message's numbers are values, so one way."""
    said, trials = _run_failing_fast(tmp_path, "True", 'raise KeyError("lr")', 'import subprocess; subprocess.run('
                                     '[sys.executable, "-c", f"import sys; sys.exit({3 + trial.number % 2})"], '
                                     'check=True)')
    assert {t["error"].partition(" (at")[0][-2] for t in trials} == {"3", "4"}, [t["error"] for t in trials]
    assert "the first 5 trials to finish in this run failed the same way, so no configuration is likely to work: " \
           "exception: CalledProcessError: Command " in said
    assert " in run, called from train.py:8 in objective)" in said


def test_a_function_returning_the_wrong_shape_every_time_stops_after_the_first_few(tmp_path: Path) -> None:
    """`return loss, accuracy` (or `[loss]`): each reason quoted its own values ('returned tuple (0.31, 0.9)'), so no
    two read the same and the run spent its whole budget on trials that could never succeed."""
    said, trials = _run_failing_fast(tmp_path, "False", 'return config["x"]', 'return config["x"], 1 - config["x"]')
    assert all(t["error"].startswith("invalid_result: returned tuple (") for t in trials)
    assert "the first 5 trials to finish in this run failed the same way, so no configuration is likely to work: " \
           "invalid_result: returned tuple (" in said


def test_show_says_why_a_run_stopped(tmp_path: Path) -> None:
    """`show` of a failed experiment said 'failed' and 'No trial completed.'; why it stopped (fail fast, and the error)
    was printed once by `run` and then only in the audit trail."""
    # set-up in this process (run's exit 1 and its words for this stop: test_fail_fast_says_no_more_trials_failed_...)
    tune_in_process(_function_spec(tmp_path, "True", trials=30, workers=1), tmp_path / "tunesmith.db")
    shown = show_json("fn", tmp_path)
    assert shown["status"] == "failed"
    assert shown["stop_reason"].startswith("the first 5 trials to finish in this run failed the same way, so no "
                                           "configuration is likely to work: exception: KeyError: 'lr'")
    text = " ".join(tunesmith("show", "fn", cwd=tmp_path).stdout.split())
    assert "stopped: the first 5 trials to finish in this run failed the same way" in text


def test_fail_fast_says_no_more_trials_failed_than_show_counts(tmp_path: Path) -> None:
    """Two workers: the trial running beside the fifth failure finished in the grace period, failed too, and `show`
    counted 6 failed where the reason said 'every trial so far (5) failed the same way'. The reason says what was
    true when the run stopped, and stays true of what the store records: the first 5 to finish failed alike."""
    _function_spec(tmp_path, "True", trials=30)
    train = tmp_path / "train.py"  # each pair of trials runs side by side: the fifth's partner is still running
    train.write_text(train.read_text().replace("    if True:", "    import time; time.sleep(1.0)\n    if True:"))
    proc = tunesmith("run", "fn.yaml", "--quiet", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    shown = show_json("fn", tmp_path)
    # the fifth's partner usually ends in the grace period, failed too (6); on a loaded machine it may not have
    # started its objective yet, or end after: 5 or 6 either way, and the reason must hold of both
    failed = shown["trials"]["failed"]
    assert FAIL_FAST_TRIALS <= failed <= FAIL_FAST_TRIALS + 1, shown["trials"]
    reason = ("the first 5 trials to finish in this run failed the same way, so no configuration is likely to work: "
              "exception: KeyError: 'lr'")
    said = " ".join(proc.stderr.split())
    assert reason in said and "every trial so far" not in said, said
    assert shown["stop_reason"].startswith(reason) and "every trial so far" not in shown["stop_reason"]
    text = " ".join(run_here("show", "fn", cwd=tmp_path).stdout.split())  # (show's words: the test above, a process)
    assert f"failed {failed};" in text and f"stopped: {reason}" in text, text


def test_a_spec_where_some_configurations_fail_runs_its_whole_budget(tmp_path: Path) -> None:
    _function_spec(tmp_path, "trial.number % 2 == 1", trials=12)
    proc = run_here("run", "fn.yaml", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = [t["state"] for t in trials_json("fn", tmp_path)]
    assert len(states) == 12 and states.count("failed") == 6


def test_secrets_are_redacted_from_the_reason_but_kept_in_the_log(tmp_path: Path) -> None:
    (tmp_path / "leak.sh").write_text(
        'echo "connecting with $SERVICE_KEY" >&2\necho "login password=hunter22 failed" >&2\n'
        'echo "Authorization: Bearer abc.def.ghi" >&2\nexit 3\n')
    spec = {"name": "leak", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "categorical", "choices": [1]}}, "strategy": "grid", "budget": {"trials": 1},
            "trial": {"command": "sh leak.sh", "env": {"SERVICE_KEY": "sk-live-0123456789"}}}
    (tmp_path / "leak.yaml").write_text(yaml.safe_dump(spec))
    run_here("run", "leak.yaml", "--quiet", cwd=tmp_path)
    (trial,) = trials_json("leak", tmp_path)
    assert trial["error"] == ("exit_code: command exited with code 3; stderr: connecting with *** | "
                              "login password=*** failed | Authorization: Bearer ***")
    log = Path(trial["log_path"]).read_text()
    assert "sk-live-0123456789" in log and "hunter22" in log


def test_an_exceptions_own_message_is_redacted_in_the_reason_the_store_and_the_report(tmp_path: Path) -> None:
    """Only the reason's output tail was redacted: the exception's message before it (a driver's "auth failed for
    postgresql://bob:pw@db") reached `run`, `trials`, the report and the store's rows in clear."""
    (tmp_path / "train.py").write_text(
        "import os\n\ndef objective(config, trial):\n    print('env API_TOKEN', os.environ['API_TOKEN'])\n"
        "    raise RuntimeError(f\"auth failed for {os.environ['PLAIN']} token {os.environ['API_TOKEN']} \"\n"
        "                       'url postgresql://bob:Bob-S3cret-4@db.internal/x password=Hunter-S3cret-5')\n")
    spec = {"name": "sec", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "budget": {"trials": 1},
            "executor": {"workers": 1, "retries": 0},
            "trial": {"function": "train:objective", "env": {"API_TOKEN": "Env-S3cret-1", "PLAIN": "Plain-S3cret-2"}}}
    (tmp_path / "sec.yaml").write_text(yaml.safe_dump(spec))
    secret = re.compile(r"[A-Za-z]+-S3cret-\d")
    ran = run_here("run", "sec.yaml", cwd=tmp_path)
    said = ran.stdout + ran.stderr
    assert "auth failed for ***" in said and not secret.findall(said), said
    (trial,) = trials_json("sec", tmp_path)
    assert trial["error"] == ("exception: RuntimeError: auth failed for *** token *** url postgresql://bob:***@"
                              "db.internal/x password=*** (at train.py:5 in objective); output: env API_TOKEN ***")
    assert run_here("report", "sec", "-o", "rep.html", cwd=tmp_path).returncode == 0
    assert "auth failed for ***" in (tmp_path / "rep.html").read_text()
    assert not secret.findall((tmp_path / "rep.html").read_text())
    with sqlite3.connect(tmp_path / "tunesmith.db") as db:
        rows = "\n".join(db.iterdump())
    assert "auth failed for ***" in rows and not secret.findall(rows.replace("Env-S3cret-1", "")
                                                                .replace("Plain-S3cret-2", "")), \
        "the recorded spec keeps trial.env (a resume runs with it); no reason holds a secret"
    log = Path(trial["log_path"]).read_text()
    assert "Env-S3cret-1" in log and "Bob-S3cret-4" in log, "the log keeps the traceback as it was"


def test_a_timed_out_command_says_what_it_said_last(tmp_path: Path) -> None:
    spec = {"name": "slow", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "categorical", "choices": [1]}}, "strategy": "grid", "budget": {"trials": 1},
            "executor": {"trial_timeout": "1s"},
            "trial": {"command": "echo 'loading shard 3 of 9' >&2; sleep 30"}}
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(spec))
    run_here("run", "slow.yaml", "--quiet", cwd=tmp_path)
    (trial,) = trials_json("slow", tmp_path)
    assert trial["failure_kind"] == "timeout"
    assert trial["error"].endswith("process tree was killed; output: loading shard 3 of 9"), trial["error"]


def test_summary_is_the_last_lines_on_one_line_cut_from_the_left() -> None:
    assert summarize("first\n\n  second \r\nthird\nfourth\nfifth\n") == "second | third | fourth | fifth"
    long = summarize("x" * 1000)
    assert len(long) == 300 and long.startswith("...")
    assert summarize("") == ""
    assert redact("db postgresql://bob:pw123@host/db --api-key k-1 token: 'a b'") == \
        "db postgresql://bob:***@host/db --api-key *** token: ***"
    assert redact("KeyError: 'api_key'") == "KeyError: 'api_key'", "a name alone is no secret"


def test_a_failure_after_one_long_line_of_output_ends_with_that_lines_end(tmp_path: Path) -> None:
    """5 MB with no newline, then an exception: the reason had no `; output: ` at all (the last 8 KiB of the log
    were read, and their first line dropped as cut in half: the only line there was). 5,000 characters had one."""
    _function_spec(tmp_path, "False", trials=1, workers=1)
    (tmp_path / "train.py").write_text(
        "import sys\n\ndef objective(config, trial):\n    sys.stdout.write('x' * 5_000_000 + ' the end')\n"
        "    raise RuntimeError('after big output')\n")
    run_here("run", "fn.yaml", "--quiet", cwd=tmp_path)
    (trial,) = trials_json("fn", tmp_path)
    assert trial["error"] == ("exception: RuntimeError: after big output (at train.py:5 in objective); output: ..."
                              + "x" * 289 + " the end"), trial["error"]


def test_the_tail_of_a_log_keeps_a_line_it_cut_marked_as_cut(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    log.write_bytes(b"x" * 20_000)
    assert summarize(read_tail(str(log))) == "..." + "x" * 297
    log.write_bytes(b"x" * 20_000 + b"\n")
    assert summarize(read_tail(str(log))) == "..." + "x" * 297, "a newline at the very end"
    log.write_bytes(b"y" * 20_000 + b"\nthe last line\n")
    assert summarize(read_tail(str(log))) == "..." + "y" * (297 - len(" | the last line")) + " | the last line"
    log.write_bytes("é".encode() * 10_000 + b"\nend\n")  # cut inside a character: no replacement mark
    assert "\ufffd" not in read_tail(str(log))
    log.write_bytes(b"first\nsecond\n")
    assert read_tail(str(log)) == "first\nsecond\n", "a log shorter than the read is whole, unmarked"
    assert read_tail(str(log), start=6) == "second\n", "this attempt's part, from its start"


@pytest.mark.parametrize("run", ["x" * 8000, "-" * 8000, "x-" * 4000, "ab12" * 2000])
def test_redacting_a_long_run_of_output_takes_no_time(run: str) -> None:
    """A failure's output tail is redacted (in the coordinator, for a timeout or a crash): 8,000 dashes took 12 s."""
    started = time.perf_counter()
    assert redact(run) == run
    assert redact(f"{run} --api-key k-1 {run}password=pw{run}") == f"{run} --api-key *** {run}password=***"
    assert time.perf_counter() - started < 1.0


# -- the fail-fast rule itself ---------------------------------------------------------------------------------

def _trial(n: int, state: TrialState, kind: FailureKind | None = None, error: str | None = None) -> TrialRecord:
    return TrialRecord(number=n, state=state, params={}, seed=0, values=(1.0,) if state is TrialState.COMPLETED
                       else None, failure_kind=kind, error=error)


def _tracker(trials: int | None = 100, **budget: Any) -> BudgetTracker:
    return BudgetTracker(Budget(trials=trials, **budget), Direction.MINIMIZE, started=0.0)


def test_fail_fast_needs_five_identical_deterministic_failures() -> None:
    b = _tracker()
    for n in range(FAIL_FAST_TRIALS - 1):
        b.observe(_trial(n, TrialState.FAILED, FailureKind.EXIT_CODE,
                         f"exit_code: command exited with code 2; stderr: trace | /x/trial-{n:05d}/a.py not found"))
        assert b.failure_stop() is None
    b.observe(_trial(9, TrialState.FAILED, FailureKind.EXIT_CODE,
                     "exit_code: command exited with code 2; stderr: trace | /x/trial-00009/a.py not found"))
    reason = b.failure_stop()
    assert reason is not None and reason.startswith("the first 5 trials to finish in this run failed the same way")
    assert reason.endswith("/x/trial-00009/a.py not found"), "the last reason, whole"
    assert b.stop_reason(0.0) == reason


def _fails_fast(kind: FailureKind, errors: list[str]) -> bool:
    b = _tracker()
    for n, error in enumerate(errors):
        b.observe(_trial(n, TrialState.FAILED, kind, error))
    return b.failure_stop() is not None


def test_an_exception_fails_the_same_way_by_its_type_place_and_message_whatever_values_it_quotes() -> None:
    said = [f"exception: ValueError: boom for lr={0.1 * n!r}, optimizer '{o}' (at b.py:5 in objective); output: {n}"
            for n, o in enumerate(["adam", "sgd", "adam", "rmsprop", "sgd"])]
    assert _fails_fast(FailureKind.EXCEPTION, said)
    elsewhere = [*said[:4], "exception: ValueError: boom for lr=0.5 (at b.py:9 in objective)"]
    assert not _fails_fast(FailureKind.EXCEPTION, elsewhere), "raised at another line: another way"
    other_type = [*said[:4], "exception: KeyError: 'lr=0.5' (at b.py:5 in objective)"]
    assert not _fails_fast(FailureKind.EXCEPTION, other_type), "another exception: another way"
    other_words = [*said[:4], "exception: ValueError: no data for lr=0.5 (at b.py:5 in objective)"]
    assert not _fails_fast(FailureKind.EXCEPTION, other_words), "another message: another way"
    # a trial's own KeyboardInterrupt, said with what it is after the place
    interrupted = [f"exception: KeyboardInterrupt: at step {n} (at b.py:7 in objective), raised by the trial itself, "
                   "not by a signal" for n in range(5)]
    assert _fails_fast(FailureKind.EXCEPTION, interrupted)
    # tunesmith's own errors in a trial have no place (TrialError, SpecError): their values are what differs
    misuse = [f"exception: trial.report: value must be a number; got '{v}'" for v in ["a", "b", "c", "d", "e"]]
    assert _fails_fast(FailureKind.EXCEPTION, misuse)


def test_an_exception_raised_in_a_library_is_placed_at_the_users_line_that_called_it() -> None:
    """Compared by type and innermost frame, a program exiting 3 and one SIGKILLed (an OOM kill) by the configuration
    were one way, `CalledProcessError (at subprocess.py:571 in run)`, as was every failure raised in a shared library
    function. The place is the user's line that called it; the message, with its values masked, tells them apart."""
    def failed(what: str, user: str = "train.py:9 in objective", library: str = "subprocess.py:571 in run") -> str:
        return (f"exception: CalledProcessError: Command '['python', 'child.py', '--lr', '0.1']' {what}. (at {library}"
                f", called from {user}); output: epoch 1")

    exits = [failed(f"returned non-zero exit status {code}") for code in (3, 4, 3, 1, 4)]
    assert _fails_fast(FailureKind.EXCEPTION, exits), "exit statuses are values: the same call fails every time"
    # the command's list is one value: quote-paired, 'adam' sat outside any quotes
    optimizers = [failed("returned non-zero exit status 1").replace("'--lr', '0.1'", f"'--optimizer', '{o}'")
                  for o in ("adam", "sgd", "adam", "rmsprop", "sgd")]
    assert _fails_fast(FailureKind.EXCEPTION, optimizers)
    killed = [*exits[:4], failed("died with <Signals.SIGKILL: 9>")]
    assert not _fails_fast(FailureKind.EXCEPTION, killed), "a signal is not an exit status"
    other_call = [*exits[:4], failed("returned non-zero exit status 3", user="train.py:14 in objective")]
    assert not _fails_fast(FailureKind.EXCEPTION, other_call), "another line of the user's: another way"
    deeper = [*exits[:4], failed("returned non-zero exit status 3", library="subprocess.py:550 in run")]
    assert _fails_fast(FailureKind.EXCEPTION, deeper), "where the library raised it is the library's business"
    oom = [f"exception: OutOfMemoryError: CUDA out of memory. Tried to allocate {g} GiB (at linear.py:125 in forward, "
           "called from train.py:30 in objective)" for g in (2.0, 4.0, 8.0, 1.5)]
    shapes = "exception: RuntimeError: mat1 and mat2 shapes cannot be multiplied (at linear.py:125 in forward, " \
             "called from train.py:30 in objective)"
    assert not _fails_fast(FailureKind.EXCEPTION, [*oom, shapes])
    assert not _fails_fast(FailureKind.EXCEPTION, [*oom[:3], shapes.replace("RuntimeError", "OutOfMemoryError"),
                                                   oom[3]]), "the same type at the same place, another message"


def test_a_command_fails_the_same_way_by_its_exit_code_and_last_stderr_line_whatever_values_it_names() -> None:
    said = [f"exit_code: command exited with code 1; stderr: Traceback | ValueError: bad lr {0.01 * n} for '{o}'"
            for n, o in enumerate(["adam", "sgd", "adam", "rmsprop", "sgd"])]
    assert _fails_fast(FailureKind.EXIT_CODE, said)
    assert not _fails_fast(FailureKind.EXIT_CODE, [*said[:4], said[4].replace("code 1;", "code 2;")]), \
        "another exit code: another way"
    assert not _fails_fast(FailureKind.EXIT_CODE, [*said[:4], said[4].replace("bad lr", "no such file")])


@pytest.mark.parametrize("odd_one", [
    _trial(2, TrialState.COMPLETED),
    _trial(2, TrialState.FAILED, FailureKind.EXCEPTION, "exception: ValueError: other (at t.py:1 in f)"),
    _trial(2, TrialState.FAILED, FailureKind.TIMEOUT, "timeout: exceeded trial_timeout of 1s"),
])
def test_one_success_or_other_failure_among_the_first_disarms_it(odd_one: TrialRecord) -> None:
    b = _tracker()
    same = "exception: KeyError: 'lr' (at t.py:3 in f)"
    for n in range(20):
        b.observe(odd_one if n == 2 else _trial(n, TrialState.FAILED, FailureKind.EXCEPTION, same))
    assert b.failure_stop() is None, "max_failure_rate (unset here) governs later failures"


def test_timeouts_never_fail_fast_and_max_failure_rate_still_applies() -> None:
    b = _tracker(max_failure_rate=0.5, failure_rate_min_trials=8)
    for n in range(7):
        b.observe(_trial(n, TrialState.FAILED, FailureKind.TIMEOUT, "timeout: exceeded trial_timeout of 1s"))
        assert b.failure_stop() is None
    b.observe(_trial(7, TrialState.FAILED, FailureKind.TIMEOUT, "timeout: exceeded trial_timeout of 1s"))
    assert (b.failure_stop() or "").startswith("8 of 8 finished trials failed")


def test_a_max_failure_rate_of_zero_stops_at_the_first_failed_trial() -> None:
    """0 was refused (it had to be > 0); TunedSearchCV's error_score="raise" stops its search so."""
    b = _tracker(max_failure_rate=0.0, failure_rate_min_trials=1)
    for n in range(3):
        b.observe(_trial(n, TrialState.COMPLETED))
        assert b.failure_stop() is None
    b.observe(_trial(3, TrialState.FAILED, FailureKind.EXCEPTION, "exception: KeyError: 'lr'"))
    assert (b.failure_stop() or "").startswith("1 of 4 finished trials failed (25% > max_failure_rate 0%)")


def test_a_resumed_run_that_has_completed_trials_does_not_fail_fast() -> None:
    b = _tracker()
    b.observe(_trial(0, TrialState.COMPLETED), replayed=True)
    for n in range(1, 10):
        b.observe(_trial(n, TrialState.FAILED, FailureKind.EXCEPTION, "exception: KeyError: 'lr'"))
    assert b.failure_stop() is None
    # a resumed run whose history only failed is judged on its own first trials (the code may have been fixed)
    fixed = _tracker()
    fixed.observe(_trial(0, TrialState.FAILED, FailureKind.EXCEPTION, "exception: KeyError: 'lr'"), replayed=True)
    for n in range(1, 1 + FAIL_FAST_TRIALS):
        fixed.observe(_trial(n, TrialState.FAILED, FailureKind.EXCEPTION, "exception: KeyError: 'lr'"))
    assert fixed.failure_stop() is not None


# -- versions ----------------------------------------------------------------------------------------------------

def test_python_dash_m_tunesmith_is_the_command(tmp_path: Path) -> None:
    """`python -m tunesmith --version` (the way to run it without the entry point on PATH) said "No module named
    tunesmith.__main__"."""
    proc = subprocess.run([sys.executable, "-m", "tunesmith", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, f"tunesmith {metadata.version('tunesmith')}\n"), proc.stderr


def test_version_flag_and_json_report(tmp_path: Path) -> None:
    proc = tunesmith("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"tunesmith {metadata.version('tunesmith')}\n"
    report = json.loads(tunesmith("version", "--json", cwd=tmp_path).stdout)
    migrations = Path(__file__).resolve().parents[1] / "src/tunesmith/storage/migrations/versions"
    newest = max(p.name.split("_")[0] for p in migrations.glob("[0-9]*.py"))
    assert report["schema_revision"] == newest
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    for dist, key in (("optuna", "optuna"), ("scikit-learn", "scikit-learn"), ("SQLAlchemy", "sqlalchemy"),
                      ("numpy", "numpy"), ("pydantic", "pydantic")):
        assert report[key] == metadata.version(dist)
    assert "store" not in report and not (tmp_path / "tunesmith.db").exists(), "no database opened"


def test_version_names_the_git_commit_tunesmith_runs_from(tmp_path: Path) -> None:
    """Every release says 0.1.0 (walk X: an SRE could not tell which host ran which): `version` names the commit of
    the checkout tunesmith is imported from, and whether its tracked files were modified; a copy of the package in
    another project's work tree (a virtual environment there) has none."""
    import importlib.util

    spec = importlib.util.find_spec("tunesmith")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).resolve().parent  # the tree the command imports, as this process does

    def git(*args: str, cwd: Path = package) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    modified = " (modified)" if git("status", "--porcelain", "--untracked-files=no") else ""
    report = json.loads(tunesmith("version", "--json", cwd=tmp_path).stdout)
    assert report["tunesmith_commit"] == git("rev-parse", "HEAD") + modified
    assert f"tunesmith_commit {report['tunesmith_commit']}\n" in tunesmith("version", cwd=tmp_path).stdout

    project = tmp_path / "project"
    shutil.copytree(package, project / "venv" / "tunesmith", ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "-q", cwd=project)
    copied = subprocess.run([sys.executable, "-m", "tunesmith.cli", "version", "--json"], cwd=tmp_path, text=True,
                            capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(project / "venv")})
    assert json.loads(copied.stdout)["tunesmith_commit"] is None, copied.stderr


def test_version_reads_a_stores_revision_without_creating_one(tmp_path: Path) -> None:
    missing = tunesmith("version", "--storage", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert missing.returncode == 2 and "no store at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    tune_in_process(_function_spec(tmp_path, "False", trials=1, workers=1), tmp_path / "tunesmith.db")  # set-up
    report = json.loads(tunesmith("version", "--json", "-s", "sqlite:///tunesmith.db", cwd=tmp_path).stdout)
    assert report["store"] == {"url": "sqlite:///tunesmith.db", "schema_revision": report["schema_revision"]}


def test_a_trial_module_that_configures_logging_does_not_show_the_stores_migrations(tmp_path: Path) -> None:
    _function_spec(tmp_path, "False", trials=1, workers=1)
    train = tmp_path / "train.py"
    train.write_text("import logging\nlogging.basicConfig(level=logging.INFO)\n" + train.read_text())
    proc = tunesmith("run", "fn.yaml", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "alembic" not in proc.stderr.lower(), proc.stderr


def test_a_memory_limit_below_a_workers_own_memory_is_refused_before_anything_runs(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """`memory_limit: 10MiB` is below what a worker process holds by itself (about 20 MiB): validate passed it with
    a warning that every trial would be killed, but only a worker's first trial (slow with its imports, so alive
    at a memory check) failed for memory; the quicker trials after it completed with a peak above the limit.
    `memory_limit: 2048` (meant as MiB) is 2048 bytes: the same. One `validate` over the three specs (each its own
    line); `run` of 10MiB a subprocess, of 2048 the command's code in this process (the same check, its own words)."""
    spec = yaml.safe_load(_function_spec(tmp_path, "False", trials=2).read_text())
    limits = {"fn10.yaml": ("10MiB", "got 10MiB; write 512MiB, 2GiB, ..."),
              "fn2048.yaml": (2048, "got 2048 bytes; a size without a unit is bytes: write 2048MiB, 2GiB, ...")}
    for file, (limit, _) in limits.items():
        (tmp_path / file).write_text(yaml.safe_dump({**spec, "executor": {"memory_limit": limit}}))
    (tmp_path / "fn.yaml").write_text(yaml.safe_dump({**spec, "executor": {"memory_limit": "64MiB"}}))
    validated = tunesmith("validate", *limits, "fn.yaml", cwd=tmp_path)
    assert validated.returncode == 2 and "Traceback" not in validated.stderr, validated.stdout + validated.stderr
    assert "fn.yaml" not in validated.stderr and "valid: fn.yaml: " in validated.stdout, "64MiB: nothing to say"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNESMITH_STORAGE", raising=False)  # the default store, ./tunesmith.db, as tunesmith() has it
    for file, (_, said) in limits.items():
        message = ("executor.memory_limit: must be at least 32MiB (a worker process alone holds about 20 MiB before "
                   f"the trial imports anything); {said}")
        assert f"error: {file}: {message}" in validated.stderr.splitlines(), validated.stderr
        if file == "fn10.yaml":
            proc = tunesmith("run", file, cwd=tmp_path)
            code, err = proc.returncode, proc.stderr
        else:
            code, _, err = cli_in_process("run", file)
        assert code == 2, err
        assert message in " ".join(err.split()), err
        assert "Traceback" not in err
        assert not (tmp_path / "tunesmith.db").exists(), "nothing recorded"
    proc = run_here("run", "fn.yaml", "--quiet", cwd=tmp_path)  # the limit enforced on its worker processes
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [t["state"] for t in trials_json("fn", tmp_path)] == ["completed", "completed"]


def test_an_inline_memory_limit_below_a_workers_memory_is_ignored_not_refused(tmp_path: Path) -> None:
    """The 32MiB minimum, about a worker process's own memory, refused `{kind: inline, memory_limit: 16MiB}` too,
    though inline runs no worker and enforces no memory_limit at all: it is warned about as ignored, as before."""
    spec = yaml.safe_load(_function_spec(tmp_path, "False", trials=1, workers=1).read_text())
    (tmp_path / "fn.yaml").write_text(yaml.safe_dump({**spec, "executor": {"kind": "inline",
                                                                           "memory_limit": "16MiB"}}))
    for command in ("validate", "run"):
        proc = tunesmith(command, "fn.yaml", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        said = " ".join((proc.stdout + proc.stderr).split())
        assert "memory_limit cannot be enforced in the coordinator's own process" in said, said
        assert "at least 32MiB" not in said and "Traceback" not in said
    assert [t["state"] for t in trials_json("fn", tmp_path)] == ["completed"]
