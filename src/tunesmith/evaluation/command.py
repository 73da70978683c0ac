"""Command trials: render ``{param}`` placeholders, run the command, read JSON lines from its stdout.

Placeholders: ``{name}`` for any parameter (shell-quoted; an *inactive* conditional parameter renders as an
empty string, ``''``), ``{args}`` for ``--name value`` of every active parameter, ``{trial_dir}``,
``{spec_dir}``, ``{seed}``, ``{number}``. ``{{`` and ``}}`` are literal braces. A brace pair that holds no
name (a parameter's, or a letter or ``_`` then letters, digits, ``_``, ``.``, ``-``) is the shell's or a
program's and goes to the shell as written: a brace group ``{ cmd; } 2> log``, find's ``{}``, ``{1..3}``. One
whose words are a name with spaces (``{ lr }``, ``{learning rate}``) is a mistyped placeholder and refused.

Output: each stdout line that is a JSON object is a message. One with ``"step"`` is an intermediate report
(its value: the first objective's metric, else ``"value"``); the last one without ``"step"`` is the result.
A step follows ``trial.report``'s rule: a whole number from 0 to 2**63-1, ``1.0`` included (it is step 1); a report
line that cannot be one (step ``1.5``, ``-1``, ``true``, ``"2"``, ``1e19``, or no number for its value) is left out,
and the first such line of a trial is said in its log. A value of ``NaN`` or ``Infinity`` is a report, as in
``trial.report``: a diverged training's (a scheduler stops the trial).
Every line, JSON or not, is kept in the trial log, stderr too; a failure's reason ends with stderr's last lines.

The command runs in the spec's folder (``trial.cwd: spec_dir``, the default) or in the trial's own folder
(``trial.cwd: trial_dir``); the trial's folder is ``{trial_dir}`` and ``$TUNESMITH_TRIAL_DIR`` either way.
"""

from __future__ import annotations

import codecs
import io
import itertools
import json
import locale
import os
import posixpath
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from tunesmith.errors import SpecError
from tunesmith.evaluation.context import CHECKPOINT, MAX_STEP, PARENT_CHECKPOINT, report_step
from tunesmith.evaluation.output_holders import Holders, pipe_inode, stop_holders, stop_tree
from tunesmith.evaluation.output_tail import OUTPUT_LABEL, STDERR_LABEL, with_tail
from tunesmith.evaluation.results import _to_float
from tunesmith.evaluation.shell_dollars import expanded_dollars, quoted_text
from tunesmith.records import Failure, FailureKind, ParamValue, Report
from tunesmith.space import Categorical, SearchSpace
from tunesmith.suggestions import closest, nearby_file

# an escaped brace, or a brace pair: a placeholder if it holds a name
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
# what a placeholder's name looks like: one that names nothing is a typo to refuse, anything else the shell's
_PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
BUILTIN_PLACEHOLDERS = ("args", "trial_dir", "spec_dir", "seed", "number")
_SCRIPT = re.compile(r"^(\./)?[\w.@+-][\w./@+-]*\.(py|sh|bash|zsh|R|r|jl|pl|rb|js|mjs|ts|lua)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")  # `CUDA_VISIBLE_DEVICES=0 python train.py`
# what sh itself runs, never found on PATH
_SHELL_WORDS = frozenset({"cd", "exec", "export", "source", ".", "eval", "set", "unset", "if", "for", "while",
                          "until", "case", "{", "(", "!", "ulimit", "umask", "trap", "command", "time", "exit", ":",
                          "read", "wait", "shift", "local", "return", "alias", "type", "getopts", "hash", "readonly"})
STDERR_LINES_KEPT = 20       # lines of stderr kept in memory for a failure's reason (all of it goes to the log)
STDERR_LINE_CHARS = 2000
# After the command exits, how long its stdout and stderr may stay open. What it wrote is in the pipes already; this
# is for a child finishing its last lines. A background process that holds them longer (`sleep 30 &`, a server, a
# daemon) would hold the trial as long as it lives (a timeout, or for ever): the trial's own is stopped (SIGTERM,
# then SIGKILL; see output_holders), our ends of the pipes are closed, and the trial ends by the command's own exit
# status and result line.
OUTPUT_DRAIN_S = 1.0
STOPPED_S = 1.0              # at most this long, what the holders said last is read into the log
PIPE_READ_BYTES = 65536      # one read of a pipe: what a full Linux pipe holds


