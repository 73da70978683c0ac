"""Secrets never leave tunesmith in what it records, prints or exports.

One module for every place that writes text a user did not write themselves (failure reasons with a trial's
stderr, the environment, audit rows, specs and URIs sent to MLflow). Redacted are:
- given values (a spec's ``trial.env``, environment values whose names look like credentials);
- environment variables whose names look like credentials (``*TOKEN*``, ``*PASSWORD*``, ``*SECRET*``,
  ``*_KEY``, ``*CREDENTIAL*``, ``*AUTH*``, ``*_PASS``, ``*_PWD`` ...): their values, in :func:`redact_env`;
- the password in URLs (``postgresql://user:pw@host`` -> ``postgresql://user:***@host``), also inside a longer
  text such as a command line;
- ``password=...``, ``api_key: ...``, ``--token x``, ``Bearer ...``: the name stays, the value goes;
- tokens whose shape says what they are (``ghp_...``, ``github_pat_...``, ``sk-...``, ``xoxb-...``, ``AKIA...``,
  ``hf_...``), in any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
MIN_SECRET_LENGTH = 4    # shorter values ("1", "yes") cannot be secrets worth hiding, and would mangle the text

# A variable name that probably holds a credential. PWD/OLDPWD (the working folder) are not: hiding the folder
# would blank every path in a failure reason.
# MY_PASS, MYSQL_PWD (an underscore before PWD: not the folder), GPG_PASSPHRASE.
_SECRET_NAME = re.compile(r"(?i)passw|passphrase|token|secret|credential|auth|private|(?:^|_)pass(?:_|$)|_pwd(?:_|$)"
                          r"|(?:^|_)(?:api_?|access_?)?key(?:_|$)")
_SECRET_WORDS = r"(?:passw(?:or)?d|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|credential)"
# Each starts a match only where one can begin (at the secret's word; at the first character of a run), not at
# every character of a run: tried at every one, a run of 8,000 characters (`-----`, a hex dump, a line of x) took
# seconds to redact, and a failure's output tail is redacted (in the coordinator, for a timeout). They replace what
# they did: the text before a secret's name is kept either way.
_SECRET_ASSIGNMENT = re.compile(rf"(?i)({_SECRET_WORDS}[A-Za-z0-9_.-]*[\"']?\s*[=:]\s*)"
                                rf"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&|]+)")
_SECRET_FLAG = re.compile(rf"(?i)((?<![A-Za-z0-9_-])[A-Za-z0-9_]*-[A-Za-z0-9_-]*{_SECRET_WORDS}[A-Za-z0-9_-]*\s+)"
                          r"[^\s\"',;&|-][^\s\"',;&|]*")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"((?<![A-Za-z0-9+.-])[0-9+.-]*[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
# Tokens whose shape says what they are, wherever they stand (prose, a tag, a command): GitHub's (ghp_, gho_, ghu_,
# ghs_, ghr_, github_pat_), OpenAI's and Stripe's keys (sk-..., sk_live_...), Slack's (xoxb-, xoxp-...), an AWS access
# key id, a Hugging Face token. Each starts with its fixed prefix (no scan from every character of a long run), at
# the start of a word, and needs the length such a token has, so that `sk-learn` or `hf_hub` stay.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?:gh[opusr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
                    r"|[sr]k-[A-Za-z0-9_-]{16,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|xox[abposr]-[A-Za-z0-9-]{10,}"
                    r"|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{30,})(?![A-Za-z0-9_-])")
_ASSIGNMENT = re.compile(r"(?P<name>\b[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S+)")


def secret_name(name: str) -> bool:
    """True when a variable called ``name`` probably holds a credential."""
    return bool(_SECRET_NAME.search(name))


def secrets_of(trial_env: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    """Values to hide: every value of the spec's ``trial.env`` but tunesmith's own (``TUNESMITH_DATA``, the new
    rows a re-tune hands trial code: a reason must be able to name that file), and environment values whose names
    look secret."""
    values = [v for k, v in trial_env.items() if k != "TUNESMITH_DATA"]
    values += [v for k, v in environ.items() if secret_name(k)]
    return sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given values and anything that looks like a password, token or key replaced by ***."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    text = _TOKEN.sub(REDACTED, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _SECRET_FLAG.sub(rf"\1{REDACTED}", text)
    text = _SECRET_ASSIGNMENT.sub(rf"\1{REDACTED}", text)
    # NAME=value where NAME looks like a credential variable (SERVICE_KEY=..., AWS_SECRET_ACCESS_KEY=...)
    return _ASSIGNMENT.sub(lambda m: f"{m['name']}={REDACTED}" if secret_name(m["name"]) else m[0], text)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with secret-looking variables' values replaced and URL credentials removed."""
    return {k: REDACTED if secret_name(k) else redact(v) for k, v in env.items()}


def redact_texts(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, scalars) with every text in it redacted (of ``secrets`` too)."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_texts(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_texts(v, secrets) for v in value]
    return value


def spec_secrets_hidden(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A (JSON) spec as it leaves tunesmith: printed (`tunesmith spec`) or exported (MLflow's spec.json). Every text
    redacted (a URL's password, ``password=...``: a store written before the storage password was left out of the
    record still holds it), and the values of the ``trial.env`` variables whose names say secret (``API_TOKEN``: as
    :func:`redact_env` hides them) as ***, there and wherever else the spec writes them (a command's ``--hdr``, a
    tag). The store keeps them: a resume runs the recorded spec.

    Only those: a failure reason hides every trial.env value (a trial's output may print any of them, in any
    context), but a spec printed with ``DATA_DIR: ***`` is no spec to run again, and whoever reads it can read the
    record it comes from. A *** left in a spec file is refused when it is run (``check_no_hidden_values``)."""
    trial = spec.get("trial")
    env = trial.get("env") if isinstance(trial, Mapping) else None
    env = env if isinstance(env, Mapping) else {}
    shown: dict[str, Any] = redact_texts(dict(spec), secrets_of({}, env))  # (secrets_of: the secret-named ones)
    if env:
        shown["trial"]["env"] = {k: REDACTED if secret_name(k) else v for k, v in shown["trial"]["env"].items()}
    return shown
