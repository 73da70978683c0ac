"""One keep-the-champion-fresh cycle, for cron, Airflow, Argo and CI: drift check -> re-tune when triggered ->
promote -> report. Every step is recorded as an event (``cycle_<step>``) on the lineage's root experiment.

The cycle checks the lineage's *champion*. With ``--model-name`` the registry says which it is: the experiment
whose trial is that model's version behind alias ``champion`` (it must be the named experiment or one of its
re-tunes). A re-tune nobody promoted (``tunesmith retune`` by hand, a cycle whose promote step failed or was
rejected) is not the champion, so its data is not what new rows are compared with. Without a model name, or with no
champion registered yet under it, the champion is the lineage's *head*: starting from the named experiment, each
experiment's newest completed re-tune (attribute ``retunes``) with a completed trial and not rejected by a gate,
so tomorrow's cycle compares tomorrow's data with what today's re-tune was tuned on: its task data, or for trial code
the file it was re-tuned on (``--reference`` serves a trial-code champion holding no file: the first tuning).

Promotion is :func:`promote_step`: when the spec has a ``promotion:`` section it runs ``tunesmith promote``'s
gates on the re-tune and registers it only if they all pass (``--model-name`` names the registered model);
without that section the step is ``skipped``, saying why. A first tuning the cycle runs (or resumes) with
``--model-name`` and that section is promoted the same way, as a ``promote`` step right after ``tune``: outcome
``promoted`` when no drift follows (a re-tune's promotion decides it otherwise), ``rejected`` (exit 3, drift and
re-tune skipped) when a gate refuses it. It is offered while nothing is registered under the model name and no
cycle's promotion of it was done or rejected (the store's ``cycle_promote`` events): a rejection is recorded once,
and later cycles, on the spec file or by name alike, go on to the drift check (against the lineage head, no champion
being registered) and re-tune as usual; one that failed or was cut is offered again by the next cycle.

A re-tune a cycle made whose promotion was never decided (the promote step failed: the registry down; or never ran:
the cycle killed after the re-tune, or it left the re-tune interrupted and ``tunesmith resume`` finished it) is
offered the same way (:func:`_undecided_retune`): before its drift check, the next cycle runs a ``promote`` step
(``detail.offered_again`` true) for the champion's newest re-tune when a cycle made it, it completed, and no promotion
of it was decided (promoted, or rejected by a gate, by a cycle or ``tunesmith promote``; with nothing registered, the
lineage head when it is one). Without this the next cycle found drift against the old champion's data again and
re-tuned a second time (hours), the completed re-tune never judged. Promoted, it is the champion and the cycle goes on
to check the new rows against it (re-tuning it on drift), as after a first tuning's promotion: a cycle from cron
leaves its champion checked against that day's rows, and a retry on the rows it was tuned on finds no drift at the
cost of a drift check. Rejected, it is marked as a rejected re-tune is and the cycle goes on against the champion
still registered. Failed again, the cycle ends there (outcome ``failed``, nothing re-tuned) and the next one offers
it again. A re-tune a gate rejected, an older one a later re-tune came after, and a hand-run ``tunesmith retune``
are not offered.

Once work has started (a tuning, a recorded drift check), a step that raises is recorded as a ``failed`` step after
the steps before it: outcome ``failed``, exit 1, or 2 when the error is the user's (:class:`UserInputError`); what
can be checked before any work (``promotion.beat_champion.metric`` included) is refused first, as bad input.

With ``--model-name``, a model a rollback restored is *held* (:mod:`tunesmith.promotion.rollback_hold`): the cycle
checks and reports drift but neither re-tunes nor promotes (outcome ``held``) until ``tunesmith release``; a
rollback that lands during the re-tune stops the promote step. Rows a re-tune of the champion was already tuned on,
which a cycle's gate rejected, are not re-tuned again (:func:`_rejected_on_these_rows`; ``force_retune`` does).

Exit codes (:attr:`CycleReport.exit_code`): 0 the cycle ran (no drift; or re-tuned, and promoted or promotion
skipped; or an offered re-tune promoted; or held by a rollback); 3 a promotion gate rejected the re-tune (the old
champion stays; same code as ``tunesmith promote``), or the offered one when no re-tune followed, or the rows'
earlier re-tune (not re-tuned again); 1 a step failed (the re-tune stopped on an
error, every trial failed); 2 bad input, refused before any tuning where it can be (an edited spec file, a missing
``--model-name``, bundled data, trial code without ``--reference`` whose champion holds no file of its own, a missing
data file); 75 no database server answered at the store's address, or MLflow's at the registry's as the champion was
read (outcome ``unavailable``, nothing done: retry later), or in the promote step (outcome ``failed``: the next cycle
offers the first tuning, or the re-tune, again), or another cycle holds the lineage (outcome ``busy``: one cycle per
lineage at a time, :mod:`tunesmith.lineage_guard`); 130 Ctrl-C, SIGTERM or SIGHUP stopped a tuning run (recorded as
interrupted; ``tunesmith resume`` continues it). The CLI's `cycle` and `watch` note a stop signal that lands outside
a tuning run and stop once the cycle has ended, each step whole, exit 130
(:func:`tunesmith.stop_signals.stop_signals_deferred`).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tunesmith.audit import actor
from tunesmith.clock import Clock, SystemClock
from tunesmith.errors import (
    RegistryUnavailable, StoreUnavailable, TemporaryFailure, TunesmithError, UpgradeRefused, UserInputError,
)
from tunesmith.events import RunListener
from tunesmith.exit_codes import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTED, EXIT_TEMPFAIL
from tunesmith.records import ExperimentRecord, RunStatus, TrialState
from tunesmith.stop_signals import handlers_restored

if TYPE_CHECKING:
    from tunesmith.drift import DriftReport, ServedTrial, TunedOn
    from tunesmith.lineage_guard import LineageHold
    from tunesmith.promotion.rollback_hold import Hold
    from tunesmith.runner import Runner
    from tunesmith.spec.model import ExperimentSpec
    from tunesmith.storage.sql import SQLStore
    from tunesmith.tracking.model_registry import ModelRegistry, ModelVersion


class StepStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"    # Ctrl-C / SIGTERM stopped the run; `tunesmith resume` continues it


class CycleOutcome(StrEnum):
    NO_DRIFT = "no_drift"          # nothing to do
    RETUNED = "retuned"            # drift: re-tuned; promotion skipped
    PROMOTED = "promoted"          # drift: re-tuned and promoted through the gates (or a first or offered one)
    REJECTED = "rejected"          # drift: re-tuned, a gate kept the old champion (or refused a first or offered one)
    FAILED = "failed"              # a step failed
    INTERRUPTED = "interrupted"    # Ctrl-C / SIGTERM during a tuning run (recorded as interrupted, resumable)
    BAD_INPUT = "bad_input"        # refused (exit 2) before the cycle ran: only in :meth:`CycleReport.refused`
    UNAVAILABLE = "unavailable"    # the store's server did not answer (exit 75): no cycle ran, retry later
    BUSY = "busy"                  # another cycle holds the lineage (exit 75): no cycle ran, retry later
    HELD = "held"                  # drift, but a rollback holds the model: nothing re-tuned or promoted (exit 0)


@dataclass(frozen=True)
class CycleStep:
    name: str                      # tune | drift | retune | promote | report (only a failed one: see run_cycle)
    status: StepStatus
    why: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status.value, "why": self.why, "detail": self.detail}


@dataclass(frozen=True)
class CycleReport:
    root: str | None               # the lineage's root; None: a cycle refused before its experiment was known
    # the experiment the new data was compared with (the champion before the cycle); None: no drift check compared
    # them (refused, a first tuning that failed, was interrupted, or whose promotion failed or was rejected, an
    # offered re-tune whose promotion failed again)
    checked: str | None
    # the champion after the cycle: where it promotes (a model name, a promotion: section) the registered one (the
    # re-tune when it was promoted), else the lineage head; None: none known (nothing registered, no first tuning)
    champion: str | None
    outcome: CycleOutcome
    steps: tuple[CycleStep, ...]
    # "registry": both say what --model-name's alias champion points at; "lineage": the lineage head (no model name,
    # or nothing registered under it); None when both are None
    champion_from: str | None = "lineage"
    failed_exit: int = EXIT_FAILED  # outcome failed: 2 when a step raised on the user's mistake (a spec field)
    # a cycle that did not run (:meth:`refused`): its error as the CLI says it (none when it was interrupted), and
    # the target as given; None in the report of a cycle that ran, whose JSON has neither key
    error: str | None = None
    target: str | None = None
    # the new rows' file, resolved once as the cycle started (symlinks too), which every step read and recorded;
    # None in a refused report
    data: str | None = None

    @classmethod
    def refused(cls, target: str, outcome: CycleOutcome, error: str | None = None,
                root: str | None = None) -> CycleReport:
        """The report of a cycle that did not run, or was stopped at once before it could report, in the one shape a
        CI step parsing ``--json`` reads whatever the exit code: no steps, no champion checked or left (``checked``,
        ``champion`` and ``champion_from`` null), the ``target`` as given (the experiment's name is not known when the
        spec file could not be read) and the ``error`` as said on stderr. ``outcome``: ``bad_input`` (exit 2, refused
        before any work), ``unavailable`` (75: the store's server did not answer, retry later; ``root``: the lineage's
        at a later watch cycle, None before the store was ever read), ``busy`` (75: another cycle holds the lineage)
        or ``interrupted`` (130: a stop signal asked
        twice, no ``error``; the steps that ended are recorded as ``cycle_<step>`` events)."""
        return cls(root, None, None, outcome, (), champion_from=None, error=error, target=target)

    @property
    def exit_code(self) -> int:
        return {CycleOutcome.FAILED: self.failed_exit, CycleOutcome.REJECTED: EXIT_REJECTED,
                CycleOutcome.INTERRUPTED: EXIT_INTERRUPTED, CycleOutcome.UNAVAILABLE: EXIT_TEMPFAIL,
                CycleOutcome.BUSY: EXIT_TEMPFAIL,
                CycleOutcome.BAD_INPUT: EXIT_INPUT}.get(self.outcome, EXIT_OK)

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "checked": self.checked, "champion": self.champion,
                "champion_from": self.champion_from, "outcome": self.outcome.value, "exit_code": self.exit_code,
                "steps": [s.to_json() for s in self.steps],
                **({"data": self.data} if self.data is not None else {}),
                **({"target": self.target} if self.target is not None else {}),
                **({"error": self.error} if self.error is not None else {})}


def stopped_exit(exit_code: int, stopped_by: str | None) -> int:
    """The exit code of a cycle (``exit_code``) after which a stop signal was noted (``stopped_by``; None: none):
    130, unless the cycle failed (1, 2), a gate rejected (3) or the store did not answer (75), which a signal does
    not mask."""
    return EXIT_INTERRUPTED if stopped_by is not None and exit_code == EXIT_OK else exit_code


# What a cycle ended with that no later cycle undoes, worst first: bad input, a failed step, a gate's rejection
_KEPT_WORST_FIRST = (EXIT_INPUT, EXIT_FAILED, EXIT_REJECTED)


def watch_exit(codes: Sequence[int]) -> int:
    """`watch`'s exit code from its cycles' (``codes``, in order; each JSON line carries its own): 2, 1 or 3 where
    any cycle ended so, in that order (the last cycle's alone hid a failed or rejected earlier one: exit 0); else the
    last cycle's, 0, 75 (retry later: an outage the later cycles outlived is not one) or 130; 0 for none."""
    kept = [c for c in _KEPT_WORST_FIRST if c in codes]
    return kept[0] if kept else (codes[-1] if codes else EXIT_OK)


@dataclass(frozen=True)
class PromotionVerdict:
    """What the promotion seam returns: promoted or not, and the promotion report as JSON."""

    promoted: bool
    detail: dict[str, Any]


PromoteFn = Callable[["SQLStore", str, "str | None"], PromotionVerdict]
OnOpen = Callable[["SQLStore"], object] | None  # what `cycle` and `watch` hand the store they open to, as it opens


def promote_step(store: SQLStore, experiment: str, spec: ExperimentSpec, model_name: str | None,
                 promote: PromoteFn | None = None, tracking_uri: str | None = None,
                 reason: str = "tunesmith cycle: drift re-tune") -> CycleStep:
    """Promote ``experiment``'s best trial through the spec's gates, or say why the step is skipped.

    ``promote`` replaces the call into ``tunesmith.promotion`` (tests, other registries). ``tracking_uri``: the
    registry to promote into (default: ``experiment``'s spec's; a cycle gives its lineage's, :func:`lineage_registry`).
    ``reason``: the promotion's, as its audit event records it (a first tuning's is not a drift re-tune's).
    """
    if promote is None:
        if getattr(spec, "promotion", None) is None:
            return CycleStep("promote", StepStatus.SKIPPED, "the spec has no promotion: section")
        promote = _library_promote(tracking_uri, reason)
    verdict = promote(store, experiment, model_name)
    detail = {"experiment": experiment, **verdict.detail}  # which one was judged: an undecided re-tune is offered
    if verdict.promoted:
        return CycleStep("promote", StepStatus.DONE, f"{experiment} promoted", detail)
    gates = ", ".join(verdict.detail.get("failed_gates") or ()) or "a promotion gate"
    report = f"; report: {verdict.detail['report']}" if verdict.detail.get("report") else ""
    return CycleStep("promote", StepStatus.REJECTED, f"{gates} rejected it; the champion stays{report}", detail)


def _model_name_missing(experiment: str) -> UserInputError:
    """The refusal of a cycle whose spec promotes and that names no registered model: the example is the
    experiment's own name (an unrelated example name was taken for advice), said as one."""
    return UserInputError(f"--model-name: the spec has a promotion: section, so the cycle promotes a re-tune; name "
                          f"the registered model, the name it is served under (--model-name {experiment}, say)")


def _library_promote(tracking_uri: str | None = None, reason: str = "tunesmith cycle: drift re-tune") -> PromoteFn:
    """``tunesmith promote`` as a cycle step: the spec's gates, then the registry and the report."""

    def call(store: SQLStore, experiment: str, model_name: str | None) -> PromotionVerdict:
        from tunesmith.promotion.promote import promote

        if model_name is None:
            raise _model_name_missing(experiment)
        from tunesmith.tasks.library_warnings import captured
        from tunesmith.tracking.model_registry import registry_reached

        # a server down mid-promotion is RegistryUnavailable (exit 75): the next cycle offers it again
        with captured() as said, registry_reached(tracking_uri):
            result = promote(store, experiment, model_name, SystemClock(), reason=reason, tracking_uri=tracking_uri)
        detail = {"decision": result.decision.value, "trial": result.trial, "version": result.version,
                  "previous_champion": result.previous_champion, "report": str(result.report_json),
                  "failed_gates": [g.gate for g in result.gates if not g.passed],
                  **({"warnings": said} if said else {})}
        return PromotionVerdict(not result.rejected, detail)

    return call


def lineage_registry(store: SQLStore, root: str, spec: ExperimentSpec,
                     tracking_uri: str | None = None) -> ModelRegistry:
    """The MLflow registry of ``root``'s lineage, the one a cycle reads the champion from and promotes into:
    ``tracking_uri`` (``--tracking-uri``: the registry moved, the recorded spec kept), else the tracking URI of
    ``root``'s recorded spec; a relative ``sqlite:///`` path (the default ``sqlite:///mlflow.db`` included) resolved
    against the folder the experiment was first run from, as `promote` resolves it; ``spec`` (the spec file, to be
    recorded) when ``root`` is not recorded yet. A spec file read in another checkout resolved it against that
    checkout: the champion was read there and the re-tune, whose spec is its parent's, promoted into the first
    one's. Its ``field`` says which of them the URI came from."""
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tracking import tracker_for
    from tunesmith.tracking.model_registry import ModelRegistry

    if root in store.experiment_names():
        spec = spec_from_dict(store.experiment(root).spec)
    tracker = tracker_for(spec, tracking_uri)
    return ModelRegistry(tracker.uri, tracker.field)


def lineage_head(store: SQLStore, name: str) -> ExperimentRecord:
    """The newest completed re-tune not rejected by a gate, following re-tunes of re-tunes, from ``name``.

    A re-tune whose every trial failed ran to its budget (status completed) but has no champion: it is passed
    over, or every later cycle would stop on it."""
    exp = store.experiment(name)
    recorded = store.experiment_names()  # once for the walk, not once per re-tune named
    while True:
        children = [store.experiment(c) for c in exp.attributes.get("retunes", []) if c in recorded]
        done = [c for c in children if c.status is RunStatus.COMPLETED and not c.attributes.get("rejected")
                and _has_champion(store, c)]
        if not done:
            return exp
        exp = done[-1]


def _interrupted_retune(store: SQLStore, head: ExperimentRecord, data: str, given: str) -> str | None:
    """``head``'s newest re-tune when it is interrupted, or abandoned (recorded as running, and no live coordinator
    runs it: its cycle was killed outright), and on the file ``data`` (resolved; ``given``: as typed) as it was (path
    and content).

    Only the newest: an older interrupted one that a later re-tune (completed, rejected, failed) came after is
    history, not work to continue."""
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import fingerprint, fingerprint_changes

    existing = store.experiment_names()   # one query, not one per re-tune named
    names = [n for n in head.attributes.get("retunes", []) if n in existing]
    child = store.experiment(names[-1]) if names else None
    if child is None or not _stopped(store, child):
        return None
    if (child.attributes.get("lineage") or {}).get("data") not in (data, os.path.abspath(given)):
        return None  # other rows since: a new re-tune (abspath: one recorded before re-tunes resolved symlinks)
    spec = spec_from_dict(child.spec)
    recorded = child.attributes.get("data_fingerprint")
    if spec.task is not None and (not recorded or fingerprint_changes(recorded, fingerprint(spec.task,
                                                                                              spec.base_dir))):
        return None  # the same path, new content
    return child.name


def _first_tuning_to_resume(store: SQLStore, name: str) -> bool:
    """An interrupted (or abandoned: killed outright) first tuning, or one that failed before any trial completed
    (its Ray cluster was down, its executor could not start): the next cycle resumes it, as a spec file or by name,
    rather than checking new rows against a partial champion or against none."""
    if name not in store.experiment_names():
        return False
    exp = store.experiment(name)
    return _stopped(store, exp) or (exp.status is RunStatus.FAILED and not _has_champion(store, exp))


def _stopped(store: SQLStore, experiment: ExperimentRecord) -> bool:
    """Interrupted, or abandoned: recorded as running while no coordinator is at work on it (killed with SIGKILL,
    its machine gone; as `tunesmith show` says ``abandoned``). ``tunesmith resume`` continues either."""
    from tunesmith.coordinators import run_abandoned

    return experiment.status is RunStatus.INTERRUPTED or run_abandoned(store, experiment, time.time())


def _has_champion(store: SQLStore, experiment: ExperimentRecord) -> bool:
    return any(t.state is TrialState.COMPLETED for t in store.trials(experiment.id, curves=False))


def cycle_command(storage: str | None, target: str, data: str, on_open: OnOpen = None, **options: Any) -> CycleReport:
    """``tunesmith cycle``: :func:`run_cycle` in the store ``target`` is in (see :func:`_target_store`); ``on_open``
    is given that store as it is opened (the CLI closes it with the command, as its other commands' stores)."""
    store, spec_file = _target_store(storage, target, data, options.get("reference"), on_open)
    if on_open is not None:
        on_open(store)
    return run_cycle(store, target, data, spec_file=spec_file, **options)


def watch_command(storage: str | None, target: str, data: str, every: float, on_open: OnOpen = None,
                  **options: Any) -> list[CycleReport]:
    """``tunesmith watch``: :func:`watch` in the store ``target`` is in (see :func:`_target_store`); ``on_open``: as
    for :func:`cycle_command` (watch gives the connections back after each cycle, not the store itself)."""
    store, spec_file = _target_store(storage, target, data, options.get("reference"), on_open)
    if on_open is not None:
        on_open(store)
    return watch(store, target, data, every, spec_file=spec_file, **options)


def _target_store(storage: str | None, target: str, data: str, reference: str | None,
                  on_open: OnOpen = None) -> tuple[SQLStore, ExperimentSpec | None]:
    """The store of a cycle on ``target``: ``--storage``, else a spec file's ``storage:`` (as for `run`, which
    recorded the experiment there), else the default; created only for a spec file (reading an address that holds
    nothing is a mistake to report). Also the spec file, read here once, when ``target`` is one that exists (without
    the checks for a new spec: :func:`_spec_file` runs them when it names no recorded experiment)."""
    from tunesmith.spec.loader import read_spec_file
    from tunesmith.spec.model import check_new_spec, check_no_hidden_values
    from tunesmith.storage.sql import SQLStore, refuse_in_memory, resolve_url, url_origin

    spec = read_spec_file(target) if _names_a_file(target) and os.path.isfile(target) else None
    if spec is not None:
        check_no_hidden_values(spec)  # (a recorded experiment's file too: no record excuses running with ***)
    spec_storage = spec.storage if spec is not None else None
    url = resolve_url(storage, spec_storage, os.environ)
    origin = url_origin(storage, spec_storage, os.environ)  # errors name it as other commands' do
    refuse_in_memory(url, origin)
    if spec is not None:
        try:
            check_new_spec(spec)
        except UserInputError:
            # only a store recording this experiment excuses the new-spec checks (its spec predates them); refused
            # before a store is created, so a mistake in a first cycle leaves no empty database behind
            if not _records_experiment(url, spec.name, on_open):
                raise
    if _names_a_file(target):  # the store is created for it: a typo in a first cycle's path left an empty one
        _refuse_missing_files(data, reference)
    return SQLStore(url, create=_names_a_file(target), origin=origin), spec


def _records_experiment(url: str, name: str, on_open: OnOpen = None) -> bool:
    """Whether the store at ``url`` records the experiment ``name``; False where it cannot be read (none there, a
    server that does not answer, a newer tunesmith's store, another application's tables): the spec's own error is then
    the one to show, as the thing to fix first, and the store's comes back on the next try if it still stands. The
    store is handed to ``on_open`` as the command's own is: an older one is upgraded and said, or refused."""
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(url, create=False)
    if on_open is not None:  # as the command's own store: an upgrade said, or refused (TUNESMITH_MIGRATE=never)
        on_open(store)
    try:
        return name in store.experiment_names()
    except UpgradeRefused:  # an older store this host may not upgrade, and so not read: the thing to fix first
        raise
    except TunesmithError:
        return False
    finally:
        store.close()


def _names_a_file(target: str) -> bool:
    return target.lower().endswith((".yaml", ".yml"))


def run_cycle(store: SQLStore, target: str, data: str, *, reference: str | None = None, trials: int | None = None,
              model_name: str | None = None, listener: RunListener | None = None, clock: Clock | None = None,
              promote: PromoteFn | None = None, on_runner: Callable[[Runner], None] | None = None,
              spec_file: ExperimentSpec | None = None, tracking_uri: str | None = None,
              watching: tuple[str, ...] = (), force_retune: bool = False) -> CycleReport:
    """One cycle on ``target`` (a spec file or an experiment name) with the new rows ``data``.

    A spec file whose experiment is not in the store yet is tuned first (step ``tune``); a first tuning that was
    interrupted, or failed before any trial completed, is resumed first (spec file or name). ``on_runner`` is given
    each tuning run's runner (the CLI installs its Ctrl-C / SIGTERM / SIGHUP handlers there); the handlers in
    place before a run are restored after it, so a stop request never reaches a runner that has ended.
    ``spec_file``: the spec file ``target`` names, already read (:func:`cycle_command` read it to find the store);
    None: read here. A task's new rows are read once, as the cycle starts, for every step that looks at them.
    ``tracking_uri``: the registry (``--tracking-uri``, with ``model_name``), in place of the lineage's recorded
    one (:func:`lineage_registry`); the tuning runs' live tracking follows their spec, as `run`'s and `retune`'s.
    ``watching``: :func:`watch`'s own flags (``--every S``...), for a refusal's fix to repeat `watch` with them;
    empty: the command that ran this cycle is `cycle`. ``force_retune``: re-tune on drift even rows a re-tune of
    the champion was tuned on and a promotion gate rejected (:func:`_rejected_on_these_rows`: skipped otherwise).

    Raises:
        UserInputError: a missing experiment or file, data that does not fit the experiment.
        LineageBusy: another cycle holds the lineage (:mod:`tunesmith.lineage_guard`): try again later.
    """
    from tunesmith.lineage_guard import LineageBusy, lineage_held
    from tunesmith.retune import lineage_root
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tracking import check_tracking_destination

    def again(on: str) -> str:  # the command that ran this cycle, on experiment or spec file ``on``
        return _command_again(store, on, given, model_name, reference, trials, watching)

    # the one file this cycle reads, checks, re-tunes on and records: a link re-pointed at each day's rows and moved
    # while the cycle ran (seconds to hours) gave a cycle that judged one day, re-tuned on the next and named it
    given, data = data, resolved_data(data)

    from_file = _names_a_file(target)
    if from_file:
        spec = _spec_file(store, target, spec_file, again)  # its tracking URI checked before the store is made
    else:
        spec = spec_from_dict(store.experiment(target).spec)
        check_tracking_destination(spec, store.url)  # as `run` does: MLflow's tables would break the store
    new_rows = _check_cycle_input(store, spec, data, reference, model_name, promote)  # before hours of tuning
    if tracking_uri is not None and model_name is None:  # (a flag that changed nothing was taken as obeyed)
        raise UserInputError("--tracking-uri: names the registry a cycle reads its champion from and promotes into, "
                             "which it does with --model-name only; give --model-name M too (the runs themselves "
                             "are tracked where their spec says)")
    # one cycle per lineage at a time, from the champion's read to the promotion (two read the same champion, and
    # both promoted): held in the store, so across hosts too; a second one is refused, exit 75
    named = spec.name if from_file else target   # a re-tune's name too: its lineage is held, not the name typed
    root = lineage_root(store.experiment(named)) if named in store.experiment_names() else named
    clock = clock or SystemClock()
    try:
        with lineage_held(store, root) as hold:
            if hold.took_over is not None:
                _record_cycle_event(store, root, clock, "took_over", StepStatus.DONE.value, _took_over_said(hold),
                                    {"holder": hold.took_over[0], "since": hold.took_over[1]})
            return _run_held_cycle(store, target, data, spec, new_rows, reference=reference, trials=trials,
                                   model_name=model_name, listener=listener or RunListener(),
                                   clock=clock, promote=promote, on_runner=on_runner, hold=hold,
                                   tracking_uri=tracking_uri, again=again(target), given=given,
                                   force_retune=force_retune)
    except (LineageBusy, RegistryUnavailable) as e:  # refused before any work (exit 75): the store says so too
        outcome = CycleOutcome.BUSY if isinstance(e, LineageBusy) else CycleOutcome.UNAVAILABLE
        _record_cycle_event(store, root, clock, "refused", outcome.value, str(e), {"exit_code": EXIT_TEMPFAIL})
        raise


def _record_cycle_event(store: SQLStore, root: str, clock: Clock, step: str, status: str, why: str,
                        detail: dict[str, Any]) -> None:
    """An event ``cycle_<step>`` on lineage ``root``'s experiment, shaped as a step's (the audit trail lists it), for
    what befell a cycle outside its steps: refused (busy, MLflow down as the champion was read: three scheduled runs
    failing overnight left no trace but the CI's own artifact), or the hold of a killed cycle taken over. Nothing
    where the root is not recorded yet (a first cycle) or the store does not answer now (the refusal is said
    anyway)."""
    with suppress(TunesmithError):
        if root in store.experiment_names():
            store.record_event(store.experiment(root).id, f"cycle_{step}", clock.now(), detail={
                "step": step, "status": status, "why": why, "detail": detail, "actor": actor()})


def _took_over_said(hold: LineageHold) -> str:
    from tunesmith.lineage_guard import utc

    assert hold.took_over is not None
    holder, since = hold.took_over
    return (f"the cycle that held lineage {hold.root!r} ({holder}, since {utc(since)}) ended without giving its hold "
            "back (killed outright, or its host lost): this cycle took the hold over; what it left (an abandoned "
            "re-tune) is resumed or offered below")


def resolved_data(data: str) -> str:
    """``--data`` as a cycle reads it throughout: absolute, symlinks resolved, once as it starts. A path that names no
    file stays as typed, for the refusal to name it so (empty: an unset variable, not the working folder)."""
    return os.path.realpath(data) if data and os.path.exists(data) else data


def _command_again(store: SQLStore, target: str, data: str, model_name: str | None, reference: str | None,
                   trials: int | None, watching: tuple[str, ...]) -> str:
    """The command that ran the cycle, for a refusal's fix to repeat (the fix adds ``--tracking-uri URI``): `watch`
    with its own flags where ``watching`` (a `watch` user told to run `cycle` ran one cycle, not the loop), and the
    flags that choose what a cycle does: copied without --reference or --trials it checked or re-tuned otherwise,
    without --storage (where :func:`~tunesmith.storage.sql.store_to_name` names it) it used another store."""
    from tunesmith.storage.sql import store_to_name

    words = ["tunesmith", "watch" if watching else "cycle", target, "--data", data]
    words += ["-m", model_name] if model_name is not None else []
    words += ["--reference", reference] if reference is not None else []
    words += ["--trials", str(trials)] if trials is not None else []
    words += ["--storage", named] if (named := store_to_name(store.url, os.environ)) is not None else []
    return shlex.join([*words, *watching])


def _run_held_cycle(store: SQLStore, target: str, data: str, spec: ExperimentSpec,
                    new_rows: dict[str, list[Any]] | None, *, reference: str | None, trials: int | None,
                    model_name: str | None, listener: RunListener, clock: Clock, promote: PromoteFn | None,
                    on_runner: Callable[[Runner], None] | None, hold: LineageHold,
                    tracking_uri: str | None, again: str, given: str, force_retune: bool = False) -> CycleReport:
    """:func:`run_cycle` once its input is checked and its lineage held (``hold``: checked before a promotion);
    ``again``: the command that ran it, for a refusal's fix (:func:`_command_again`); ``data``: the new rows'
    file, resolved (:func:`resolved_data`), ``given``: as typed."""
    from tunesmith.drift import tuned_on
    from tunesmith.retune import checked_retune_plan, run_retune_plan
    from tunesmith.runner import resume_experiment
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage.sql import resume_hint

    steps: list[CycleStep] = []
    root_name = target
    from_file = _names_a_file(target)
    # the registry's champion, read (and refused when it is not of this lineage) before any tuning. Read every cycle,
    # `watch`'s too: once MLflow is imported (1-3 s, once per process, and needed anyway for the promote step) a read
    # is milliseconds, and the store's audit trail cannot stand in for it (a rollback by someone without this store,
    # an alias moved in MLflow, a promotion killed between registering and recording are not in it)
    registry = (lineage_registry(store, spec.name if from_file else target, spec, tracking_uri)
                if promote is None and model_name is not None else None)  # one, for reading and for promoting
    if registry is not None and tracking_uri is not None:  # the check `run` makes of the spec's, before any work
        from tunesmith.tracking.destination import refuse_unusable_uri

        refuse_unusable_uri(registry.uri, registry.field, store.url, reach_servers=False)
    read = (_registered_champion(store, spec.name if from_file else target, model_name, registry,
                                 tracking_uri is not None, again)
            if registry is not None and model_name is not None else None)  # narrows for mypy
    registered, version = read if read is not None else (None, None)
    # a rollback holds the model's cycles until released (tunesmith.promotion.rollback_hold): nothing re-tuned nor
    # promoted, or the next scheduled run re-promoted what the on-call engineer had just rolled back
    held = _rollback_hold(registry, model_name, version) if spec.promotion is not None else None
    registry_uri = registry.uri if registry is not None else None
    # what became of the file a trial-code champion was tuned on: hashed once a cycle (the refusal below, the drift
    # check and its report each asked again, and a file of gigabytes was read three times)
    checked_file: tuple[str, TunedOn] | None = None   # (the champion's name, its file)
    if spec.task is None and reference is None:
        checked_file = _refuse_no_reference(store, spec.name if from_file else target, registered)
    source = "lineage" if registered is None else "registry"
    # the champion is the registry's alone once the cycle promotes into it: a lineage head is not served
    promoting = model_name is not None and (promote is not None or spec.promotion is not None)
    if from_file or _first_tuning_to_resume(store, target):
        with handlers_restored():
            root_name, tune_step = _tune_if_new(store, spec, listener, clock, on_runner)
        steps.append(tune_step)
    root = store.experiment(root_name)

    unrecorded = list(steps)   # the tune step: recorded with the next, so a refused drift check records nothing
    who = {"actor": actor()}   # each step's: which user, host and command ran it (a no-drift day leaves a trace too)

    def flush() -> None:
        for earlier in unrecorded:
            store.record_event(root.id, f"cycle_{earlier.name}", clock.now(), detail={**earlier.to_json(), **who})
        unrecorded.clear()

    def record(step: CycleStep) -> None:
        flush()
        steps.append(step)
        store.record_event(root.id, f"cycle_{step.name}", clock.now(), detail={**step.to_json(), **who})

    def reported(outcome: CycleOutcome, checked: str | None, champion: str | None,
                 failed_exit: int = EXIT_FAILED) -> CycleReport:
        """The cycle's report: ``checked`` once a drift check compared the rows with it, and ``champion`` when known:
        the registry's where the cycle promotes into one (a lineage head nothing registered is not served), else
        the lineage head; the walk's first tuning whose promotion failed was reported checked and champion."""
        served = champion if not promoting or source == "registry" or outcome is CycleOutcome.PROMOTED else None
        return CycleReport(root_name, checked, served, outcome, tuple(steps),
                           source if checked or served else None, failed_exit=failed_exit, data=data)

    if steps:
        if steps[0].status in (StepStatus.FAILED, StepStatus.INTERRUPTED):  # no champion to check yet
            for name in ("drift", "retune", "promote"):
                record(CycleStep(name, StepStatus.SKIPPED, "the first tuning " + (
                    "failed" if steps[0].status is StepStatus.FAILED else "was interrupted")))
            return reported(CycleOutcome(steps[0].status.value), None, None)
    doing, head = "promote", root   # the step under way, and the champion checked, for a step that raises
    drifted: CycleStep | None = None  # a drift step found drift, recorded once the re-tune's plan is accepted
    judging: str | None = None  # the experiment whose promotion is under way (offered or not), named by a failed step
    offering = False            # ... and it is an undecided re-tune's, offered again
    try:
        decided: CycleOutcome | None = None   # a promotion this cycle decided before its drift check, if any
        if promoting and registered is None and _first_tuning_to_offer(store, root, steps):
            # the first tuning is a champion to serve, through the gates as a re-tune is (registered only after the
            # first drift, nothing was served until then); offered until a promotion of it was done or rejected: a
            # rejection is recorded once, later cycles check drift against it and re-tune; one that failed or was
            # cut (a registry down, SIGKILL) is offered again by the next cycle
            flush()  # the tune step first: a cycle killed during the promotion leaves the first tuning to offer
            hold.check()
            first = promote_step(store, root_name, spec, model_name, promote, registry_uri,
                                 reason="tunesmith cycle: first tuning")
            record(replace(first, why=f"first tuning: {first.why}", detail={**first.detail, "first_tuning": True}))
            if first.status is StepStatus.REJECTED:
                why = "a promotion gate rejected the first tuning, so nothing is registered to compare with"
                for name in ("drift", "retune"):
                    record(CycleStep(name, StepStatus.SKIPPED, why))
                return reported(CycleOutcome.REJECTED, None, None)  # nothing registered, no drift check
            registered, source, decided = store.experiment(root_name), "registry", CycleOutcome.PROMOTED
        offered = (_undecided_retune(store, root, registered) if promoting and decided is None and held is None
                   else None)
        if offered is not None:
            # judged now, before a drift check against the champion it was tuned to replace re-tunes it again (hours);
            # the cycle then goes on, as after a first tuning's promotion, from the champion it leaves
            head = store.experiment(registered.name) if registered is not None else root
            judging, offering = offered.name, True
            flush()
            hold.check()
            record(_offered_promotion(store, offered, model_name, promote, registry_uri))
            offering = False
            if steps[-1].status is StepStatus.DONE:
                registered, source, decided = store.experiment(offered.name), "registry", CycleOutcome.PROMOTED
            elif steps[-1].status is StepStatus.REJECTED:
                doing, decided = "report", CycleOutcome.REJECTED  # a failure marking it is no second promote step
                store.set_attributes(offered.id, {"rejected": True}, clock.now())
        doing = "drift"
        head = lineage_head(store, root_name) if registered is None else store.experiment(registered.name)  # fresh
        if not _has_champion(store, head):  # a drift check would find drift and the re-tune refuse to start
            why = f"{head.name} has no completed trial to compare with; see `tunesmith trials {head.name}`"
            for name in ("drift", "retune", "promote"):
                record(CycleStep(name, StepStatus.SKIPPED if name != "drift" else StepStatus.FAILED, why))
            return reported(CycleOutcome.FAILED, None, None)
        tuned = (checked_file[1] if checked_file is not None and checked_file[0] == head.name
                 else tuned_on(head) if spec.task is None else None)
        if registry is not None and model_name is not None and decided is CycleOutcome.PROMOTED:
            version = registry.by_alias(model_name, "champion")  # this cycle moved it
        served = _served_trial(version, model_name, head) if registered is not None else None
        report = _check_champion(store, head, tuned, data, reference, new_rows, served)
        brief = {k: v for k, v in report.to_json().items() if k != "columns"}
        if not report.drifted:
            record(CycleStep("drift", StepStatus.DONE,
                             f"no drift beyond the thresholds in {report.data} against {report.reference_said}",
                             brief))
            for name in ("retune", "promote"):  # (a hold, said: it would stop the next drift's re-tune)
                record(CycleStep(name, StepStatus.SKIPPED, "no drift" if held is None else f"no drift; {held.said}",
                                 {} if held is None else {"held_by_rollback": held.to_json()}))
            outcome = decided or CycleOutcome.NO_DRIFT  # a first tuning's or an offered re-tune's promotion
            return reported(outcome, head.name, head.name)
        pending = _interrupted_retune(store, head, data, given)
        drifted = CycleStep("drift", StepStatus.DONE, f"{'; '.join(report.shortened_reasons(5))} (in "
                            f"{report.data}, against {report.reference_said})", brief)
        if held is not None:  # the drift is reported (the drift step, the report); the re-tune waits for a release
            record(drifted)
            for name in ("retune", "promote"):
                record(CycleStep(name, StepStatus.SKIPPED, held.said, {"held_by_rollback": held.to_json()}))
            return reported(CycleOutcome.HELD, head.name, head.name)
        seen = None if pending is not None or force_retune else _rejected_on_these_rows(store, head, data)
        if seen is not None:  # the same rows, the same champion: a re-tune would find the same model (hours)
            record(drifted)
            rejected, digest = seen
            record(CycleStep("retune", StepStatus.SKIPPED, f"these rows ({data}, {digest[:19]}) were re-tuned as "
                             f"{rejected} and a promotion gate rejected it: not re-tuned again (the same rows give "
                             f"the same model); `--force-retune` re-tunes them, `tunesmith promote {rejected} -m "
                             "MODEL` ships that one anyway", {"rejected_before": rejected, "data_digest": digest}))
            record(CycleStep("promote", StepStatus.SKIPPED, f"nothing re-tuned: {rejected}, tuned on these rows, was "
                             "rejected", {"rejected_before": rejected}))
            return reported(CycleOutcome.REJECTED, head.name, head.name)
        doing = "retune"  # a refusal of the re-tune is the re-tune's failure (the drift check ran), not the drift's
        # the re-tune's refusals (rows it cannot tune on) come before the drift step is recorded, not after it
        plan = None if pending is not None else checked_retune_plan(store, head.name, data, trials=trials,
                                                                    data_columns=new_rows)
        record(drifted)
        with handlers_restored():
            if plan is None:  # yesterday's stopped re-tune on these very rows: continued, not started again
                assert pending is not None
                result = resume_experiment(pending, store, listener, clock, on_runner)
            else:
                result = run_retune_plan(store, plan, listener, clock, on_runner)
        ended = [t for t in result.trials if t.state.is_finished()]
        retune_detail = {"experiment": result.experiment.name, "status": result.status.value,
                         "stop_reason": result.stop_reason, "trials": len(result.trials),
                         "best": _best_value(result.experiment, result.trials)}
        if result.status is RunStatus.INTERRUPTED:
            record(CycleStep("retune", StepStatus.INTERRUPTED, f"{result.stop_reason}; continue it with "
                             f"`{resume_hint(store, result.experiment.name)}` (the next cycle "
                             "on the same data resumes it)",
                             retune_detail))
            record(CycleStep("promote", StepStatus.SKIPPED, "the re-tune was interrupted"))
            return reported(CycleOutcome.INTERRUPTED, head.name, head.name)
        if result.status is not RunStatus.COMPLETED or not ended or all(t.state is TrialState.FAILED for t in ended):
            why = (f"the re-tune did not complete: {result.stop_reason}" if result.status is not RunStatus.COMPLETED
                   else f"every trial of the re-tune failed ({len(ended)}); see `tunesmith trials "
                        f"{result.experiment.name}` and the trial logs")
            record(CycleStep("retune", StepStatus.FAILED, why, retune_detail))
            record(CycleStep("promote", StepStatus.SKIPPED, "the re-tune failed"))
            return reported(CycleOutcome.FAILED, head.name, head.name)
        resumed = (" (a resumed re-tune keeps its recorded trial budget: --trials applies to a new one)" if pending
                   else "")
        record(CycleStep("retune", StepStatus.DONE, f"{'resumed and finished' if pending else 're-tuned as'} "
                         f"{result.experiment.name}{resumed}", retune_detail))
        spec = spec_from_dict(result.experiment.spec)
        doing, judging = "promote", result.experiment.name
        hold.check()
        if registry is not None and spec.promotion is not None and (held := _rollback_hold(
                registry, model_name, registry.by_alias(str(model_name), "champion"))) is not None:
            # rolled back while it re-tuned: not promoted over the rollback
            record(CycleStep("promote", StepStatus.SKIPPED, f"{held.said}; {result.experiment.name}, re-tuned "
                             "meanwhile, is not offered again once it is released",
                             {"experiment": result.experiment.name, "held": True,
                              "held_by_rollback": held.to_json()}))
            return reported(CycleOutcome.HELD, head.name, head.name)
        step = promote_step(store, result.experiment.name, spec, model_name, promote, registry_uri)
        record(step)
        outcome = {StepStatus.DONE: CycleOutcome.PROMOTED, StepStatus.REJECTED: CycleOutcome.REJECTED}.get(
            step.status, CycleOutcome.RETUNED)
        # with a registry, only a promotion changes the champion; without one, a re-tune not rejected is the new head
        kept = outcome is CycleOutcome.REJECTED or (registered is not None and outcome is not CycleOutcome.PROMOTED)
        champion = head.name if kept else result.experiment.name
        doing = "report"  # the promote step is recorded: what fails from here is not a second promote step
        if outcome is CycleOutcome.REJECTED:  # the lineage head stays the champion: the next cycle checks it again
            store.set_attributes(result.experiment.id, {"rejected": True}, clock.now())
        return reported(outcome, head.name, champion)
    except Exception as e:
        if not offering and all(s.status is StepStatus.SKIPPED for s in steps):
            raise  # refused before any work (bad input: exit 2, nothing recorded); an offer's refit is work
        # work was done (a tuning, a drift check): its steps are recorded and the one that raised is a failed step,
        # not bad input with no steps; exit 2 when the fix is the user's (a spec field), else 1
        why = str(e) if isinstance(e, UserInputError) else f"{type(e).__name__}: {e}"
        if doing == "retune" and drifted is not None and drifted not in steps:
            record(drifted)  # refused by the re-tune's plan: the drift check had run
        offered_again = {"offered_again": True} if offering else {}
        # which re-tune's promotion failed, and whether for a while (the registry down: offered again) or for good
        judged = ({"experiment": judging, "temporary": isinstance(e, TemporaryFailure)}
                  if doing == "promote" and judging is not None else {})
        record(CycleStep(doing, StepStatus.FAILED, f"{_offered(judging)}: {why}" if offering and judging else why,
                         {"error": why, **judged, **offered_again}))
        checked = head.name if any(s.name == "drift" and s.status is StepStatus.DONE for s in steps) else None
        # a failed first promotion leaves none known: the next cycle offers it again (an offered re-tune's, the
        # champion it was offered against)
        known = checked is not None or doing != "promote" or offering
        return reported(CycleOutcome.FAILED, checked, head.name if known else None,
                        failed_exit=EXIT_INPUT if isinstance(e, UserInputError)
                        else EXIT_TEMPFAIL if isinstance(e, TemporaryFailure) else EXIT_FAILED)


def _first_tuning_to_offer(store: SQLStore, root: ExperimentRecord, steps: list[CycleStep]) -> bool:
    """Whether a cycle tuned (or resumed) ``root`` as its first tuning (this one: ``steps``; an earlier one: its
    recorded ``cycle_tune`` event) and no cycle's promotion of it has been done or rejected since: read from the
    store, not this cycle's steps, so a promotion that failed or was cut is offered again. A first tuning `run`
    recorded is not offered (`tunesmith promote` does that)."""
    recorded = [e.payload for e in store.events(root.id) if e.kind in ("cycle_tune", "cycle_promote")]
    tuned = (bool(steps) and steps[0].status is StepStatus.DONE) or any(
        p.get("step") == "tune" and p.get("status") == StepStatus.DONE.value for p in recorded)
    return tuned and not any(
        p.get("step") == "promote" and _of_the_first_tuning(p)
        and p.get("status") in (StepStatus.DONE.value, StepStatus.REJECTED.value) for p in recorded)


def _undecided_retune(store: SQLStore, root: ExperimentRecord,
                      registered: ExperimentRecord | None) -> ExperimentRecord | None:
    """The re-tune of the champion a cycle owes a promotion decision: the champion's newest re-tune (``registered``'s;
    with nothing registered, the lineage head itself, which the walk reaches through undecided re-tunes) when a
    cycle of ``root``'s lineage made it (a recorded ``cycle_retune`` step names it, whatever its status: one it left
    interrupted may have been finished by ``tunesmith resume``), it completed with a completed trial, and no
    promotion of it was decided: none promoted it or found it the champion already, no gate rejected it (a cycle's
    promote step, ``tunesmith promote``). So one whose promotion failed (the registry down) or never ran (the cycle
    killed after its re-tune) is offered, by each cycle until decided; a hand-run ``retune`` is not (``tunesmith
    promote`` is its owner's call), and an older one a later re-tune came after is history. A promotion that failed
    for good (any error but a temporary one, exit 75: a refit whose data file is gone) is decided: offered again, it
    would fail each cycle, and the lineage would never be checked for drift again."""
    from tunesmith.audit import AuditKind

    if registered is not None:
        existing = store.experiment_names()
        names = [n for n in registered.attributes.get("retunes", []) if n in existing]
        newest = store.experiment(names[-1]) if names else None
    else:
        head = lineage_head(store, root.name)
        newest = head if head.name != root.name else None
    if newest is None or newest.status is not RunStatus.COMPLETED or newest.attributes.get("rejected"):
        return None
    # its own steps: not those of a deleted re-tune of the same name, recorded before this one was
    steps = [e.payload for e in store.events(root.id)
             if e.kind in ("cycle_retune", "cycle_promote") and e.at >= newest.created_at]
    of_it = [p for p in steps if (p.get("detail") or {}).get("experiment") == newest.name]
    made = any(p.get("step") == "retune" for p in of_it)
    judged = any(p.get("step") == "promote" and (
        p.get("status") in (StepStatus.DONE.value, StepStatus.REJECTED.value)   # (the promote seam records no audit)
        or (p.get("status") == StepStatus.FAILED.value and (p.get("detail") or {}).get("temporary") is False)
        or (p.get("status") == StepStatus.SKIPPED.value and (p.get("detail") or {}).get("held")))
        for p in of_it)  # a failure for good (not the registry down: a refit's data file gone) is not offered again,
    # nor one a rollback held (tuned on the rows the rollback was about, likely: the next drift check decides)
    if not made or judged or not _has_champion(store, newest):
        return None
    decided = (AuditKind.PROMOTED, AuditKind.PROMOTION_ALREADY_CHAMPION, AuditKind.PROMOTION_REJECTED)
    return None if any(e.kind in decided for e in store.events(newest.id)) else newest


def _offered_promotion(store: SQLStore, offered: ExperimentRecord, model_name: str | None,
                       promote: PromoteFn | None, registry_uri: str | None) -> CycleStep:
    """The promote step of ``offered`` (:func:`_undecided_retune`), through its recorded spec's gates, saying it was
    offered again (``detail.offered_again``)."""
    from tunesmith.spec.loader import spec_from_dict

    step = promote_step(store, offered.name, spec_from_dict(offered.spec), model_name, promote, registry_uri,
                        reason="tunesmith cycle: drift re-tune, offered again")
    return replace(step, why=f"{_offered(offered.name)}: {step.why}", detail={**step.detail, "offered_again": True})


def _offered(retune: str) -> str:
    """What a promote step offering ``retune`` (:func:`_undecided_retune`) says first, done or failed."""
    return f"{retune}, an earlier cycle's re-tune never promoted nor rejected, offered again"


def _of_the_first_tuning(step: Mapping[str, Any]) -> bool:
    """Whether a recorded promote step promoted the first tuning: its ``detail.first_tuning``, not its wording
    (which a message's rewording would change). Steps recorded before that flag say it only by ``why``'s prefix."""
    return bool((step.get("detail") or {}).get("first_tuning")) or str(step.get("why", "")).startswith(
        "first tuning: ")


def _rejected_on_these_rows(store: SQLStore, head: ExperimentRecord, data: str) -> tuple[str, str] | None:
    """A re-tune of ``head`` (the champion checked) that a cycle's promotion gate rejected and that was tuned on the
    very rows of ``data`` (the digest of its bytes: a task re-tune's data fingerprint, a trial-code one's recorded
    digest), and that digest; None where there is none. The file is hashed only where ``head`` has a rejected
    re-tune. Re-tuning those rows again against the same champion found the same model and was rejected by the same
    gate: a scheduler's retry, `watch` on a link nobody re-pointed, or the cycle that had just rejected an offered
    re-tune of them each paid for a whole re-tune."""
    from tunesmith.digests import file_digest

    existing = store.experiment_names()
    rejected = [c for c in (store.experiment(n) for n in head.attributes.get("retunes", []) if n in existing)
                if c.attributes.get("rejected")]
    if not rejected or not os.path.isfile(data):
        return None
    digest = file_digest(data)
    for child in reversed(rejected):  # the newest first
        tuned = ((child.attributes.get("data_fingerprint") or {}).get("content_hash")
                 or (child.attributes.get("lineage") or {}).get("data_digest"))
        if tuned == digest:
            return child.name, digest
    return None


def _rollback_hold(registry: ModelRegistry | None, model_name: str | None,
                   champion: ModelVersion | None) -> Hold | None:
    """The rollback holding ``model_name`` in ``registry`` (whose champion is ``champion``, as read), or None: none
    read (no registry, nothing registered) or none holding it."""
    from tunesmith.promotion.rollback_hold import hold_of

    if registry is None or model_name is None or champion is None:
        return None
    return hold_of(registry, model_name, champion)


def _served_trial(version: ModelVersion | None, model_name: str | None,
                  head: ExperimentRecord) -> ServedTrial | None:
    """The trial of ``head`` that registered champion ``version`` serves, with the scores recorded at its promotion
    (its tags), for the drift check to score: the experiment's best trial is not the one served where a promotion
    shipped another (`tunesmith promote --trial N`). None: not known (no registry, a version of another experiment,
    or without the tag)."""
    from tunesmith.drift import ServedTrial
    from tunesmith.promotion.promote import METRIC_TAG
    from tunesmith.promotion.version_tags import TRIAL_TAG, of_experiment

    trial = version.tags.get(TRIAL_TAG, "") if version is not None else ""
    if version is None or not of_experiment(version, head) or not trial.isdigit():
        return None
    metrics = {}
    for key, value in version.tags.items():
        if key.startswith(METRIC_TAG):
            try:
                metrics[key[len(METRIC_TAG):]] = float(value)
            except ValueError:
                continue  # a tag edited by hand: not a score
    return ServedTrial(int(trial), f"the champion of model {model_name!r}, version {version.version}, as the "
                                   "registry serves it", metrics)


def served_by_trail(store: SQLStore, name: str) -> ServedTrial | None:
    """The trial of experiment ``name`` that a registered model serves by this store's audit trail of promotions and
    rollbacks (no MLflow read: `tunesmith drift NAME`, which names no model), with the holdout scores recorded at its
    promotion; None where the trail has no champion of ``name`` (with several models, the first by name)."""
    from tunesmith.drift import ServedTrial
    from tunesmith.promotion.champions import champions_held

    if name not in store.experiment_names():
        return None   # the drift check says so, as it always did
    held = [c for c in champions_held(store, store.experiment(name)) if c.trial is not None]
    if not held:
        return None
    first = held[0]
    assert first.trial is not None
    return ServedTrial(first.trial, f"the champion of model {first.model_name!r}, version {first.version}, by this "
                                    "store's audit trail", first.metrics)


def _check_champion(store: SQLStore, head: ExperimentRecord, tuned: TunedOn | None, data: str,
                    reference: str | None, new_rows: dict[str, list[Any]] | None,
                    served: ServedTrial | None = None) -> DriftReport:
    """The drift check of the new rows against what the champion ``head`` was tuned on: a re-tune's own file (its
    task data, or the file trial code was re-tuned on), whatever ``--reference`` says, which serves a champion
    that is the first tuning (a trial-code one holds no file), and a re-tune whose file is gone or was overwritten
    since (one recorded before re-tunes kept a copy of their rows). Comparing a re-tune with ``--reference`` (the
    first tuning's rows) found the drift it was re-tuned for, and re-tuned again on the same rows, every cycle.
    ``tuned``: :func:`tunesmith.drift.tuned_on` of a trial-code ``head``, as the cycle found it; ``served``: the trial
    the registry serves (:func:`_served_trial`), scored rather than the best one."""
    from tunesmith.drift import check_stored

    if reference is None or not _own_file_holds_its_rows(store, head, tuned):
        return check_stored(store, head.name, data, reference, data_columns=new_rows, tuned=tuned, served=served)
    report = check_stored(store, head.name, data, None, data_columns=new_rows, tuned=tuned, served=served)
    return replace(report, notes=(*report.notes, f"--reference {reference} is not used: the champion {head.name} is "
                                                 f"a re-tune, compared with the rows it was tuned on, "
                                                 f"{report.reference} (--reference serves a first tuning)"))


def _own_file_holds_its_rows(store: SQLStore, head: ExperimentRecord, tuned: TunedOn | None) -> bool:
    """Whether re-tune ``head``'s own file still holds the rows it was tuned on: a trial-code one's file with the
    digest recorded then (one recorded without a digest, by an earlier tunesmith, gives way to ``--reference``), a
    task's data file with the fingerprint its last trials ran on. False for a first tuning."""
    from tunesmith.promotion.tuned_data import changes_since_run, data_file
    from tunesmith.spec.loader import spec_from_dict

    if not (head.attributes.get("lineage") or {}).get("parent"):
        return False
    spec = spec_from_dict(head.spec, recorded=True)
    if spec.task is None:
        return tuned is not None and tuned.usable and tuned.verified
    if spec.task.data.path is None or not os.path.isfile(data_file(spec)):
        return False
    return changes_since_run(store, head, spec) == []   # None: no fingerprint recorded, nothing to hold to


def _refuse_no_reference(store: SQLStore, root: str,
                         registered: ExperimentRecord | None) -> tuple[str, TunedOn]:
    """A trial-code lineage's cycle without ``--reference``: refused, before any tuning, unless its champion holds
    a file of its own (a re-tune's, unchanged since: :func:`tunesmith.drift.tuned_on`). The champion is the one
    :func:`run_cycle` checks: the registry's, else the lineage head; a first tuning still to run or resume holds
    none. Returns the champion's name and what became of its file, for the drift check (hashed once).

    Raises:
        UserInputError: naming ``--reference``.
    """
    from tunesmith.drift import tuned_on
    from tunesmith.drift.check import no_reference

    if root not in store.experiment_names() or _first_tuning_to_resume(store, root):
        raise no_reference(root)
    head = registered if registered is not None else lineage_head(store, root)
    tuned = tuned_on(head)
    if tuned is None:
        raise no_reference(head.name)
    if not tuned.usable:
        raise UserInputError(f"--reference: {tuned.note(head.name)}; give the rows it was tuned on: --reference R")
    return head.name, tuned


def _registered_champion(store: SQLStore, lineage_root: str, model_name: str, registry: ModelRegistry, named: bool,
                         again: str) -> tuple[ExperimentRecord, ModelVersion] | None:
    """The experiment of ``lineage_root``'s lineage that ``model_name``'s champion in ``registry`` was registered
    from, and the champion's version (its trial is the one served); None when no champion is registered yet (the
    cycle then follows the lineage, as without a model name).
    ``named``: the registry was given as ``--tracking-uri``; ``again``: the cycle's command, for a refusal's fix.

    Raises:
        UserInputError: the champion came from an experiment that is not ``lineage_root`` or one of its re-tunes in
            this store (another lineage's model, a deleted experiment's): comparing with this lineage instead
            would check, re-tune and promote against a model that is not the one served. Or the registry holds no
            champion while the store recorded promotions of the model (its SQLite file missing, or, unless named by
            ``--tracking-uri``, another registry): the cycle would promote into it beside the one that holds it.
    """
    from tunesmith.promotion.champions import refuse_a_registry_without_its_champion
    from tunesmith.promotion.version_tags import EXPERIMENT_TAG, of_experiment

    version = registry.by_alias(model_name, "champion")   # (a missing SQLite file is read as none, not created)
    refuse_a_registry_without_its_champion(store, model_name, registry, version, named, lineage_root, again)
    if version is None:
        return None
    name = version.tags.get(EXPERIMENT_TAG)
    recorded = {e.name: e for e in store.experiments()}   # one read, for the walk up the lineage too
    champion = f"the champion of model {model_name!r} (version {version.version})"
    if name and name not in recorded:
        raise UserInputError(f"--model-name: {champion} was registered from experiment {name!r}, which is no longer "
                             f"in this store (deleted); roll the model back to a champion this store holds (tunesmith "
                             f"rollback {model_name} --reason ...) or promote a trial of {lineage_root!r} (tunesmith "
                             f"promote {lineage_root} -m {model_name}), then run the cycle again")
    if name and of_experiment(version, recorded[name]) and _descends_from(recorded, name, lineage_root):
        return recorded[name], version
    raise UserInputError(f"--model-name: {champion} was registered from experiment {name or '(untagged)'!r}, which "
                         f"is not {lineage_root!r} or one of its re-tunes in this store; run the cycle on that "
                         f"experiment's lineage, or give {lineage_root!r}'s lineage a model name of its own")


def _descends_from(recorded: dict[str, ExperimentRecord], name: str, ancestor: str) -> bool:
    """Whether experiment ``name`` is ``ancestor`` or a re-tune of it (of a re-tune of it, ...), among ``recorded``."""
    seen: set[str] = set()
    while name not in seen:
        if name == ancestor:
            return True
        seen.add(name)
        parent = (recorded[name].attributes.get("lineage") or {}).get("parent")
        if not parent or parent not in recorded:
            return False
        name = str(parent)
    return False


def _check_cycle_input(store: SQLStore, spec: ExperimentSpec, data: str, reference: str | None,
                       model_name: str | None, promote: PromoteFn | None) -> dict[str, list[Any]] | None:
    """What would make a later step refuse, refused first (what needs the recorded experiment, the re-tune's plan,
    is checked before the drift step is recorded). Returns the task's new rows, read here for every later step
    (:func:`tunesmith.retune.new_task_rows`)."""
    from tunesmith.retune import new_task_rows, refuse_interactive_trial, refuse_labels_of_one_class

    refuse_interactive_trial(spec.name, spec)
    if spec.task is not None and spec.task.data.path is None:
        source = spec.task.data.sklearn or "generate"
        raise UserInputError(f"task.data: experiment {spec.name!r} tunes on bundled or generated data ({source}); a "
                             "cycle re-tunes on the new rows, so its task needs data from a file (path: data.csv, "
                             "target: label); `tunesmith drift` alone checks new rows against it")
    if promote is None and spec.promotion is not None and model_name is None:
        raise _model_name_missing(spec.name)
    if promote is None and model_name is not None:  # the registry names the champion, and promotes into it
        from tunesmith.promotion.promote import check_model_name
        from tunesmith.tracking import check_registry_installed

        check_model_name(model_name)
        check_registry_installed("--model-name", "a cycle with a model name (its champion, its promote step)")
    if promote is None and spec.promotion is not None:
        _check_policy_metrics(store, spec)
    from tunesmith.tracking import check_tracking_installed

    check_tracking_installed(spec)  # the re-tune would refuse its tracking: section, after the drift step
    new_rows = new_task_rows(spec, data)
    refuse_labels_of_one_class(spec, data, new_rows)
    if reference is not None or spec.task is None:  # the drift check compares two files (check_files): both needed
        # (trial code without --reference: refused by _refuse_no_reference unless the champion holds its own file)
        _refuse_missing_files(data, reference)
    return new_rows


def _refuse_missing_files(data: str, reference: str | None) -> None:
    """``--reference`` and ``--data`` that are not files, refused naming the flag: by each cycle (a file may go
    between a watch's cycles), and, for a spec file, before its store is created (:func:`_target_store`)."""
    from tunesmith.tasks.data import not_a_file

    for option, path in (("--reference", reference), ("--data", data)):
        if path is not None and not os.path.isfile(path):
            raise UserInputError(f"{option}: {not_a_file(os.path.abspath(path) if path else path)}")


def _check_policy_metrics(store: SQLStore, spec: ExperimentSpec) -> None:
    """The metrics the promotion policy names (``beat_champion.metric``, the ``min`` and ``max`` gates') against those
    the experiment records (its recorded trials) or will record (a task's, known before it runs), as `promote`
    checks them: a misspelt one was found by the promote step, after the whole first tuning (or re-tune). A new
    trial-code experiment's metrics are known once its trials report: the promote step checks them then.

    Raises:
        SpecError: naming the field and the likeliest metric.
    """
    from tunesmith.promotion.promote import check_policy_metrics

    trials = store.trials(store.experiment(spec.name).id) if spec.name in store.experiment_names() else []
    if spec.task is not None:
        check_policy_metrics(spec, None, trials, spec.task.recorded_metrics)
    elif any(t.state is TrialState.COMPLETED for t in trials):
        check_policy_metrics(spec, None, trials)


def _spec_file(store: SQLStore, spec_path: str, loaded: ExperimentSpec | None,
               again: Callable[[str], str]) -> ExperimentSpec:
    """The spec file, validated (``loaded``: as already read by :func:`read_spec_file`); when its experiment is
    recorded, the file must still say what was recorded (the cycle runs the recorded spec, and silently ignoring an
    edited threshold would be worse than refusing: ``again(NAME)``, the command that ran the cycle on the experiment's
    name, is the fix), and it is taken as a recorded spec is (`show`, `resume`): the checks for a spec given anew (an
    unquoted ``${x}`` in a command, a ``when:`` on a float), added after it was recorded, refused an experiment that
    `tunesmith cycle NAME` runs. Otherwise it is a new spec, checked as one."""
    from tunesmith.raised_budget import edits_of_recorded_spec
    from tunesmith.spec.loader import read_spec_file, spec_from_dict
    from tunesmith.spec.model import check_new_spec
    from tunesmith.tracking import check_tracking_destination

    if not os.path.isfile(spec_path):
        raise UserInputError(f"spec file {spec_path!r} does not exist (give a spec file or an experiment name)")
    spec = loaded if loaded is not None else read_spec_file(spec_path)
    # as `run` does, before the store is made (a refused first cycle leaves none): MLflow's tables would break it
    check_tracking_destination(spec, store.url)
    if spec.name not in store.experiment_names():
        check_new_spec(spec)
    else:
        experiment = store.experiment(spec.name)
        recorded = spec_from_dict(experiment.spec)  # defaults of this version on both sides
        edited = sorted(d.path for d in edits_of_recorded_spec(store, experiment, recorded, spec))
        if edited:
            more = f" and {len(edited) - 5} more" if len(edited) > 5 else ""
            # the experiment is known by the spec's name: a copy of the file under another file name is the same
            # experiment (the fix said once, "give the file another name", changed nothing)
            raise UserInputError(
                f"{spec_path}: {', '.join(edited[:5])}{more} {'differs' if len(edited) == 1 else 'differ'} from the "
                f"recorded experiment {spec.name!r}, whose spec a cycle keeps; run `{again(spec.name)}` to "
                f"use it as recorded, or, to tune the edited spec afresh as a new experiment, change its name: in "
                f"the file (name: {spec.name}-v2); the experiment is the spec's name, whatever the file is called")
    return spec


def _tune_if_new(store: SQLStore, spec: ExperimentSpec, listener: RunListener, clock: Clock,
                 on_runner: Callable[[Runner], None] | None) -> tuple[str, CycleStep]:
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.storage.sql import resume_hint

    what = "first tuning"
    if spec.name in store.experiment_names():
        if not _first_tuning_to_resume(store, spec.name):
            return spec.name, CycleStep("tune", StepStatus.SKIPPED, f"experiment {spec.name} is already recorded")
        # finished first: a drift check against an interrupted run's partial champion says little, against none nothing
        what = "resumed first tuning"
        result = resume_experiment(spec.name, store, listener, clock, on_runner)
    else:
        result = run_experiment(spec, store, listener, clock, on_runner)
    status = {RunStatus.COMPLETED: StepStatus.DONE, RunStatus.INTERRUPTED: StepStatus.INTERRUPTED}.get(
        result.status, StepStatus.FAILED)
    if status is StepStatus.INTERRUPTED:
        return spec.name, CycleStep("tune", status, f"{what} of {spec.name}: {result.stop_reason}; the next cycle "
                                    f"resumes it (or `{resume_hint(store, spec.name)}`)",
                                    {"experiment": spec.name, "status": result.status.value})
    if status is StepStatus.DONE and not any(t.state is TrialState.COMPLETED for t in result.trials):
        return spec.name, CycleStep("tune", StepStatus.FAILED, f"every trial of the first tuning of {spec.name} "
                                    f"failed; see `tunesmith trials {spec.name}`",
                                    {"experiment": spec.name, "status": result.status.value})
    again = (f"; once the cause is fixed the next cycle resumes it (or "
             f"`{resume_hint(store, spec.name)}`)"
             if status is StepStatus.FAILED and not any(t.state is TrialState.COMPLETED for t in result.trials) else "")
    return spec.name, CycleStep("tune", status, f"{what} of {spec.name}: {result.stop_reason}{again}",
                                {"experiment": spec.name, "status": result.status.value})


def _best_value(experiment: ExperimentRecord, trials: list[Any]) -> dict[str, Any] | None:
    from tunesmith.summary import best_of

    best = best_of(experiment, trials)
    if best is None:
        return None
    return {"trial": best.number, "params": dict(best.params), "values": list(best.values or ())}


def watch(store: SQLStore, target: str, data: str, every: float, *, cycles: int | None = None,
          on_cycle: Callable[[CycleReport, bool], None] | None = None, sleep: Callable[[float], None] = time.sleep,
          clock: Clock | None = None, spec_file: ExperimentSpec | None = None,
          **cycle_options: Any) -> list[CycleReport]:
    """Run :func:`run_cycle` every ``every`` seconds (``cycles`` times, or until interrupted); a failed cycle
    is reported and the loop goes on (the next day's data may be fine), bad input and an interrupted cycle stop
    it. ``spec_file`` (already read) serves the first cycle; each later one reads the file again, so an edit made
    meanwhile is refused as it would be by a new `cycle`. ``on_cycle(report, last)`` is given each report as its cycle
    ends; ``last``: no cycle follows it (the last of ``cycles``, or an interrupted one), so a caller that words what
    comes next does not count cycles again.

    The store's connections are given back between cycles (:meth:`SQLStore.release_connections`) and the next cycle
    opens it again: a store whose server does not answer then is a cycle reported ``unavailable`` (exit code 75),
    and the next cycle tries again, as after a failed one: the address has worked, so this is a server restarting
    or a network outage, and a watch that ended there would stay ended (a scheduler's retry does not restart a
    long-running watch). At the first cycle it raises StoreUnavailable, as `cycle` does: an address never seen to
    answer may be the typo it looks like.
    """
    from tunesmith.lineage_guard import LineageBusy

    clock = clock or SystemClock()
    reports: list[CycleReport] = []
    every_flag = ("--every", str(int(every)) if float(every).is_integer() else repr(float(every)))
    while cycles is None or len(reports) < cycles:
        started = clock.monotonic()
        # its flags, for a refusal's fix to repeat: `watch` again, not `cycle` (the seconds: --every's plainest
        # form), for the cycles left, this one among them (it did nothing): all N, copied after cycle k, ran N more
        watching = (*every_flag, *(("--cycles", str(cycles - len(reports))) if cycles is not None else ()))
        try:
            report = run_cycle(store, target, data, clock=clock, spec_file=None if reports else spec_file,
                               watching=watching, **cycle_options)
        except (StoreUnavailable, RegistryUnavailable) as e:  # MLflow's, as the champion is read: as the store's
            if not reports:  # an address never seen to answer: a typo looks the same, so exit 75 as `cycle` does
                raise
            report = CycleReport.refused(target, CycleOutcome.UNAVAILABLE, str(e), root=reports[-1].root)
        except LineageBusy as e:  # another cycle on the lineage (a `cycle` by hand): this one's turn comes next time
            report = CycleReport.refused(target, CycleOutcome.BUSY, str(e), root=reports[-1].root if reports else None)
        finally:
            store.release_connections()  # no connection held through the wait (a day, by default)
        reports.append(report)
        last = report.outcome is CycleOutcome.INTERRUPTED or (cycles is not None and len(reports) >= cycles)
        if on_cycle is not None:
            on_cycle(report, last)
        if last:
            break
        sleep(max(0.0, every - (clock.monotonic() - started)))
    return reports