def _is_placeholder(m: re.Match[str], names: set[str]) -> bool:
    """Whether a match of PLACEHOLDER is a placeholder: a brace pair holding a name, not ``{{``, ``}}`` or the
    shell's braces (``{ echo hi; }``, ``{}``)."""
    content = m.group(1)
    return content is not None and (content in names or content in BUILTIN_PLACEHOLDERS
                                    or _PLACEHOLDER_NAME.fullmatch(content) is not None)


def check_placeholders(command: str, parameters: Iterable[str], stored: bool = False) -> None:
    """Refuse a placeholder that names nothing, and a lone brace beside a name the command could mean.

    ``stored``: the command of a recorded experiment (resume, reproduce). Its lone braces went to the shell
    as written when it first ran, so they are not refused now: the experiment must stay resumable.

    Raises:
        SpecError: at ``trial.command``, naming the placeholder or the brace and the fix.
    """
    names = list(parameters)
    allowed = set(names) | set(BUILTIN_PLACEHOLDERS)
    # one scan keeps the first fault of each kind; the kinds are said in this order, wherever each one is
    after_dollar: SpecError | None = None
    unknown: SpecError | None = None
    spaced: SpecError | None = None
    lone: SpecError | None = None
    end = 0  # where the text after the last placeholder or escaped brace starts: its braces are lone ones
    for m in PLACEHOLDER.finditer(command):
        name = m.group(1)
        if _is_placeholder(m, allowed):
            if name not in allowed and unknown is None:
                unknown = _no_such_placeholder(name, names)
            if name not in allowed and after_dollar is None and m.start() > 0 and command[m.start() - 1] == "$":
                after_dollar = _no_such_placeholder_after_a_dollar(name, names)
        elif name is not None:
            # a pair that holds no name: its braces are lone braces here (`{lr }` is a placeholder with a stray space)
            if spaced is None and not stored:
                spaced = _placeholder_with_spaces(name, command, allowed)
            continue
        if lone is None and not stored:
            lone = _broken_placeholder(command, end, m.start(), allowed)
        end = m.end()
    if lone is None and not stored:
        lone = _broken_placeholder(command, end, len(command), allowed)
    for fault in (after_dollar, unknown, spaced, lone):
        if fault is not None:
            raise fault


def _no_such_placeholder(name: str, names: list[str]) -> SpecError:
    close = closest(name, [*names, *BUILTIN_PLACEHOLDERS])
    hint = f"did you mean {close!r}? " if close else ""
    return SpecError("trial.command", f"placeholder {{{name}}} names no parameter; {hint}parameters: "
                     f"{', '.join(names)}; built-ins: {', '.join(BUILTIN_PLACEHOLDERS)} "
                     "(write {{ and }} for literal braces)")


def _no_such_placeholder_after_a_dollar(name: str, names: list[str]) -> SpecError:
    """``${HOME}``: the shell's variable syntax around a name that is no parameter, refused as naming none (as any
    such placeholder is), with how to write the shell's variable. A parameter's or built-in's name after ``$``
    (``${lr}``) is not refused: ``$`` before a value is sometimes meant (awk's ``'{{print ${col}}}'``, a ``'$'``
    in single quotes), and a recorded experiment ran with it; ``dollar_warnings`` says what it renders. (A stored
    command is refused too: an unknown name could never have been recorded.)"""
    close = closest(name, [*names, *BUILTIN_PLACEHOLDERS])
    hint = f" (or, for the parameter {close!r}, write {{{close}}} without the '$')" if close else ""
    return SpecError("trial.command", f"placeholder {{{name}}} right after '$' names no parameter: for the shell "
                                      f"variable write ${{{{{name}}}}} (braces doubled){hint}; parameters: "
                                      f"{', '.join(names)}; built-ins: {', '.join(BUILTIN_PLACEHOLDERS)}")


