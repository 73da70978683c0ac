"""Telling a Ray cluster that went away from one that is only slow, without asking Ray.

Ray's own calls do not say "the cluster is gone" in bounded time: a driver whose cluster's head was killed waits
in ``ray.wait``, its in-flight actor calls fail only ~5 s later as "temporarily unavailable", and Ray keeps trying
to reconnect to its GCS for a minute (``gcs_rpc_server_reconnect_timeout_s``) before its raylets give up. So the
Ray executor watches the head itself: while the run's mailbox answers (its long poll returns at least once a
second) the cluster is alive; after ``silence`` seconds without an answer, or when an attempt's actor dies, it
opens a TCP connection to the head's GCS port. A refused or timed-out connection that goes on for ``grace``
seconds means the cluster went away (a GCS restarting under fault tolerance is back within that). A port that
answers is not proof of *our* cluster (a new one may have started at the same address): a mailbox silent for
``stall`` seconds counts as a lost cluster whatever the probe says, so the run never waits forever. No Ray import
here: the watch is plain sockets and a clock, testable without a cluster.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tunesmith.clock import Clock

SILENCE = 2.0          # seconds without an answer from the cluster before its head is probed
GRACE = 2.0            # seconds the head must stay unreachable to count as gone
STALL = 60.0           # seconds without an answer that end the run even while the head's port answers
PROBE_EVERY = 0.25     # at most one probe per this many seconds
CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class HeadAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, address: str) -> HeadAddress | None:
        """``host:port`` or ``ray://host:port`` (a client server); None for anything else."""
        address = address.removeprefix("ray://")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            return None
        return cls(host.strip("[]"), int(port))


class ClusterWatch:
    """Args:
        head: the cluster head's address to probe (its GCS port, or the Ray client server's).
        clock: for the silence and the grace.
        silence: seconds without news before the head is probed.
        grace: seconds the head must stay unreachable before the cluster counts as gone.
        stall: seconds without news before the cluster counts as gone, reachable head or not.
    """

    def __init__(self, head: HeadAddress, clock: Clock, silence: float = SILENCE, grace: float = GRACE,
                 stall: float = STALL) -> None:
        self.head = head
        self.clock = clock
        self.silence = silence
        self.grace = grace
        self.stall = stall
        self._last_news = clock.monotonic()
        self._suspected = False
        self._unreachable_since: float | None = None
        self._last_probe = -float("inf")

    def heard(self) -> None:
        """The cluster answered (the mailbox's long poll returned)."""
        self._last_news = self.clock.monotonic()
        self._head_answered()

    def _head_answered(self) -> None:
        self._suspected = False
        self._unreachable_since = None

    def suspect(self) -> None:
        """Something died (an actor call failed): probe the head on the next :meth:`gone`, silence or not."""
        self._suspected = True

    def reachable_now(self) -> bool:
        """Probe the head at once."""
        self._last_probe = self.clock.monotonic()
        if self._probe():
            self._head_answered()
            return True
        if self._unreachable_since is None:
            self._unreachable_since = self.clock.monotonic()
        return False

    def gone(self) -> str | None:
        """Called on every poll: why the cluster counts as gone (its head unreachable for ``grace`` seconds, or no
        news for ``stall`` seconds); None while it does not."""
        now = self.clock.monotonic()
        silent = now - self._last_news
        if silent >= self.stall:
            return (f"the Ray cluster went away: nothing of the run's answered for {silent:.0f}s "
                    f"(its head at {self.head})")
        if not self._suspected and silent < self.silence:
            return None
        if now - self._last_probe >= PROBE_EVERY and self.reachable_now():
            return None
        if self._unreachable_since is not None and now - self._unreachable_since >= self.grace:
            return (f"the Ray cluster went away: its head at {self.head} has not answered for "
                    f"{now - self._unreachable_since:.1f}s")
        return None

    def unreachable_for(self) -> float:
        return 0.0 if self._unreachable_since is None else self.clock.monotonic() - self._unreachable_since

    def _probe(self) -> bool:
        return head_answers(self.head)


def head_answers(head: HeadAddress) -> bool:
    """Whether something accepts connections at the head's port (a refusal comes at once, a lost host in 1 s)."""
    try:
        with socket.create_connection((head.host, head.port), timeout=CONNECT_TIMEOUT):
            return True
    except OSError:
        return False
