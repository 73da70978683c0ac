"""`${x}` is refused exactly where a shell expands its `$`, checked against a real /bin/sh running the rendered command.

tunesmith substitutes `{x}` before the shell runs and leaves the `$` before it: `${lr}` renders `$0.5`. The check
took a `$` in single quotes as kept as written (right for awk's `'{{print ${col}}}'`) but missed the shells that
expand it again after the outer one passed it on: `bash -c '...'`, `sh -c`, `ssh host '...'`, `docker run ... sh -c
'...'`, `eval '...'`, a here-document fed to a shell; it missed that `$${x}` renders `$$0.5` (the process id, then the
value) and that an unquoted here-document expands a `$` in quotes; and it refused a `$` in a quoted here-document
(`<<'EOF'`), which is kept as written (an awk program there). Each case runs: the `$` is the shell's exactly when
the rendered `$0.5` does not come out as written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tunesmith.errors import SpecError
from tunesmith.evaluation.command import check_dollar_placeholders, render_command

# ssh: the remote user's shell runs the words after the host, joined, with -c (no words: the script on stdin);
# docker run IMAGE CMD...: runs CMD. Stand-ins that do just that, on this machine.
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -p|-i|-o) shift 2 ;; -*) shift ;; *) break ;; esac; done
shift
if [ $# -eq 0 ]; then exec sh; else exec sh -c "$*"; fi
"""
FAKE_DOCKER = '#!/bin/sh\nshift 2\nexec "$@"\n'

CASES = [
    # (command, refused): refused exactly when the shell mangles the value
    ("echo ${lr}", True),
    ("bash -c 'echo ${lr}'", True),                                  # bash expands what sh kept
    ("sh -c 'echo --lr ${lr}'", True),
    ("bash -o pipefail -c 'echo ${lr}'", True),
    ("timeout 9 sh -c 'echo ${lr}'", True),
    ("ssh host 'echo ${lr}'", True),                                 # the remote shell expands it
    ("ssh -p 22 host echo '${lr}'", True),
    ("docker run img sh -c 'echo ${lr}'", True),
    ("eval 'echo ${lr}'", True),
    ("echo $${lr}", True),                                           # $$0.5: the process id, then 0.5
    ("echo \\$${lr}", True),                                         # a literal '$', then $0.5 expanded
    ("cat <<EOF\n'${lr}'\nEOF", True),                               # quotes are text in an unquoted heredoc
    ("bash <<'EOF'\necho ${lr}\nEOF", True),                         # a quoted heredoc, but a shell's script
    ("ssh host <<'EOF'\necho ${lr}\nEOF", True),
    ("bash 2> /dev/null <<'EOF'\necho ${lr}\nEOF", True),           # a redirection's target is no script file
    ("sh -c -- 'echo ${lr}'", True),                                 # `--` ends the options: the script follows
    ("bash -c -- 'echo ${lr}'", True),
    ("sh -c - 'echo ${lr}'", True),                                  # `-`: as `--`
    ("sh -c -e 'echo ${lr}'", True),                                 # options after -c: the script follows them
    ("bash --rcfile /dev/null -c 'echo ${lr}'", True),               # --rcfile's value is no script file
    ("bash --init-file /dev/null -c 'echo ${lr}'", True),
    ("bash +O extglob -c 'echo ${lr}'", True),                       # +O/-O/+o/-o take a value
    ("sh +o noglob -c 'echo ${lr}'", True),
    ("bash -O extglob -c 'echo ${lr}'", True),
    ("echo '${lr}'", False),                                         # kept as written
    ("awk 'BEGIN {{ print \"${lr}\" }}'", False),                    # awk's: single-quoted
    ("cat <<'EOF'\n${lr}\nEOF", False),                              # a quoted heredoc keeps its body
    ("awk -f /dev/stdin <<'EOF'\nBEGIN {{ print \"${lr}\" }}\nEOF", False),  # an awk program in one
    ("cat <<-\"EOF\"\n\t${lr}\n\tEOF\necho done", False),
    ("sh -c 'echo \\${lr}'", False),                                 # escaped for the inner shell
    ("sh show.sh '${lr}'", False),                                   # a script file gets it as an argument
    ("sh -- show.sh '${lr}'", False),
    ("bash --rcfile /dev/null show.sh '${lr}'", False),
    ("bash -o pipefail -- show.sh '${lr}'", False),
    ("echo --mode eval '${lr}'", False),                             # `eval` as a word, not the command
    ("echo \"$(echo '${lr}')\"", False),                             # single quotes in a command substitution
]


