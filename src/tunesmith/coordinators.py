"""Several coordinators on one experiment (a lead and ``resume --join``-ers): who is still at work on it, and how
one leaves it so that the last one out, and only it, records the experiment's status.

A coordinator other than the asking one is *at work* while it has not recorded that it left (a ``coordinator_*``
event naming it), its process is not known dead (:func:`tunesmith.lease_holders.holder_alive`), and either it
holds the experiment's unexpired lease, or the store has heard from it within ``stale_after`` seconds (it beat
for itself that recently, or a trial it owns was saved or beat, or it announced itself, its ``run_running``
event), or it is a live process on this host (its beats come from a thread of its own, Heartbeat, whatever holds
up its loop; but a beat may itself be held up, by a store waiting out a lock). So a joiner between two trials
(one just finished, the next not yet started; one waiting out a retry's back-off or for a quota slot) is at work,
not only one whose trial is running at the moment asked, and a joiner SIGKILLed on another machine is gone
``stale_after`` after its last beat.

The lease holder is at work until its lease lapses (``LEASE_TTL`` after its last renewal), however long since
its last beat: the lease is what `resume` must wait out, and a lead whose beats stopped may still be alive (its
process suspended, a C call holding the GIL for minutes, two lock waits in a row), so `delete`, `show` and a
cycle's resume of an "abandoned" run must not act on its silence alone. A lead SIGKILLed on another machine is
therefore at work for up to ``LEASE_TTL``.

Leaving: a coordinator records that it leaves *before* it asks who is still at work. Of two leaving at once, each
wrote before it read, so at least one of them sees the other gone and records the status: an experiment is never
left ``running`` by coordinators that all left, nor marked ``interrupted`` under a coordinator still at work.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tunesmith.audit import AuditKind
from tunesmith.lease_holders import holder_alive, holder_here
from tunesmith.records import ExperimentRecord, FailureKind, ObjectiveSpec, RunStatus, TrialRecord, TrialState
from tunesmith.selection import trial_metrics

if TYPE_CHECKING:
    from tunesmith.events import RunListener
    from tunesmith.storage.base import Event, TrialStore
    from tunesmith.strategy.base import Strategy

LEFT_PREFIX = "coordinator_"   # coordinator_done, coordinator_interrupted, coordinator_failed
# How often a coordinator renews its lease and beats for itself and its running and retry-waiting trials: from a
# thread of its own (Heartbeat), so a beat says its process lives, whatever holds up its loop.
LEASE_RENEW_EVERY = 5.0
# A remote coordinator's death is known only by its silence (one on this host at once, by its pid): every one,
# lead or joiner, trial running or not, beats for itself (the store's coordinator_beats), so this long without a
# beat (a dozen missed) means gone. Not shorter: a beat can wait out a store's lock (SQLite: 30 s).
STALE_AFTER = 60.0   # a coordinator, or a trial, not beaten for this long is gone, or abandoned
LEASE_TTL = 120.0    # a lease not renewed for as long lapses (another `resume` may take it over)
TRIAL_TAKEN_OVER = ("trial {number}: another coordinator re-ran it while this one was stalled (its beats stopped: "
                    "paused, suspended, cut off from the store); this attempt's record is dropped, the re-run's kept")


def dropped_as_taken_over(listener: RunListener, mine: set[int], number: int) -> None:
    """A trial another coordinator took over (found it abandoned, re-ran it) while this one held it: this
    coordinator's write of it was refused (a paused coordinator, woken, wrote its old attempt over the finished
    re-run). Said, and the trial left to its new owner: its result reaches this coordinator as a peer's, at a sync that
    has not read past it yet."""
    mine.discard(number)
    listener.warning(TRIAL_TAKEN_OVER.format(number=number))


LEASE_TAKEN_OVER = ("another coordinator ({holder}) took this experiment's lease over (ours had lapsed): this run goes "
                    "on as a joiner")


def at_work_whatever_its_beats(owner: str, lead: str | None) -> bool:
    """Coordinator ``owner`` is at work whatever its beats say: it holds the experiment's unexpired lease (``lead``,
    as ``lease_holder`` reads it now), or it is a live process on this host. Its beats may be stalled (its process
    suspended, a store lock waited out twice, a C call holding the GIL), and it is alive; a peer that took it for
    gone would re-run its trials beside it. The one rule of :func:`peers_at_work` and :func:`reclaim_abandoned`."""
    return owner == lead or (holder_here(owner) and holder_alive(owner))


def abandoned(trial: TrialRecord, now: float, stale_after: float) -> bool:
    """A running or queued trial nobody runs any more: its coordinator is dead (same host) or silent too long."""
    if trial.owner is None or not holder_alive(trial.owner):
        return True
    return trial.heartbeat_at is None or now - trial.heartbeat_at > stale_after


def reclaim_abandoned(store: TrialStore, experiment_id: int, trials: Sequence[TrialRecord], now: float,
                      stale_after: float, skip: Collection[int] = ()) -> list[TrialRecord]:
    """The running or queued trials of ``trials`` (not in ``skip``) nobody runs any more (:func:`abandoned`),
    recorded lost, to re-run; not those another coordinator reclaimed first. A coordinator asks at its start and
    at every sync: a peer SIGKILLed on this host is known gone at once, and its trials must not stay running. Never
    those of a coordinator at work whatever its trials' beats say (:func:`at_work_whatever_its_beats`: re-run
    beside it, a trial would run twice). Each as the store recorded it: one whose attempt was only queued for a
    worker has that attempt taken back (``TrialStore.mark_lost``), so its re-run, the next attempt, is that one
    again, and spends none of the spec's retries."""
    lost = []
    lead = store.lease_holder(experiment_id, now)
    for t in trials:
        if (t.state in (TrialState.RUNNING, TrialState.QUEUED) and t.number not in skip
                and not (t.owner is not None and at_work_whatever_its_beats(t.owner, lead))
                and abandoned(t, now, stale_after)):
            record = replace(t, state=TrialState.LOST, error="its coordinator stopped before the trial ended",
                             failure_kind=FailureKind.LOST)
            if (recorded := store.mark_lost(experiment_id, record, now)) is not None:
                lost.append(recorded)
    return lost


