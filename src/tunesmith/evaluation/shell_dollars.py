"""Which ``$`` of a trial command a shell expands, and which of its text a shell reads in quotes, read from the
command's text as ``sh -c`` reads it.

A command runs as ``/bin/sh -c COMMAND`` once its ``{name}`` placeholders are replaced by values, and a ``$`` the
command puts before a placeholder (``${lr}``) stays: ``$0.5``, which a shell expands to ``$0`` then ``.5``. This
module says where a shell sees such a ``$`` as its own, so that :mod:`tunesmith.evaluation.command` can refuse it.

Followed: sh's quoting (single and double quotes, backslashes), comments, ``$(...)`` and backquotes, here-documents
(``<<EOF`` expands its body and takes quotes in it as text; ``<<'EOF'`` keeps its body as written), and the text
the shell hands to *another* shell, which expands it again after the outer one kept it as written: the script of a
shell's ``-c`` (``bash -c '...'``, wherever the shell stands: ``docker run img sh -c '...'``, ``timeout 9 bash -c``),
``su ... -c '...'``, the remote command of ``ssh host '...'``, the words of ``eval``, and a here-document fed to a
shell's standard input (``bash <<'EOF'``, ``ssh host <<'EOF'``). Not followed, so taken as kept: text piped into a
shell (``echo '...' | sh``), a script file's own expansions, other programs' ``$`` (awk's field ``$1`` is awk's:
which is why a ``$`` in single quotes is left alone). A guess from the words, as a reader would make it.

The same reading says where a placeholder stands in quotes (:func:`quoted_text`): its value is shell-quoted already
(``'a b'``), and in single quotes those quotes end the command's own, in double quotes or a here-document they
reach the program as part of the value (and a quoted ``'`` ends them), unless another shell reads that text again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# a character as the next program gets it, and where it stands in the command (None: the shell made it)
Piece = tuple[str, int | None]

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"})
_SHELL_OPTION_WITH_ARGUMENT = frozenset("oO")            # bash -o pipefail -c '...', +O extglob
_SHELL_LONG_OPTIONS_WITH_ARGUMENT = frozenset({"--rcfile", "--init-file"})   # bash --rcfile FILE
_SSH_OPTIONS_WITH_ARGUMENT = frozenset("BbcDEeFIiJLlmOoPpQRSWw")
_OPERATORS = frozenset(";&|()\n")
_DELIMITER = re.compile(r"""[^\s;&|<>()]+""")          # a here-document's end word, quotes and all
_MAX_DEPTH = 8                                         # shells within shells: deeper is not looked into


@dataclass
class _Command:
    """A simple command: its words (redirection targets left out) and the here-documents fed to it."""

    words: list[list[Piece]] = field(default_factory=list)
    heredocs: list[list[Piece]] = field(default_factory=list)


@dataclass
class _Heredoc:
    delimiter: str
    strip_tabs: bool
    quoted: bool
    command: _Command


def expanded_dollars(command: str) -> frozenset[int]:
    """The indexes in ``command`` of the ``$`` characters that a shell running it expands, its own or another
    shell's it hands the text to (see the module docstring)."""
    return _expanded(command, 0)


def _expanded(text: str, depth: int) -> frozenset[int]:
    lexer = _Lexer(text, 0, None)
    lexer.run()
    out = set(lexer.expanded)
    if depth < _MAX_DEPTH:
        for script in lexer.scripts():
            inner = "".join(c for c, _ in script)
            out.update(at for i in _expanded(inner, depth + 1) if (at := script[i][1]) is not None)
    return frozenset(out)


def quoted_text(command: str) -> frozenset[int]:
    """The indexes in ``command`` of the characters that reach a program in quotes, where a shell-quoted value
    (``'a b'``) put there does not arrive as written: in single quotes (its quotes end them, and the rest splits
    into words), in double quotes (its quotes are text to the program, and the ``"`` of the ``'"'"'`` that quotes
    a ``'`` ends them), or in a here-document's body (its quotes are text), unless another shell reads that body
    again and finds it unquoted (``bash <<EOF``), or reads words the first left unquoted (``eval``, ssh's)."""
    return _quoted(command, 0)


def _quoted(text: str, depth: int) -> frozenset[int]:
    lexer = _Lexer(text, 0, None)
    lexer.run()
    quoted, heredoc = lexer.all_quoted()
    out = quoted | heredoc
    if depth < _MAX_DEPTH:
        for script in lexer.scripts():
            inner = _quoted("".join(c for c, _ in script), depth + 1)
            for i, (_, at) in enumerate(script):
                if at is not None and at not in quoted:  # (in quotes, it went wrong before the inner shell)
                    (out.add if i in inner else out.discard)(at)
    return frozenset(out)


