"""`tunesmith dashboard`: the report served from the store while another process runs the experiment."""

from __future__ import annotations

import re
import signal
import urllib.error
import urllib.request

import pytest

from tests.helpers import count_states, start_cli, stop_processes, wait_for

pytest.importorskip("plotly", reason="the dashboard needs plotly: pip install 'tunesmith[report]'")


def _finished_in_page(url: str, refresh: int = 1) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        page = response.read().decode()
    assert "<h2>Optimisation history</h2>" in page and f'<meta http-equiv="refresh" content="{refresh}">' in page
    m = re.search(r"completed (\d+)", page)
    return int(m.group(1)) if m else 0


@pytest.mark.slow
def test_dashboard_follows_a_running_experiment_read_only(project, monkeypatch):
    monkeypatch.setenv("SLOW_SECONDS", "0.4")
    project.write_spec(project.spec("watched", trial={"function": "objectives:slow"}, budget={"trials": 300},
                                    executor={"kind": "process", "workers": 1}))
    run = start_cli(project, "run", "watched.yaml", "--quiet")
    board = None
    try:
        wait_for(lambda: count_states(project, "watched").get("completed", 0) >= 1, timeout=30)
        board = start_cli(project, "dashboard", "watched", "--port", "0", "--refresh", "1")
        line = board.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        first = _finished_in_page(url)
        assert first >= 1
        # the page follows the store while the run goes on
        wait_for(lambda: _finished_in_page(url) > first, timeout=30, interval=0.5)
        with pytest.raises(urllib.error.HTTPError) as posted:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=5)
        assert posted.value.code == 501  # read-only: nothing but GET and HEAD
        posted.value.close()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "nothing", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
        assert run.poll() is None  # it really was watched during the run
    finally:
        stop_processes(board, run, sig=signal.SIGINT)
    assert board.returncode == 130, board.stderr.read() if board.stderr else ""  # interrupted, as `run` exits


def test_dashboard_of_unknown_experiment_is_an_input_error(project):
    project.write_spec(project.spec("known", budget={"trials": 1}))
    project.cli("run", "known.yaml", "-q", check=True)
    r = project.cli("dashboard", "unknown", "--port", "0", timeout=30)
    assert r.returncode == 2 and "unknown" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_dashboard_stopped_by_a_signal_exits_130_as_run_does(project, sig):
    """`dashboard` exited 143 on SIGTERM (killed by it, its socket never closed) and 0 on Ctrl-C, where `run`
    exits 130 on either (and on SIGHUP): one code for a stop asked by signal, whatever the command."""
    project.write_spec(project.spec("known", budget={"trials": 1}, executor={"kind": "inline"}))
    project.cli("run", "known.yaml", "-q", check=True)
    board = start_cli(project, "dashboard", "known", "--port", "0")
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", board.stdout.readline()).group(0)
        assert _finished_in_page(url, refresh=10) == 1  # serving, its handlers in place
        board.send_signal(sig)
        _, said = board.communicate(timeout=30)
    finally:
        stop_processes(board, sig=signal.SIGKILL)
    assert board.returncode == 130, said
    assert "Traceback" not in said, said