def _shell_expanded_dollars(command: str, names: Iterable[str] | None = None) -> list[str]:
    """The names of the placeholders written ``${name}`` (of ``names`` and the built-ins; any name when None) whose
    ``$`` a shell expands (:func:`~tunesmith.evaluation.shell_dollars.expanded_dollars`: not in single quotes, not
    escaped, not in a comment or a quoted here-document, unless another shell runs that text: ``sh -c '...'``,
    ``ssh host '...'``, ``eval``). ``${x}`` renders the value after the ``$``: ``$6.0186``, which sh reads as ``$6``
    (empty) then ``.0186``, and ``$${x}`` renders ``$$6.0186``, the shell's process id then the value: either way the
    trial gets another value than the one recorded. Kept as written, the ``$`` is meant: awk's field
    ``'{{print ${col}}}'``."""
    expanded = expanded_dollars(command)
    allowed = None if names is None else {*names, *BUILTIN_PLACEHOLDERS}
    out = []
    for m in PLACEHOLDER.finditer(command):
        name = m.group(1)
        if (name and _PLACEHOLDER_NAME.fullmatch(name) and (allowed is None or name in allowed)
                and m.start() - 1 in expanded):
            out.append(name)
    return out


def check_dollar_placeholders(command: str, parameters: Iterable[str]) -> None:
    """Refuse ``${name}`` whose ``$`` the shell expands (:func:`_shell_expanded_dollars`): every trial would run
    with another value than the one recorded. Checked on a command given anew (a spec file, the Python API), not
    on a stored one, which ran with it and stays resumable and re-tunable (said by :func:`dollar_warnings`). A name
    that is no parameter's (``${HOME}``) is :func:`check_placeholders`' to refuse.

    Raises:
        SpecError: at ``trial.command``, naming both fixes.
    """
    names = _shell_expanded_dollars(command, parameters)
    if names:
        name = names[0]
        raise SpecError("trial.command", (
            f"${{{name}}} puts the value of {{{name}}} after a '$' the shell expands (6.0186 renders $6.0186, which "
            f"the shell reads as $6, empty, then .0186): the trial would get another value than the one recorded; "
            f"write {{{name}}} for the value, or ${{{{{name}}}}} (braces doubled) for the shell variable ${name} "
            f"(a '$' in single quotes or a quoted here-document is kept as written, unless another shell runs that "
            f"text: sh -c '...', ssh host '...', eval); got {command!r}"))


def dollar_warnings(command: str) -> list[str]:
    """What a stored command's ``${lr}`` whose ``$`` the shell expands renders (``$0.49``: ``$0`` expanded): a
    recorded experiment ran with it, so it is said, not refused (:func:`check_dollar_placeholders` refuses it in a
    command given anew). Inside single quotes (awk's ``'{{print ${col}}}'``) the ``$`` is meant: nothing is said."""
    return [f"trial.command has ${{{name}}}: the value follows a '$' (as $0.5), which the shell expands "
            f"unless quoted; for the value alone write {{{name}}}, for a shell variable ${{{{{name}}}}}"
            for name in _shell_expanded_dollars(command)]


_NAME_AFTER = re.compile(r"[A-Za-z0-9_]+")
_NAME_BEFORE = re.compile(r"[A-Za-z0-9_]+\Z")  # not `$`: it matches before a last newline, `{ lr\n}` is a brace group


def _placeholder_with_spaces(content: str, command: str, names: set[str]) -> SpecError | None:
    """A brace pair whose words, joined by ``_``, are a parameter's or built-in's name: ``{ lr }``, ``{learning
    rate}``. Its content is no name, so it would go to the shell as written and every trial would get the text
    ``{ lr }``. The shell's brace group ends its last command with ``;`` or a newline before ``}`` (``{ lr; }``,
    ``{ cmd\n}``), so it is never one of these."""
    name = "_".join(content.split())
    if "\n" in content or content in names or name not in names:
        return None
    fix = f"remove the spaces: {{{name}}}" if name == content.strip() else f"write {{{name}}}"
    return SpecError("trial.command", f"placeholder {{{content}}} holds spaces; {fix} "
                                      f"(write {{{{ and }}}} for literal braces); got {command!r}")


