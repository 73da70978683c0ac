"""What `tunesmith.redaction` hides: the shapes of well-known tokens in any text, and the values of variables whose
names say they hold a credential (`spec NAME`, failure reasons, audit rows, exported specs)."""

from __future__ import annotations

import pytest

from tunesmith.redaction import REDACTED, redact, redact_env, secret_name


@pytest.mark.parametrize("token", [
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",       # GitHub personal access token
    "gho_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",       # GitHub OAuth token
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
    "sk-live-abcdef123456",                           # as a walk wrote one
    "sk-proj-Abc123def456Ghi789jkl012",               # OpenAI
    "sk_live_51Habcdefghijklmnop",                    # Stripe
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",  # Slack bot token
    "xoxp-123456789012-123456789012-abcdef",          # Slack user token
    "AKIAIOSFODNN7EXAMPLE",                           # AWS access key id
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",          # Hugging Face
])
def test_a_well_known_token_in_prose_is_hidden(token: str) -> None:
    """A token in free text, not as `name=value` (`uses token ghp_... for the hub`), was printed by `spec NAME`."""
    assert redact(f"uses {token} for the hub") == f"uses {REDACTED} for the hub"
    assert redact(f"({token}).") == f"({REDACTED})."


@pytest.mark.parametrize("text", ["scikit-learn", "sk-learn", "task-sk-xyz", "hf_hub", "the ghp_ prefix",
                                  "xoxb-short", "AKIA", "use sklearn.svm.SVC", "github_pat_", "risk-averse-model-12345"])
def test_text_that_only_resembles_a_token_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("name", ["MY_PASS", "PASS", "MYSQL_PWD", "DB_PWD", "SMTP_PASSWD",
                                  "GOOGLE_CREDENTIALS", "GPG_PASSPHRASE", "API_TOKEN", "DB_PASSWORD"])
def test_a_variable_named_for_a_credential_is_hidden(name: str) -> None:
    assert secret_name(name), name
    assert redact_env({name: "letmein1"}) == {name: REDACTED}
    assert redact(f"{name}=letmein1 train") == f"{name}={REDACTED} train"


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "PATH", "PASSES", "COMPASS", "BYPASS_CACHE", "HOME", "KEYBOARD"])
def test_a_variable_whose_name_only_contains_those_letters_is_shown(name: str) -> None:
    """The working folder (PWD, OLDPWD) is no secret: hiding it blanked every path in a failure reason."""
    assert not secret_name(name), name