class _Lexer:
    """sh's reading of ``text`` from ``start``; ``stop``: ``)`` or a backquote ending a command substitution."""

    def __init__(self, text: str, start: int, stop: str | None) -> None:
        self.text, self.i, self.stop = text, start, stop
        self.expanded: set[int] = set()
        # characters in quotes (a shell-quoted value's `'`, or the `"` of its `'"'"'`, ends them), and in a
        # here-document's body (its quotes are text)
        self.quoted: set[int] = set()
        self.heredoc: set[int] = set()
        self.commands: list[_Command] = [_Command()]
        self.word: list[Piece] | None = None
        self.redirect_target = False   # the word being read follows `>`, `<`: not an argument
        self.pending: list[_Heredoc] = []
        self.nested: list[_Lexer] = []  # command substitutions: their own commands, and inner shells
        self.depth = 0                 # `(` opened within this lexer

    def run(self) -> None:
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if self.stop is not None and c == self.stop and (self.stop == "`" or self.depth == 0):
                break
            if c == "\\":
                if t[self.i + 1:self.i + 2] == "\n":
                    self.i += 2   # a line continuation
                elif self.i + 1 < len(t):
                    self._add(t[self.i + 1], self.i + 1)
                    self.i += 2
                else:
                    self._add(c, self.i)
                    self.i += 1
            elif c == "'":
                close = t.find("'", self.i + 1)
                close = len(t) if close < 0 else close
                self._start_word()
                for j in range(self.i + 1, close):
                    self._add(t[j], j)
                self.quoted.update(range(self.i + 1, close))
                self.i = close + 1
            elif c == '"':
                self._start_word()
                self.i = self._expanding(self.i + 1, '"', '$`"\\\n', len(t), self._word(), self.quoted)
            elif c in "$`":
                self._start_word()
                self.i = self._dollar_or_backquote(self.i, self._word())
            elif c == "#" and self.word is None:
                end = t.find("\n", self.i)
                self.i = len(t) if end < 0 else end
            elif c in " \t":
                self._end_word()
                self.i += 1
            elif c in "<>":
                self._redirection()
            elif c in _OPERATORS:
                self._end_word()
                self._end_command()
                self.depth += {"(": 1, ")": -1}.get(c, 0)
                self.i += 1
                if c == "\n":
                    self._heredoc_bodies()
            else:
                self._add(c, self.i)
                self.i += 1
        self._end_word()

    def all_quoted(self) -> tuple[set[int], set[int]]:
        """``quoted`` and ``heredoc``, with those of the command substitutions within (whose own quotes count)."""
        quoted, heredoc = set(self.quoted), set(self.heredoc)
        for lexer in self.nested:
            inner_quoted, inner_heredoc = lexer.all_quoted()
            quoted |= inner_quoted
            heredoc |= inner_heredoc
        return quoted, heredoc

    def scripts(self) -> list[list[Piece]]:
        """The texts this shell hands to another shell (``-c``, ssh, eval, a here-document on a shell's stdin)."""
        out = [s for lexer in self.nested for s in lexer.scripts()]
        for command in self.commands:
            out.extend(_inner_scripts(command))
        return out

    # -- words ---------------------------------------------------------------------------------------------------

    def _start_word(self) -> None:
        if self.word is None:
            self.word = []

    def _word(self) -> list[Piece]:
        assert self.word is not None
        return self.word

    def _add(self, c: str, at: int | None) -> None:
        self._start_word()
        self._word().append((c, at))

    def _end_word(self) -> None:
        if self.word is None:
            return   # blanks between `>` and its target: the target is still to come
        if not self.redirect_target:
            self.commands[-1].words.append(self.word)
        self.word, self.redirect_target = None, False

    def _end_command(self) -> None:
        self.redirect_target = False
        if self.commands[-1].words or self.commands[-1].heredocs:
            self.commands.append(_Command())

    # -- expansions ----------------------------------------------------------------------------------------------

    def _dollar_or_backquote(self, i: int, into: list[Piece]) -> int:
        """A ``$`` (expanded: marked) or a backquote at ``i``; returns where reading goes on. What the expansion
        gives is the shell's (None): a ``$`` handed on to another shell is not a ``$`` it sees."""
        t = self.text
        if t[i] == "$":
            self.expanded.add(i)
            into.append(("$", None))
            if t[i + 1:i + 2] != "(":
                return i + 1
            i, stop = i + 2, ")"
        else:
            i, stop = i + 1, "`"
        inner = _Lexer(t, i, stop)
        inner.run()
        self.expanded |= inner.expanded
        self.nested.append(inner)
        return inner.i + 1

    def _expanding(self, i: int, close: str | None, escapable: str, end: int, into: list[Piece],
                   marks: set[int]) -> int:
        """Text where ``$`` and backquotes expand and a backslash escapes only ``escapable`` (double quotes, an
        unquoted here-document's body), from ``i`` to ``close`` or ``end``, its characters added to ``marks``;
        returns the index after it."""
        t = self.text
        while i < end and t[i] != close:
            c = t[i]
            if c == "\\" and t[i + 1:i + 2] and t[i + 1] in escapable:
                if t[i + 1] != "\n":
                    into.append((t[i + 1], i + 1))
                    marks.add(i + 1)
                i += 2
            elif c in "$`":
                i = self._dollar_or_backquote(i, into)
            else:
                into.append((c, i))
                marks.add(i)
                i += 1
        return i + 1 if close is not None else i

    # -- redirections and here-documents -------------------------------------------------------------------------

    def _redirection(self) -> None:
        t = self.text
        if self.word is not None and all(c.isdigit() for c, _ in self.word):
            self.word = None   # `2>`: a file descriptor, not a word
        self._end_word()
        if t.startswith("<<", self.i) and not t.startswith("<<<", self.i):
            strip_tabs = t.startswith("<<-", self.i)
            j = self.i + (3 if strip_tabs else 2)
            while j < len(t) and t[j] in " \t":
                j += 1
            m = _DELIMITER.match(t, j)
            raw = m.group(0) if m else ""
            delimiter = re.sub(r"""['"\\]""", "", raw)
            self.pending.append(_Heredoc(delimiter, strip_tabs, raw != delimiter, self.commands[-1]))
            self.i = j + len(raw)
            return
        while self.i < len(t) and t[self.i] in "<>&|":
            self.i += 1
        self.redirect_target = True

    def _heredoc_bodies(self) -> None:
        """The bodies of the here-documents opened on the line just ended, from ``self.i``, each to its end line."""
        t = self.text
        for doc in self.pending:
            body: list[Piece] = []
            while self.i < len(t):
                end = t.find("\n", self.i)
                end = len(t) if end < 0 else end
                start = self.i
                if doc.strip_tabs:
                    while start < end and t[start] == "\t":
                        start += 1
                self.i = end + 1
                if t[start:end] == doc.delimiter:
                    break
                if doc.quoted:
                    body.extend((t[j], j) for j in range(start, end + 1) if j < len(t))
                    self.heredoc.update(range(start, min(end + 1, len(t))))
                else:
                    self._expanding(start, None, "$`\\\n", min(end + 1, len(t)), body, self.heredoc)
            doc.command.heredocs.append(body)
        self.pending = []