def _broken_placeholder(command: str, start: int, stop: int, names: set[str]) -> SpecError | None:
    """A lone brace (one no placeholder matched) right beside a parameter's or built-in's name: ``{lr`` or
    ``lr}``, a placeholder with a brace missing, which would reach the shell as written and fail every trial
    without saying why. Any other lone brace is the shell's or a program's own syntax and is left alone: a
    brace group ``{ cmd; } 2> f``, an awk program ``'{print $1 * {scale}}'``."""
    for i in range(start, stop):
        if command[i] == "{":
            after = _NAME_AFTER.match(command, i + 1)
            broken = after is not None and after.group(0) in names
            fix = "close the placeholder, as in {x},"
        elif command[i] == "}":
            before = _NAME_BEFORE.search(command, 0, i)
            broken = before is not None and before.group(0) in names
            fix = "open the placeholder, as in {x},"
        else:
            continue
        if broken:
            return SpecError("trial.command", f"a lone {command[i]!r} at character {i + 1}: {fix} or write "
                                              f"{command[i] * 2} for a literal brace; got {command!r}")
    return None


def quoted_placeholder_warnings(command: str, space: SearchSpace | None) -> list[str]:
    """What ``"{data}"`` and ``'{data}'`` do: the value is shell-quoted already (``'a b'``), so in single quotes it
    splits into words and in double quotes the program gets its quotes as part of it (:func:`quoted_text`). Said for
    the placeholders whose value can be quoted: a parameter with a choice that needs quoting (a space, a quote, an
    empty or null one), a conditional one (inactive, it renders ``''``), ``{args}`` (several words), and a folder
    (``{trial_dir}``, ``{spec_dir}``: a path with a space). Numbers and plain words render bare, quoted or not, and
    early trials pass: the first value with a space went to the program wrong, without a word."""
    quoted = quoted_text(command)
    names = [] if space is None else list(space.domains)
    said: list[str] = []
    for m in PLACEHOLDER.finditer(command):
        name = m.group(1)
        if (name and name not in said and m.start() in quoted
                and (name in ("args", "trial_dir", "spec_dir") or (name in names and _may_be_quoted(space, name)))):
            said.append(name)
    if not said:
        return []
    shown = ", ".join(f"{{{name}}}" for name in said)
    return [f"trial.command has {shown} inside quotes: a placeholder is shell-quoted already, so a value with a space "
            f"or a quote ('a b') would reach the program split into words or with the quotes as part of it; write "
            f"{shown} outside quotes (\"{{{said[0]}}}/out\" as {{{said[0]}}}/out; a script for sh -c takes "
            f"it as an argument: sh -c 'train --data \"$1\"' sh {{{said[0]}}})"]


def _may_be_quoted(space: SearchSpace | None, name: str) -> bool:
    """Whether the parameter ``name`` can render as a shell-quoted word: inactive (``''``), or a choice that needs
    quoting."""
    domain = None if space is None else space.domains.get(name)
    if domain is None:
        return False
    if domain.when:
        return True
    return isinstance(domain, Categorical) and any(shlex.quote(_text(c)) != _text(c) for c in domain.choices)


