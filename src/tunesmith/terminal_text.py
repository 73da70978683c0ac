"""Text from a spec or a trial (a parameter's name, a categorical choice, a metric, a trial's failure reason) as a
terminal shows it: as written, never read as Rich markup nor sent as escape sequences.

A spec under review can come from anyone, and a trial's reason quotes what its code raised and printed. Read as
markup, ``[link=https://...]see docs[/link]`` became a clickable link in the operator's terminal; sent raw, ``\\x1b[2J``
cleared the screen and ``\\x1b]0;...\\x07`` retitled the window. Every place that puts such text in Rich output
passes it through :func:`escape`; a line written without Rich (the Python API's stderr) through
:func:`visible_controls`. ``--json`` output keeps the text as it is (JSON escapes the control characters).
"""

from __future__ import annotations

import re

# The control characters, as a character class's inside: C0, DEL and C1. A terminal acts on each of these (ESC starts
# every sequence, 0x9b is a CSI of its own) where a person should see them; one range for every check and filter
# of them (a tag, a trial's output tail), each keeping what it must (a reason's newlines and tabs)
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
_CONTROLS = re.compile(rf"(?![\n\t])[{CONTROL_CHARACTERS}]")  # newline and tab kept: a reason's lines, a table cell's


def visible_controls(text: str) -> str:
    """``text`` with each control character but newline and tab written as Python writes it: ``\\x1b``."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape(text: str) -> str:
    """``text`` as Rich markup that prints it as written: its markup escaped (:func:`rich.markup.escape`), its control
    characters made visible (:func:`visible_controls`)."""
    from rich.markup import escape as escape_markup  # here: the runner imports this module, and needs no Rich

    return escape_markup(visible_controls(text))