def peers_at_work(store: TrialStore, experiment_id: int, me: str, now: float, stale_after: float,
                  events: Sequence[Event] | None = None, trials: Sequence[TrialRecord] | None = None) -> list[str]:
    """The coordinators other than ``me`` still at work on the experiment (see the module docstring), by name.
    ``events``, ``trials``: the experiment's, when the caller has just read them (``show``); else read here (of the
    trials, only each owner's latest beat: ``delete`` of a long run read every trial and report for it)."""
    heard: dict[str, float] = {}
    left: set[str] = set()
    for e in store.events(experiment_id) if events is None else events:
        owner = e.payload.get("owner")
        if not isinstance(owner, str):
            continue
        if e.kind.startswith(LEFT_PREFIX):
            left.add(owner)
        elif e.kind == AuditKind.RUN_RUNNING:
            heard[owner] = max(heard.get(owner, e.at), e.at)
    trial_beats = (store.trial_owner_beats(experiment_id).items() if trials is None else  # (each beat: max below)
                   [(t.owner, t.heartbeat_at) for t in trials if t.owner is not None and t.heartbeat_at is not None])
    for owner, at in [*trial_beats, *store.coordinator_beats(experiment_id).items()]:
        heard[owner] = max(heard.get(owner, at), at)
    lead = store.lease_holder(experiment_id, now)  # unexpired, and not known dead
    # the lease's holder, unexpired or (however long ago) lapsed, whether or not it beat: at work by the rule below
    if (holder := lead or store.lease_holder(experiment_id, -math.inf)) is not None:
        heard.setdefault(holder, -math.inf)
    return sorted(owner for owner, at in heard.items() if owner != me and owner not in left and holder_alive(owner)
                  and (at_work_whatever_its_beats(owner, lead) or now - at <= stale_after))


def at_work(store: TrialStore, experiment_id: int, now: float, stale_after: float = STALE_AFTER,
            events: Sequence[Event] | None = None, trials: Sequence[TrialRecord] | None = None) -> list[str]:
    """The coordinators at work on the experiment, asked from outside any of them (``show``, ``delete``)."""
    return peers_at_work(store, experiment_id, "", now, stale_after, events, trials)


def run_abandoned(store: TrialStore, experiment: ExperimentRecord, now: float, events: Sequence[Event] | None = None,
                  trials: Sequence[TrialRecord] | None = None) -> bool:
    """Whether an experiment recorded as running has nothing running it (its coordinators were killed, or their
    machine went away): `show`'s ``abandoned``, `ls`'s ``running (abandoned)`` and what a cycle resumes, one rule
    for all. A run waiting on a quota slot is at work while its coordinator lives and beats (see
    :func:`peers_at_work`); one killed during the wait is abandoned, though its wait was never recorded as ended."""
    if experiment.status is not RunStatus.RUNNING:
        return False
    return not at_work(store, experiment.id, now, events=events, trials=trials)