def command_warnings(command: str | None, cwd_choice: str, spec_dir: str | None,
                     env: Mapping[str, str] | None = None, runs_here: bool = True,
                     space: SearchSpace | None = None) -> list[str]:
    """What ``validate`` and ``run`` say about a command before its first trial fails on it: a placeholder after a
    ``$`` (``dollar_warnings``) or in quotes (``quoted_placeholder_warnings``, of ``space``'s parameters), and the
    scripts it names by a relative path (``train.py``, ``./run.sh``) that are not where it runs. A guess from its
    words.

    ``runs_here``: False when the trials run on other machines (a Ray cluster named by ``executor.address``). Their
    PATH is not this machine's, so a program not found here says nothing about them: that guess is not made. (The
    scripts are still looked for here: trials find them at the same paths on every node.)"""
    if command is None:
        return []
    dollars = dollar_warnings(command) + quoted_placeholder_warnings(command, space)
    spec_dir = spec_dir or "."
    # a block-scalar command may open with comment lines: the shell skips them, so does the guess
    code = "\n".join(line for line in command.splitlines() if not line.lstrip().startswith("#"))
    try:
        words = shlex.split(code)
    except ValueError:  # unbalanced quotes: the shell says so in the first trial's reason
        return dollars
    # after a `cd` a relative script is relative to another folder (`(cd sub && python train.py)`): not guessed
    before_cd = itertools.takewhile(lambda w: w.lstrip("(") != "cd", words)
    scripts = [w for w in before_cd if "{" not in w and _SCRIPT.match(w) and not os.path.isabs(w)]
    if cwd_choice == "trial_dir":
        return dollars + [f"trial.command names {w!r} relative to the trial's own folder (trial.cwd: trial_dir), which "
                f"starts empty; write {{spec_dir}}/{posixpath.normpath(w)} for the one in the spec's folder"
                for w in scripts]  # (normpath: `./train.sh` is `{spec_dir}/train.sh`, not `{spec_dir}/./train.sh`)
    return dollars + [f"trial.command names {w!r}, which is not in the spec's folder {spec_dir}, where commands run"
            f"{_other_script_hint(w, spec_dir)}"
            for w in scripts if not os.path.exists(os.path.join(spec_dir, w))] + _program_warnings(
                words, spec_dir, (env or {}).get("PATH"), runs_here)


def _other_script_hint(script: str, run_dir: str) -> str:
    """``; did you mean 'train.py'?`` for a relative script that is not there (``trian.py``) when its folder holds
    a file of a name like it, spelt as the command spells the missing one (``sub/run.sh`` for ``sub/rnu.sh``)."""
    close = nearby_file(Path(run_dir) / script)
    return f"; did you mean {os.path.join(os.path.dirname(script), close)!r}?" if close else ""


def _program_warnings(words: list[str], run_dir: str, search_path: str | None, runs_here: bool) -> list[str]:
    """What the shell would say of the program the command starts with (`/bin/sh: 1: trian: not found`, `Permission
    denied`), said before the first trial: a bare name found on no folder of ``search_path`` (trial.env's PATH,
    else this process's) when the trials run on this machine, a relative one that is not executable."""
    assignments = list(itertools.takewhile(_ASSIGNMENT.match, words))
    program = words[len(assignments)] if len(assignments) < len(words) else None
    if (program is None or any(c in program for c in "{$`*?[") or program in _SHELL_WORDS
            or program.startswith("(")):  # a subshell: `(cd sub && python train.py)`
        return []
    if "/" not in program:
        if any(a.startswith("PATH=") for a in assignments) or not runs_here:  # its own PATH, or another machine's
            return []
        # "on this machine": where the trials run (the process executor, a private Ray cluster)
        return [] if shutil.which(program, path=search_path) else [
            f"trial.command runs {program!r}, which is not on PATH on this machine"]
    path = program if os.path.isabs(program) else os.path.join(run_dir, program)
    if os.path.isfile(path) and not os.access(path, os.X_OK):
        interpreter = "python" if program.endswith(".py") else "sh"
        return [f"trial.command runs {program!r}, which is not executable: chmod +x {program}, or run it as "
                f"{interpreter} {program}"]
    return []


def render_command(command: str, params: dict[str, ParamValue], all_names: Iterable[str], trial_dir: str,
                   spec_dir: str | None, seed: int, number: int) -> str:
    names = set(all_names)

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        if not _is_placeholder(m, names):
            return m.group(0)  # the shell's braces: `{ echo hi; }`, `{}`
        key = m.group(1)
        if key in params:
            return shlex.quote(_text(params[key]))
        if key in names:
            return "''"  # an inactive conditional parameter
        if key == "args":
            return " ".join(f"--{k} {shlex.quote(_text(v))}" for k, v in params.items())
        builtin = {"trial_dir": trial_dir, "spec_dir": spec_dir or ".", "seed": str(seed), "number": str(number)}
        return shlex.quote(builtin[key])

    return PLACEHOLDER.sub(sub, command)


def _text(v: ParamValue) -> str:
    if isinstance(v, float):
        return repr(v)
    return "" if v is None else str(v)


