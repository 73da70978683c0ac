"""A rollback holds the model's scheduled cycles until someone releases it.

Gate ``rolled_back`` keeps the very trial that was rolled back from being promoted again, but a cycle's next re-tune
is a new experiment: re-run on the same rows (a scheduler's "clear" or "re-run"), or on the next day's rows from the
same broken feed, it found the same drift, tuned the same model and promoted it, about a minute after the rollback,
saying nothing of it. So a model whose champion was restored by a rollback is *held*: a cycle with ``--model-name``
still checks its new rows for drift (the report says what it found), but neither re-tunes nor promotes, until
`tunesmith release MODEL --reason ...` says the cause is fixed. A promotion by hand (`tunesmith promote`) is a
person's decision and is not held; it moves the champion to a new version, which no rollback restored, and so ends
the hold too.

Read off the registry, as the rollback's own marks are (:mod:`tunesmith.promotion.rolling_back`), so a rollback
recorded with another store, or none, holds the same: the model is held when some version carries a whole rollback
mark whose ``rolled_back_to`` is the champion's version, and the champion does not carry the release of the newest
such rollback (tag ``tunesmith.rollback_released``: that rollback's token). A later rollback to the same version has
a token of its own, and holds again. Only rollbacks made by a release that holds (their mark has
``tunesmith.rollback_holds``) hold: one made before is left as it was, cycles going on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunesmith import audit
from tunesmith.clock import Clock
from tunesmith.promotion.rollbacks import ROLLBACK_HOLDS_TAG
from tunesmith.promotion.rolling_back import Mark, audited_on, mark_of
from tunesmith.redaction import redact

if TYPE_CHECKING:
    from tunesmith.storage.base import TrialStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion

RELEASED_TAG = "tunesmith.rollback_released"  # on the version a rollback restored: the token of the rollback released
RELEASED_AT_TAG = "tunesmith.rollback_released_at"
RELEASED_REASON_TAG = "tunesmith.rollback_released_reason"


@dataclass(frozen=True)
class Hold:
    """Model ``model_name`` is held by the rollback ``mark`` (which restored the champion)."""

    model_name: str
    mark: Mark

    def to_json(self) -> dict[str, object]:
        return {"model_name": self.model_name, "from_version": self.mark.from_version,
                "to_version": self.mark.to_version, "reason": self.mark.reason, "at": self.mark.at}

    @property
    def said(self) -> str:
        when = (datetime.datetime.fromtimestamp(self.mark.at, datetime.UTC).strftime(" at %Y-%m-%d %H:%M:%S UTC")
                if self.mark.at is not None else "")
        return (f"model {self.model_name!r} is held: it was rolled back from version {self.mark.from_version} to "
                f"{self.mark.to_version}{when} (reason: {self.mark.reason}), and a cycle neither re-tunes nor promotes "
                f"it until someone releases it: tunesmith release {self.model_name} --reason '...' (a `tunesmith "
                "promote` by hand is not held)")


def hold_of(registry: ModelRegistry, model_name: str, champion: ModelVersion | None) -> Hold | None:
    """The rollback holding ``model_name``, whose champion is ``champion`` (as just read), or None."""
    if champion is None:
        return None
    # a rollback of a release before holds (tag ROLLBACK_HOLDS_TAG) holds nothing: its user rolled back under no
    # such rule, and may serve that version still, months on, with cycles that re-tuned and promoted until upgraded
    marks = [m for v in registry.versions(model_name) if (m := mark_of(v)) is not None
             and m.to_version == champion.version and v.tags.get(ROLLBACK_HOLDS_TAG) == "1"]
    if not marks:
        return None
    newest = max(marks, key=lambda m: (m.at or 0.0, int(m.from_version) if m.from_version.isdigit() else 0))
    return None if champion.tags.get(RELEASED_TAG) == newest.token else Hold(model_name, newest)


def release(store: TrialStore | None, registry: ModelRegistry, model_name: str, clock: Clock,
            reason: str) -> Hold | None:
    """Release ``model_name``'s hold: tag the champion with the rollback's token (and when, and why), and record a
    ``rollback_released`` event on the champion's experiment where ``store`` has it. Returns the hold released;
    None where the model was not held (nothing done)."""
    champion = registry.by_alias(model_name, "champion")
    hold = hold_of(registry, model_name, champion)
    if hold is None or champion is None:
        return None
    for key, value in ((RELEASED_AT_TAG, repr(clock.now())), (RELEASED_REASON_TAG, reason),
                       (RELEASED_TAG, hold.mark.token)):   # the token last: with it the release is whole
        registry.set_tag(model_name, champion.version, key, value)
    experiment = audited_on(store, (champion,)) if store is not None else None
    if store is not None and experiment is not None:
        audit.record(store, experiment.id, audit.AuditKind.ROLLBACK_RELEASED, clock, None, {
            "model_name": model_name, "version": champion.version, "rolled_back_from": hold.mark.from_version,
            "rollback": hold.mark.token, "registry": redact(registry.uri)}, reason)
    return hold


__all__ = ["RELEASED_TAG", "Hold", "hold_of", "release"]