def test_an_address_the_dashboard_cannot_listen_on_names_the_option_at_fault(project):
    """A host that is no address of this machine was blamed on --port ("choose another port"), which cannot help;
    `run --metrics-addr` says the same refusals in the same words."""
    import socket

    from tests._cli_input_setup import seed_store
    from tests.helpers import cli_in_process

    seed_store(project)
    code, out, err = cli_in_process("dashboard", "exp", "--addr", "192.0.2.1", "--port", "0")  # TEST-NET-1
    assert (code, out, err.splitlines()) == (2, "", [
        "error: --addr: cannot listen on 192.0.2.1:0 (Cannot assign requested address); give an address of this "
        "machine (127.0.0.1, or 0.0.0.0 for all of them)"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = cli_in_process("dashboard", "exp", "--port", str(port))
    assert (code, out, err.splitlines()) == (2, "", [
        f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use); choose another port (0 picks a "
        "free one) or --addr"])


def _running_trial(project, name: str, owner: str, now: float):
    """Experiment ``name`` recorded running as its coordinator ``owner`` (on another machine) leaves it at ``now``:
    trial 0 running, beaten, its report at step 1 written. The store the coordinator writes with is returned; the
    dashboard reads through one of its own, as from another process."""
    from tunesmith.records import Report, RunStatus
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage import SQLStore

    writer = SQLStore(project.storage)
    stored = spec_from_dict({**project.spec(name), "base_dir": str(project.root)}).to_json()
    exp = writer.create_experiment(name, stored, "random", "", now - 60)
    writer.set_status(exp.id, RunStatus.RUNNING, now - 60, {"owner": owner})
    assert writer.new_trial(exp.id, {"x": 0.5}, 1, now - 50, "{number}", owner=owner) is not None
    writer.add_report(exp.id, 0, 1, Report(1, 0.9), now - 40)
    writer.heartbeat(exp.id, [0], now, owner)  # (writes the held report first)
    return writer


def _page_text(page: bytes) -> str:
    from tests.test_report import visible_text

    return visible_text(page.decode())


def _steps_drawn(page: bytes) -> list[int]:
    from tests.test_report import figure_of

    data, _ = figure_of(page.decode(), "Intermediate values")
    return [x for d in data for x in d["x"] if x is not None]


def test_a_report_recorded_after_a_page_was_built_is_on_the_next_page(project):
    """The page was rebuilt only when the experiment's event log grew (a trial started or ended); a report makes no
    event, so a long trial's curve stayed as the first page drew it until the trial ended. The README: the
    dashboard sees a report within about a second."""
    import time

    from tunesmith.monitoring.dashboard import ReportCache
    from tunesmith.records import Report
    from tunesmith.storage import SQLStore

    now = time.time()
    writer = _running_trial(project, "live", "far-host:1:lead", now)
    reader = SQLStore(project.storage)
    try:
        cache = ReportCache(reader, "live", refresh_s=1, clock=lambda: now)  # no time passes: only the store moves
        assert _steps_drawn(cache.page()) == [1]
        writer.add_report(reader.experiment("live").id, 0, 1, Report(2, 0.8), now)  # held, written within 0.1 s
        assert wait_for(lambda: _steps_drawn(cache.page()) == [1, 2], timeout=1.0)
    finally:
        writer.close()
        reader.close()


def test_a_running_experiments_page_follows_the_clock_and_says_when_nothing_runs_it(project):
    """A coordinator that dies records nothing: the page built while it beat said `status running` for good, and
    the running trial's bar stayed where that build drew it. While the experiment is recorded running its page is
    rebuilt once it is REBUILT_EVERY_S old, whatever the store recorded; a finished one's is not."""
    import time

    from tunesmith.monitoring.dashboard import REBUILT_EVERY_S, ReportCache
    from tunesmith.records import RunStatus
    from tunesmith.storage import SQLStore

    t0 = time.time()
    writer = _running_trial(project, "quiet", "far-host:1:lead", t0)  # beating from another machine
    reader = SQLStore(project.storage)
    clock = [t0]
    try:
        cache = ReportCache(reader, "quiet", refresh_s=10, clock=lambda: clock[0])
        first = cache.page()
        assert "status running ·" in _page_text(first)
        clock[0] = t0 + REBUILT_EVERY_S - 1
        assert cache.page() == first, "nothing recorded, and soon after: the page as it was"
        clock[0] = t0 + 3600  # an hour without a beat: nothing runs it
        text = _page_text(cache.page())
        assert "status running (abandoned)" in text and "no live coordinator runs quiet" in text, text[:600]
        writer.set_status(reader.experiment("quiet").id, RunStatus.INTERRUPTED, t0 + 3600)
        ended = cache.page()
        assert "status interrupted" in _page_text(ended)
        clock[0] = t0 + 7200
        assert cache.page() == ended, "a run that ended: rebuilt only when the store records something"
    finally:
        writer.close()
        reader.close()