def run_command(command: str, cwd: str, env: dict[str, str], log: Any, metrics: tuple[str, ...],
                on_report: Callable[[Report], None], prune_requested: Callable[[], bool],
                term_grace: float = 5.0, secrets: Iterable[str] = (),
                on_ignored: Callable[[str], None] = lambda _note: None,
                log_lock: threading.Lock | None = None,
                on_note: Callable[[str], None] = lambda _note: None) -> tuple[Any, Failure | None, bool]:
    """Run ``command`` in a shell; returns (last result object or None, failure or None, pruned).

    Stdout and stderr both go to ``log``, each line written under ``log_lock`` (the caller's, where it writes to
    ``log`` as well while the command runs); a failure's message ends with the last lines of stderr, with
    ``secrets`` (and anything that looks like a password or token) redacted. Each report line left out is given to
    ``on_ignored``, with why, for the caller to say; background processes that kept the output open past
    OUTPUT_DRAIN_S after the command exited, stopped or not, are told to ``on_note``.
    """
    proc = subprocess.Popen(
        command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, bufsize=0,  # read by _PipeLines, as far as each pipe holds
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _PipeLines(proc.stdout), _PipeLines(proc.stderr)
    result: Any = None
    pruned = False
    counting = True  # stdout lines are the command's results and reports (not after a prune; see the loop's rule)
    stop_watch = threading.Event()
    lock = log_lock or threading.Lock()  # the caller's notes share the log with the output
    stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
    stdout_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)  # what it printed instead of a result, if it never did

    def watch_prune() -> None:
        nonlocal pruned
        while not stop_watch.wait(0.1):
            if pruned or prune_requested():  # (pruned: decided on a report line, in take)
                pruned = True
                _terminate(proc, term_grace)
                return

    def copy(lines: list[str]) -> None:
        with lock:
            for line in lines:
                log.write(line)
            log.flush()  # in the file at once: a trial killed for its timeout keeps what it said last

    def flush_log() -> None:
        """What ``take`` wrote (it writes each line without flushing), in the file."""
        with lock:
            log.flush()

    def take(line: str) -> None:
        """A stdout line: logged; while ``counting``, a result or a report if it is one."""
        nonlocal counting, pruned, result
        with lock:
            log.write(line)
        if not counting:
            return
        stdout_tail.append(line[-STDERR_LINE_CHARS:])
        stripped = line.strip()
        if not (stripped.startswith("{") and stripped.endswith("}")):
            return
        try:
            message = json.loads(stripped)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        if "step" not in message:
            result = message
            return
        report = _report_of(message, metrics[0])
        if isinstance(report, str):
            on_ignored(f"a report line was ignored, {stripped[:STDERR_LINE_CHARS]}: {report}; later ignored lines "
                       "of this trial are not told")
            return
        flush_log()  # the lines before it in the file, as it is decided on
        on_report(report)
        if prune_requested():  # decided on this very report: later lines count for nothing; the watcher stops it
            pruned, counting = True, False

    def read(pipe: _PipeLines) -> None:
        lines = pipe.read()
        if pipe.ended:
            selector.unregister(pipe.fd)
        if pipe is err:
            stderr_tail.extend(line[-STDERR_LINE_CHARS:] for line in lines)
            copy(lines)
            return
        for line in lines:
            take(line)
        flush_log()

    # Both pipes are read here, in this thread, as far as they hold (no thread, no queue: a command that prints
    # faster than its lines are logged and parsed waits for us, as a pipe makes a writer wait, and memory stays
    # flat). Once the command's own process has exited, all it wrote is in the pipes: its results and reports are
    # the stdout lines read until the first moment stdout has nothing ready, or until OUTPUT_DRAIN_S has passed.
    # A process it left in the background may write on: those later lines are logged, never a result or a
    # report; and OUTPUT_DRAIN_S after the exit the reading stops, whoever still holds the pipes.
    watcher = threading.Thread(target=watch_prune, daemon=True)
    watcher.start()
    selector = selectors.DefaultSelector()
    exited_at: float | None = None
    try:
        for pipe in (out, err):
            selector.register(pipe.fd, selectors.EVENT_READ, pipe)
        while selector.get_map():
            if exited_at is None and proc.poll() is not None:
                exited_at = time.monotonic()
            wait = 0.1  # then the exit is looked for again
            if exited_at is not None:
                wait = exited_at + OUTPUT_DRAIN_S - time.monotonic()
                if wait <= 0:
                    counting = False  # (a flood never let stdout run dry: what comes now is not the command's)
                    break  # the command is gone, its output still held
                if counting:
                    wait = 0.0  # what the pipes hold now, no more
            ready = [key.data for key, _ in selector.select(wait)]
            if exited_at is not None and counting and out not in ready:
                for line in out.rest():  # its last words, without a newline
                    take(line)
                counting = False  # the command's own lines are read
            for pipe in ready:
                read(pipe)
        if selector.get_map():
            # the command runs in our session (not a new one: a Ctrl-C at the terminal reaches it), and so do the
            # processes it started, unless they left it
            holders = stop_holders([pipe_inode(pipe.fd) for pipe in (out, err)], os.getsid(0))
            until = time.monotonic() + STOPPED_S  # what they said last, as far as it is there
            while selector.get_map() and time.monotonic() < until and (ready := selector.select(0)):
                for key, _ in ready:
                    read(key.data)
            _say_holders(holders, bool(selector.get_map()), on_note)
        for line in out.rest():
            take(line)
        copy(err.rest())
    except OSError:  # the log refused a line (a full disk): the attempt ends here, and the command with it
        _terminate(proc, term_grace)
        proc.wait()
        raise
    finally:
        selector.close()
        for pipe in (out, err):
            pipe.close()  # always: no reader, no descriptor left in a worker that runs trial after trial
        stop_watch.set()
    code = proc.wait()
    watcher.join()
    if pruned:
        return result, None, True
    failure = _exit_failure(code, result is None, metrics[0])
    if failure is None:
        return result, None, False
    if failure.kind is FailureKind.INVALID_RESULT and not "".join(stderr_tail).strip():
        # it ran to the end quietly: what it printed on stdout (`loss: 0.3`, a dict's repr) is why, or that it
        # printed nothing at all
        if not "".join(stdout_tail).strip():
            nothing = f"command printed nothing on stdout ({_print_result(metrics[0])})"
            return result, Failure(failure.kind, nothing), False
        return result, with_tail(failure, OUTPUT_LABEL, "".join(stdout_tail), secrets), False
    return result, with_tail(failure, STDERR_LABEL, "".join(stderr_tail), secrets), False