def leave(store: TrialStore, experiment_id: int, me: str, status: RunStatus, reason: str, now: float,
          stale_after: float) -> bool:
    """Record that coordinator ``me`` leaves the experiment, having ended its run as ``status`` for ``reason``; when
    no other coordinator is at work on it, record ``status`` as the experiment's. Returns whether it did."""
    done = status is RunStatus.COMPLETED
    store.record_event(experiment_id, f"{LEFT_PREFIX}done" if done else f"{LEFT_PREFIX}{status.value}", now,
                       detail={"owner": me, "reason": reason})
    if peers_at_work(store, experiment_id, me, now, stale_after):
        return False  # theirs to finish: the last one out records the experiment's status
    store.set_status(experiment_id, status, now, {"reason": reason})
    return True


class PeerTrials:
    """The trials cooperating coordinators run, as this coordinator's strategy knows them: pending, like its own
    trials on parallel workers, until their outcome is read. A strategy that knew only its peers' finished trials
    proposed what they were running (``bo``'s proposal is all but deterministic given the history: a joiner re-ran
    lead trials to within 1e-6)."""

    def __init__(self) -> None:
        self._tokens: dict[int, int] = {}   # a peer's trial number -> the strategy's token for it

    def tell_running(self, store: TrialStore, experiment_id: int, strategy: Strategy, mine: Collection[int]) -> None:
        """Before a proposal: the peers' trials started since the last call become pending (not those in ``mine``,
        this coordinator's own or learnt finished)."""
        for t in store.unfinished_trials(experiment_id, skip=mine):
            if t.number not in self._tokens:
                self._tokens[t.number] = strategy.adopt(dict(t.params)).token

    def token_to_rerun(self, strategy: Strategy, trial: TrialRecord) -> int:
        """The strategy's token for a trial this coordinator re-runs: a gone peer's, already pending, keeps its own
        (not a second pending copy that never ends)."""
        token = self._tokens.pop(trial.number, None)
        return strategy.adopt(dict(trial.params)).token if token is None else token

    def runs_elsewhere(self, number: int, token: int | None, mine: set[int]) -> None:
        """Trial ``number``, which this coordinator meant to run again (a lost trial, or its own retry: ``token``,
        the strategy's for it), another coordinator took first: it is a peer's, pending until its outcome is read
        (so it leaves ``mine``, this coordinator's own)."""
        mine.discard(number)
        if token is not None:
            self._tokens[number] = token

    def ended(self, store: TrialStore, experiment_id: int, strategy: Strategy, running: Sequence[TrialRecord],
              finished: Sequence[TrialRecord]) -> list[TrialRecord]:
        """At a sync: the trials told pending that are neither ``running`` (the peers' running and queued trials, read
        first) nor ``finished`` (those finished since the last sync, read next) ended meanwhile. Those that ended
        without an outcome (interrupted, lost: their re-run, by whichever coordinator, is pending again once it
        starts) leave the pending set, the strategy learning nothing of them; they stayed pending for the rest of
        the run. Those that finished unseen (a retry of this coordinator's that another took over and finished
        while it was still this one's) are returned, to be learnt as ``finished`` are."""
        known = {t.number for t in running} | {t.number for t in finished}
        gone = [number for number in self._tokens if number not in known]
        if not gone:
            return []
        records = store.trials(experiment_id, gone)
        for t in records:
            if not t.state.is_finished():
                strategy.tell(self._tokens.pop(t.number), t.state, None)
        return [t for t in records if t.state.is_finished()]

    def tell_finished(self, strategy: Strategy, finished: Sequence[TrialRecord],
                      objectives: Sequence[ObjectiveSpec]) -> None:
        """Peers' trials that finished: the outcome of those told as pending, a replay of the others."""
        strategy.replay([t for t in finished if t.number not in self._tokens])
        for t in finished:
            if (token := self._tokens.pop(t.number, None)) is not None:
                strategy.tell(token, t.state, t.values, trial_metrics(t, objectives))


HEARTBEAT_EVERY = LEASE_RENEW_EVERY
"""A :class:`Heartbeat`'s interval when none is given (the runner's): the lease renewal's. No spec sets it; tests of
what beats do set it shorter, to wait on beats rather than on seconds."""


