"""The last lines a failed trial wrote, appended to its recorded reason: short, on one line, secrets redacted.

A failure reason reads ``<what happened>; stderr: <last stderr lines>`` for a command trial (its stderr is a
stream of its own) and ``<what happened>; output: <last log lines>`` for a function trial (a worker points the
function's stdout and stderr at the same log, and separating them would cost every trial a pipe). Lines are
joined with `` | ``. The tail is read only once an attempt has failed, so a trial that succeeds pays nothing;
the whole output stays in the trial log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import replace

from tunesmith.records import Failure
from tunesmith.redaction import redact
from tunesmith.terminal_text import CONTROL_CHARACTERS

TAIL_LINES = 4           # at most this many of the last non-empty lines ...
TAIL_CHARS = 300         # ... and at most this many characters of them
READ_BYTES = 8192        # how much of the end of a log is read to find them
LINE_SEPARATOR = " | "
STDERR_LABEL = "; stderr: "
OUTPUT_LABEL = "; output: "

# Every escape sequence a terminal acts on (ECMA-48, 7- and 8-bit), then any control character left alone but a tab.
# Only CSI sequences were taken out: a window title (OSC 0) and a link to any URL (OSC 8) reached `run`'s failure
# line. A string's text (a title, a URL) goes with it; one that never ends runs to the end of its line, as it would
# on a terminal.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"                                         # CSI: colours, cursor, screen clear
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"                                                          # other escapes: charsets, modes
    rf"|(?!\t)[{CONTROL_CHARACTERS}]"                                               # a control character alone
)


def summarize(text: str, secrets: Iterable[str] = ()) -> str:
    """The last few non-empty lines of ``text`` on one line, redacted and cut to TAIL_CHARS (from the left)."""
    lines = [s for s in (_ANSI.sub("", line).strip() for line in text.splitlines()) if s]
    tail = redact(LINE_SEPARATOR.join(lines[-TAIL_LINES:]), secrets)
    return tail if len(tail) <= TAIL_CHARS else "..." + tail[-(TAIL_CHARS - 3):]


def read_tail(path: str, start: int = 0) -> str:
    """The end of the file at ``path`` from byte ``start`` on (at most READ_BYTES of it); '' if unreadable.

    Where the read begins inside a line, that line is kept, marked as cut (``...``): it may be the only one (5 MB
    printed without a newline), and its end is the output's last words. It was dropped, and with it every word.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            begin = max(start, size - READ_BYTES)
            f.seek(begin)
            data = f.read()
    except OSError:
        return ""
    if begin == start:
        return data.decode("utf-8", errors="replace")
    cut = len(data) - len(data.lstrip(bytes(range(0x80, 0xC0))))  # the rest of a character cut in two
    return "..." + data[cut:].decode("utf-8", errors="replace")


def with_tail(failure: Failure, label: str, output: str, secrets: Iterable[str] = ()) -> Failure:
    """``failure`` whose message ends with the summary of ``output``; unchanged when there is none."""
    tail = summarize(output, secrets)
    if not tail:
        return failure
    return replace(failure, message=f"{failure.message}{label}{tail}")


def reason_without_output(reason: str) -> str:
    """What happened, without the output a function trial printed: ``exception: KeyError: 'lr' (at ...)``.

    A command trial's reason keeps the last line of its stderr (``command exited with code 2`` says nothing
    alone). Trials that fail the same way give the same answer, whatever else they printed.
    """
    head, found, tail = reason.partition(STDERR_LABEL)
    if found:
        return head + found + tail.rsplit(LINE_SEPARATOR, 1)[-1]
    return reason.partition(OUTPUT_LABEL)[0]