class _PipeLines:
    """A pipe read as far as it holds, in lines: what one read finds, decoded as a text-mode pipe is (the locale's
    encoding, ``\\r\\n`` and ``\\r`` read as ``\\n``), an undecodable byte as U+FFFD."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.fd = stream.fileno()
        self.ended = False
        os.set_blocking(self.fd, False)
        decoder = codecs.getincrementaldecoder(locale.getpreferredencoding(False))(errors="replace")
        self._decoder = io.IncrementalNewlineDecoder(decoder, translate=True)
        self._line: list[str] = []  # the line under way, in pieces (one long line is joined once)

    def read(self) -> list[str]:
        """The lines one read ends; at the pipe's end, the last one too, whether or not it has its newline."""
        try:
            data = os.read(self.fd, PIPE_READ_BYTES)
        except BlockingIOError:
            return []
        self.ended = not data
        *ended, under_way = self._decoder.decode(data, final=self.ended).split("\n")
        if ended:
            ended[0] = "".join(self._line) + ended[0]
            self._line = []
        if under_way:
            self._line.append(under_way)
        return [line + "\n" for line in ended] + (self.rest() if self.ended else [])

    def rest(self) -> list[str]:
        """The line under way, as far as it is read, and from now on no longer under way."""
        line = "".join(self._line)
        self._line = []
        return [line] if line else []

    def close(self) -> None:
        self.stream.close()