class Heartbeat:
    """Calls ``beat`` (the runner's lease renewal and trial heartbeat) every ``every`` seconds from a daemon thread,
    from :meth:`start` until :meth:`stop`: the one thing that renews a lead's lease and beats for its trials.

    Why a thread: a beat then says the coordinator's process lives, which is what its peers judge (is it at work,
    are its trials abandoned), and a loop held up (an inline trial, a slow proposal, a large checkpoint copied, a
    store write waiting for a lock, the holdout refit after the trials) does not make it look dead. That is what
    lets ``STALE_AFTER`` be seconds rather than a minute. A beat that raises is left for the next one. What a beat
    returns, and beats failing, are told by the run's loop (:meth:`untold`), never from this thread, whose output
    may go to an inline trial's log; and once more after :meth:`stop`, for what beats found during the shutdown.
    """

    def __init__(self, beat: Callable[[], str | None], every: float | None = None) -> None:
        self.beat = beat
        self.every = HEARTBEAT_EVERY if every is None else every  # read now: a test's shorter beat is set there
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: deque[str] = deque()  # lines the beats returned, not yet told
        self._failed, self._last_error = 0, ""  # beats failed in a row, as yet, and the last one's error
        self._streak: tuple[int, str] | None = None  # a streak of failures not yet told (it may have ended since)
        self._beating_since: float | None = None  # when the beat under way began (monotonic), if one is
        self._stuck_told = False
        self._pauses: deque[float] = deque()  # pauses of the whole process between two beats, not yet told

    def untold(self) -> list[str]:
        """The lines to tell the user, each once: what beats returned; a streak of failed beats, told once even
        if a beat succeeded since (a store that was down for minutes while the loop was held up by an inline trial
        is news: joiners may have taken its trials for abandoned meanwhile); and a beat waiting on the store for
        longer than three beats' interval, which fails nothing and renews nothing (a lock another process holds);
        and a pause of the whole process (SIGSTOP, a suspended machine or container), seen by the beating thread as
        a wait between beats that overran by as long."""
        lines = [self._said.popleft() for _ in range(len(self._said))]
        if pauses := [self._pauses.popleft() for _ in range(len(self._pauses))]:
            lines.append(f"this coordinator's process was paused for {sum(pauses):.0f} s (stopped, suspended, or "
                         f"starved of CPU); meanwhile its lease and its trials' beats were not renewed, and after "
                         f"{STALE_AFTER:.0f} s a joining coordinator takes its trials for abandoned")
        if (streak := self._streak) is not None:
            self._streak = None
            failed, error = streak
            lines.append(f"{failed} heartbeat(s) of this coordinator failed in a row (last: {error}); meanwhile its "
                         f"lease and its trials' beats were not renewed, and after {STALE_AFTER:.0f} s a joining "
                         "coordinator takes its trials for abandoned")
        since = self._beating_since
        if since is not None and not self._stuck_told and time.monotonic() - since > 3 * self.every:
            self._stuck_told = True
            lines.append(f"a heartbeat of this coordinator has waited {time.monotonic() - since:.0f} s for the "
                         "store (a lock held by another process, or this process paused while it beat); meanwhile "
                         "its lease and its trials' beats are not renewed, and after "
                         f"{STALE_AFTER:.0f} s a joining coordinator takes its trials for abandoned")
        return lines

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tunesmith-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No beat after this returns, unless one is stuck in the store longer than ``STALE_AFTER``; even that one
        cannot hold the lease released next again (``renew_lease`` never takes a released lease back)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STALE_AFTER)

    def _run(self) -> None:
        while True:
            waiting_since = time.monotonic()
            if self._stop.wait(self.every):
                return
            # a timed wait wakes on time unless the whole process was held: stopped, suspended, starved of CPU (not
            # under a second: a test's short beat on a loaded machine)
            if (overran := time.monotonic() - waiting_since - self.every) > 3 * max(self.every, 1.0):
                self._pauses.append(overran)
            self._beating_since = time.monotonic()
            try:
                said = self.beat()
            except Exception as e:  # noqa: BLE001 - see the class docstring
                self._last_error, self._failed = f"{type(e).__name__}: {e}", self._failed + 1
                if self._failed == 1 or self._streak is not None:  # a new streak, or one not yet told: its latest
                    self._streak = (self._failed, self._last_error)
                continue
            finally:
                self._beating_since, self._stuck_told = None, False
            self._failed = 0
            if said:
                self._said.append(said)