def _text(word: list[Piece]) -> str:
    return "".join(c for c, _ in word)


def _joined(words: list[list[Piece]]) -> list[Piece]:
    out: list[Piece] = []
    for k, word in enumerate(words):
        out.extend(([(" ", None)] if k else []) + word)
    return out


def _inner_scripts(command: _Command) -> list[list[Piece]]:
    """What ``command`` hands to another shell: a shell's ``-c`` script, or its standard input (the here-document)
    when it reads its script there; ``su -c``; ssh's remote command, or its standard input without one; eval's
    words."""
    words = command.words
    texts = [_text(w) for w in words]
    names = [os.path.basename(w) for w in texts]
    out: list[list[Piece]] = []
    for k, name in enumerate(names):
        if name in _SHELLS:
            script, reads_stdin = _shell_operands(words, k)
            out.extend([script] if script is not None else command.heredocs if reads_stdin else [])
        elif name == "su" and "-c" in names[k + 1:-1]:
            out.append(words[names.index("-c", k + 1) + 1])
        elif name == "ssh":
            remote = _ssh_remote_words(words, k)
            out.extend([_joined(remote)] if remote else command.heredocs)
        elif name == "eval" and all("=" in w for w in texts[:k]):   # in command position (after assignments)
            out.append(_joined(words[k + 1:]))
    return out


def _shell_operands(words: list[list[Piece]], k: int) -> tuple[list[Piece] | None, bool]:
    """The ``-c`` script of the shell named by word ``k``, and whether it reads its script from standard input
    (``-s``, or no script file named). As sh reads its arguments: options first (``-c`` among them, and the value
    an option takes: ``-o pipefail``, ``--rcfile f``), up to ``--`` or ``-``; then the first operand is the script
    (with ``-c``: ``bash -c -- '...'``) or a script file (without)."""
    command_string = reads_stdin = False
    j = k + 1
    while j < len(words):
        w = _text(words[j])
        if w in ("--", "-"):
            j += 1
            break
        if w in _SHELL_LONG_OPTIONS_WITH_ARGUMENT:
            j += 2
        elif w.startswith("--") or w == "+":
            j += 1
        elif w[:1] in "-+" and len(w) > 1:
            command_string |= w[0] == "-" and "c" in w[1:]
            reads_stdin |= "s" in w[1:]
            j += 2 if w[-1] in _SHELL_OPTION_WITH_ARGUMENT else 1
        else:
            break
    if command_string:
        return (words[j] if j < len(words) else None), False
    return None, reads_stdin or j >= len(words)   # an operand without -c or -s: a script file, its text not ours


def _ssh_remote_words(words: list[list[Piece]], k: int) -> list[list[Piece]]:
    """The words after ssh's options and host (word ``k`` is ssh): the command the remote shell runs."""
    j = k + 1
    while j < len(words):
        w = _text(words[j])
        if w == "--":
            j += 1
            break
        if not w.startswith("-") or len(w) == 1:
            break
        for at, letter in enumerate(w[1:], start=1):
            if letter in _SSH_OPTIONS_WITH_ARGUMENT:
                j += 1 if at == len(w) - 1 else 0   # `-p 22`: the next word is its argument; `-p22`: this one
                break
        j += 1
    return words[j + 1:]