def _say_holders(holders: Holders, still_open: bool, on_note: Callable[[str], None]) -> None:
    """Say who kept the output open OUTPUT_DRAIN_S after the command exited: stopped, left running, or not found."""
    end = "and the trial ends by the command's own exit status and result"
    if holders.stopped:
        one = len(holders.stopped) == 1
        on_note(f"{'a background process' if one else 'background processes'} the command started "
                f"({', '.join(holders.stopped)}) kept the trial's output open after the command exited; tunesmith "
                f"stopped {'it' if one else 'them'} after {OUTPUT_DRAIN_S:g}s, {end}")
    if holders.left:
        one = len(holders.left) == 1
        on_note(f"{'a process' if one else 'processes'} the command started that left its session "
                f"({', '.join(holders.left)}) kept the trial's output open after the command exited; a daemon "
                f"(setsid), which others may use, is not tunesmith's to stop: {'it was' if one else 'they were'} "
                f"left running and tunesmith stopped reading after {OUTPUT_DRAIN_S:g}s, {end}")
    if still_open and not holders.stopped and not holders.left:  # none found (no /proc, another user's)
        on_note(f"a background process the command started kept the trial's output open after the command exited; "
                f"tunesmith could not find it to stop it and stopped reading after {OUTPUT_DRAIN_S:g}s, {end}")


def _report_of(message: dict[str, Any], metric: str) -> Report | str:
    """The report a ``"step"`` line makes, or why it makes none: the step rule of ``trial.report``
    (:func:`report_step`: a whole float is that step, up to MAX_STEP); json.loads takes NaN and true, and neither is
    a report."""
    raw = message.get(metric, message.get("value"))
    value = _to_float(raw)
    step = report_step(message["step"])
    if step is None:
        given = message["step"]
        if isinstance(given, int | float) and not isinstance(given, bool) and given > MAX_STEP:
            return f'its "step" is above {MAX_STEP}, the largest step a report can have'
        example = json.dumps({"step": 3, metric: raw if value is not None else 0.93})
        return f'its "step" must be a whole number >= 0, as in {example}'
    if value is None:
        example = json.dumps({"step": step, metric: 0.93})
        return f'it has no number for {metric!r} (the objective metric) or "value", as in {example}'
    return Report(step, value)  # NaN and infinities too (json.loads reads NaN, Infinity): the rule of trial.report


def _exit_failure(code: int, no_result: bool, metric: str) -> Failure | None:
    if code < 0:
        return Failure(FailureKind.CRASHED, f"command killed by signal {_signame(-code)}")
    if code > 128 and code - 128 < 65:
        return Failure(FailureKind.CRASHED, f"command exited with code {code} (signal {_signame(code - 128)})")
    if code != 0:
        return Failure(FailureKind.EXIT_CODE, f"command exited with code {code}")
    if no_result:
        return Failure(FailureKind.INVALID_RESULT, f"command printed no JSON result line ({_print_result(metric)})")
    return None


def _print_result(metric: str) -> str:
    return "print e.g. {\"" + metric + "\": 0.93}"


def _terminate(proc: subprocess.Popen[Any], grace: float) -> None:
    """Stop a pruned command: the shell and what runs under it (SIGTERM, SIGKILL ``grace`` s later)."""
    if proc.poll() is None:
        stop_tree(proc.pid, grace)


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return str(n)


def command_env(base: dict[str, str], job_env: dict[str, str], params: dict[str, ParamValue], number: int,
                seed: int, trial_dir: str, attempt: int) -> dict[str, str]:
    """``base`` with ``job_env`` (trial.env) over it and the trial's own variables: its parameters, number, seed,
    attempt, folder, and the checkpoint folders a command writes and reads (``trial.save_checkpoint``'s and
    ``trial.load_checkpoint``'s: a retry finds its own, a PBT child its parent's copy beside it)."""
    env = dict(base)
    env.update(job_env)
    env["TUNESMITH_PARAMS"] = json.dumps(params)
    env["TUNESMITH_TRIAL_NUMBER"] = str(number)
    env["TUNESMITH_SEED"] = str(seed)
    env["TUNESMITH_ATTEMPT"] = str(attempt)
    env["TUNESMITH_TRIAL_DIR"] = trial_dir
    env["TUNESMITH_CHECKPOINT_DIR"] = os.path.join(trial_dir, CHECKPOINT)
    env["TUNESMITH_PARENT_CHECKPOINT_DIR"] = os.path.join(trial_dir, PARENT_CHECKPOINT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def default_env() -> dict[str, str]:
    return dict(os.environ)
