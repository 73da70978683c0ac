"""The live view: the HTML report of one experiment, served on 127.0.0.1 and rebuilt from the store.

Read-only: it answers GET and HEAD and never writes to the store, so it can watch a run that another process is
running (SQLite or PostgreSQL). The page reloads itself every ``refresh_s`` seconds; the report is rebuilt only
when the store recorded something of the experiment since the last build (its event log grew: a trial started or
finished; or a trial reported a value, which makes no event), and, while the experiment is recorded running, once
the page is REBUILT_EVERY_S old (a running trial's bar reaches the build time; a coordinator that died is seen
gone). An experiment that ended costs two small queries per reload; a running one, three.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tunesmith.monitoring.listening import cannot_listen
from tunesmith.records import RunStatus
from tunesmith.storage.base import TrialStore

DEFAULT_REFRESH_S = 10


REBUILT_EVERY_S = 30.0
"""How old the page of an experiment recorded running may be before a reload rebuilds it though the store recorded
nothing: time alone changes what it says (a running trial's bar reaches the build time, and a coordinator that died,
which records nothing, is found gone: `show`'s "no live coordinator runs it")."""


class ReportCache:
    """The latest report of one experiment; rebuilt when the store recorded something of it since the last build,
    and while it is recorded running, once the page is REBUILT_EVERY_S old."""

    def __init__(self, store: TrialStore, name: str, refresh_s: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.name = name
        self.refresh_s = refresh_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last_event = 0
        self._last_report = 0
        self._built_at = 0.0
        self._html: bytes | None = None

    def page(self) -> bytes:
        from tunesmith.monitoring.report import stored_report

        with self._lock:  # one build at a time; readers arriving meanwhile get the fresh one
            now = self.clock()
            experiment = self.store.experiment(self.name)
            new = self.store.events(experiment.id, since_id=self._last_event)
            # a report makes no event: a long trial's curve grows with nothing else recorded (an ended run takes none)
            running = experiment.status is RunStatus.RUNNING
            last_report = self.store.last_report_id(experiment.id) if running else self._last_report
            aged = running and now - self._built_at >= REBUILT_EVERY_S
            if self._html is None or new or last_report != self._last_report or aged:
                document = stored_report(self.store, experiment, self.store.trials(experiment.id), now,
                                         generated_at=now, refresh_s=self.refresh_s)
                self._html = document.encode("utf-8")
                self._last_event = new[-1].id if new else self._last_event
                self._last_report = last_report
                self._built_at = now
            return self._html


def serve_dashboard(store: TrialStore, name: str, addr: str = "127.0.0.1", port: int = 8050,
                    refresh_s: int = DEFAULT_REFRESH_S, announce: Callable[[str], None] = print) -> None:
    """Serve experiment ``name``'s report at ``http://addr:port/`` until interrupted.

    Raises:
        KeyboardInterrupt: Ctrl-C (and SIGTERM or SIGHUP where the caller makes them interrupt, as the CLI does),
            once the server is closed: the only way it ends.
        ExperimentNotFound: no such experiment (checked before listening).
        UserInputError: the address cannot be bound; plotly is missing (naming the extra).
    """
    from tunesmith.monitoring.report import require_plotly

    require_plotly()  # a missing extra fails now, not on the first request
    store.experiment(name)
    cache = ReportCache(store, name, refresh_s)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            if self.path.split("?", 1)[0] not in ("/", "/index.html"):
                self.send_error(404, "the report is at /")
                return
            try:
                body = cache.page()
            except Exception as e:  # noqa: BLE001 - the store hiccuped: say so, keep serving
                self.send_error(503, f"cannot read the store: {type(e).__name__}: {e}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the run's output matters
            pass

    try:
        server = ThreadingHTTPServer((addr, port), Handler)
    except OSError as e:
        raise cannot_listen(addr, port, e, port_option="--port", addr_option="--addr") from None
    server.daemon_threads = True
    announce(f"serving the report of {name} at http://{addr}:{server.server_port}/ (read-only; Ctrl-C stops)")
    try:
        server.serve_forever()  # until interrupted: the KeyboardInterrupt goes on to the caller (the CLI exits 130)
    finally:
        server.server_close()