@pytest.mark.parametrize("command,refused", CASES)
def test_a_dollar_before_a_placeholder_is_refused_where_the_shell_expands_it(tmp_path: Path, command: str,
                                                                             refused: bool) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("ssh", FAKE_SSH), ("docker", FAKE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "show.sh").write_text('echo "$1"\n')
    rendered = render_command(command, {"lr": 0.5}, ("lr",), str(tmp_path), str(tmp_path), 1, 0)
    ran = subprocess.run(rendered, shell=True, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30,
                         env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert ran.returncode == 0, (rendered, ran.stderr)
    kept = "$0.5" in ran.stdout
    assert kept is not refused, (rendered, ran.stdout)   # the premise: what the shell really does
    if refused:
        with pytest.raises(SpecError, match=r"\$\{lr\} puts the value of \{lr\} after a '\$' the shell expands"):
            check_dollar_placeholders(command, ["lr"])
    else:
        check_dollar_placeholders(command, ["lr"])


# A placeholder in quotes, `"{x}"` as a shell user writes it: the value is shell-quoted already. (command, the argument
# the program should get, warned): warned exactly when the program does not get it, run by a real /bin/sh.
QUOTED_CASES = [
    ("sh show.sh {x}", "{v}", False),
    ("sh show.sh --data={x}", "--data={v}", False),
    ('sh show.sh "x"{x}', "x{v}", False),                            # beside quoted text, not in it
    ('sh show.sh "{x}"', "{v}", True),                               # its quotes are text in double quotes
    ("sh show.sh '{x}'", "{v}", True),                               # its quotes end the single ones
    ('sh show.sh "--data={x}"', "--data={v}", True),
    ('sh -c "sh show.sh {x}"', "{v}", True),                         # a quoted ' ('"'"') ends the double quotes
    ("sh -c 'sh show.sh \"$1\"' sh {x}", "{v}", False),               # the value as the script's argument
    ("sh -c 'sh show.sh {x}'", "{v}", True),                         # broken before the inner shell
    ("sh -c \"sh show.sh '{x}'\"", "{v}", True),                     # in quotes for the inner shell
    ("bash <<EOF\nsh show.sh {x}\nEOF", "{v}", False),               # a here-document a shell reads
    ("sh show.sh \"$(cat <<'EOF'\n{x}\nEOF\n)\"", "{v}", True),      # a here-document cat reads
    ('echo "$(sh show.sh {x})"', "{v}", False),                      # unquoted in a command substitution
]
QUOTED_VALUE = "a b'c"


@pytest.mark.parametrize("command,expected,warned", QUOTED_CASES)
def test_a_placeholder_in_quotes_is_warned_about_where_the_program_would_not_get_its_value(
        tmp_path: Path, command: str, expected: str, warned: bool) -> None:
    """`--data "{data}"` passed `'data dir/a b.npz'` with its quotes, and `'{data}'` split it in three words, while
    numbers (rendered bare) passed: `validate` said nothing."""
    from tunesmith.evaluation.command import command_warnings
    from tunesmith.space import Categorical, Float, SearchSpace

    (tmp_path / "show.sh").write_text('for a in "$@"; do printf "[%s]\\n" "$a"; done\n')
    rendered = render_command(command, {"x": QUOTED_VALUE}, ("x",), str(tmp_path), str(tmp_path), 1, 0)
    ran = subprocess.run(rendered, shell=True, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30)
    got = f"[{expected.format(v=QUOTED_VALUE)}]" in ran.stdout.splitlines()
    assert got is not warned, (rendered, ran.stdout, ran.stderr)   # the premise: what the shell really does
    space = SearchSpace.from_domains({"x": Categorical(choices=[QUOTED_VALUE, "plain"]),
                                      "lr": Float(low=0.1, high=1.0)})
    said = [w for w in command_warnings(command, "spec_dir", str(tmp_path), space=space) if "inside quotes" in w]
    assert bool(said) is warned, said
    if warned:
        assert said == ["trial.command has {x} inside quotes: a placeholder is shell-quoted already, so a value with "
                        "a space or a quote ('a b') would reach the program split into words or with the quotes as "
                        "part of it; write {x} outside quotes (\"{x}/out\" as {x}/out; a script for sh -c takes it "
                        "as an argument: sh -c 'train --data \"$1\"' sh {x})"]
    # a number renders bare: in quotes or not, it arrives as written, and nothing is said
    assert not [w for w in command_warnings(command.replace("{x}", "{lr}"), "spec_dir", str(tmp_path), space=space)
                if "inside quotes" in w]


@pytest.mark.parametrize("command", ['python train.py --out "{trial_dir}/model"', "python train.py '{args}'",
                                     'python train.py --spec "{spec_dir}"'])
def test_a_folder_or_args_in_quotes_is_warned_about(command: str) -> None:
    from tunesmith.evaluation.command import command_warnings

    (said,) = [w for w in command_warnings(command, "spec_dir", ".") if "inside quotes" in w]
    assert said.startswith("trial.command has {") and "outside quotes" in said
