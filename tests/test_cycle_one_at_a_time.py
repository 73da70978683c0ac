"""One cycle per lineage at a time: a second `tunesmith cycle` on a lineage a cycle holds is refused (exit 75, naming
the holder), nothing recorded; a holder killed outright is taken over; `watch` takes the lineage per cycle. The
cycles are real CLI processes on one SQLite store; the holder is this test (or a process it kills), so that the
overlap is certain (two real cycles 2 s apart both promoted: the walk's report)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import cli_in_process, one_error_line, tune_in_process
from tests.test_cycle import SPEC
from tunesmith.cycle import CycleOutcome, watch
from tunesmith.lineage_guard import lineage_held
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split

@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    tune_in_process(tmp_path / "bc.yaml", tmp_path / "tunesmith.db")
    return tmp_path


def _cycle(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "cycle", "bc", "--data", "shifted.csv", *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                 "COLUMNS": "200"})


def _cycle_events(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "tunesmith.db") as conn:
        return [k for (k,) in conn.execute("SELECT kind FROM events WHERE kind LIKE 'cycle_%' ORDER BY id")]


@pytest.mark.slow
def test_a_second_cycle_on_a_held_lineage_exits_75_naming_the_holder_and_records_nothing(folder: Path) -> None:
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    with lineage_held(store, "bc"):  # as a cycle running on it holds it (this process: the holder named)
        second = _cycle(folder, "--json")
        out, err = second.communicate(timeout=120)
    said = one_error_line(subprocess.CompletedProcess(second.args, second.returncode, out, err), 75)
    assert f"(pid {os.getpid()} on this host, since " in said and "'bc'" in said, said
    assert "quota release" not in said, "a live holder on this host is not to be released"
    assert json.loads(out)["outcome"] == "busy" and json.loads(out)["exit_code"] == 75
    # nothing done (no drift check, no re-tune), and the refusal is in the audit trail: three scheduled runs refused
    # overnight left no trace in the store but the CI's own artifacts
    assert _cycle_events(folder) == ["cycle_refused"]
    code, out, err = cli_in_process("audit", "bc", "--storage", f"sqlite:///{folder / 'tunesmith.db'}")
    assert code == 0 and " bc cycle_refused busy by " in out and "another cycle is running on lineage 'bc'" in out, out
    # given back at the end of the block: the next cycle runs (in this process: the refusals are the CLI's)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNESMITH_STORAGE", f"sqlite:///{folder / 'tunesmith.db'}")
        code, out, err = cli_in_process("cycle", "bc", "--data", "shifted.csv", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "retuned", err
    with lineage_held(store, "bc"):  # a cycle named by a re-tune holds the lineage, not the name typed (review)
        by_retune = subprocess.run([sys.executable, "-m", "tunesmith.cli", "cycle", "bc-retune-1", "--data",
                                    "shifted.csv"], cwd=folder, capture_output=True, text=True, timeout=120,
                                   env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"})
    assert by_retune.returncode == 75 and "lineage 'bc'" in by_retune.stderr, by_retune.stderr


def test_a_lineage_held_from_another_host_names_its_coordinator_and_can_be_given_back(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """A cycle SIGKILLed on another host holds its lineage until its lease lapses (LEASE_TTL): the refusal named a
    pid that means nothing here, and nothing could end the wait. It now names the coordinator, when the hold
    lapses, and the command that gives it back; `quota release` refuses a live holder on this host."""
    import time

    from tunesmith.coordinators import LEASE_TTL
    from tunesmith.lineage_guard import LineageBusy, guard_key

    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{tmp_path / 'tunesmith.db'}")
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    gone = "otherhost:4242:4026531836.abc123"
    assert store.acquire_slot(gone, None, {guard_key("bc"): 1}, time.time(), LEASE_TTL).granted  # type: ignore
    with pytest.raises(LineageBusy) as refused, lineage_held(store, "bc"):
        pass
    said = str(refused.value)
    assert f"coordinator {gone}, since " in said and f"tunesmith quota release {gone}" in said, said
    assert "its hold lapses by itself at " in said and "pid 4242" not in said, said
    with lineage_held(store, "other-lineage"):  # this process holds one: a live holder here is not released
        [(mine, _, _)] = store.slot_holders(guard_key("other-lineage"), time.time())
        code, out, err = cli_in_process("quota", "release", mine)
        assert code == 2 and "a live process on this host" in err, (out, err)
    code, out, err = cli_in_process("quota", "release", gone)
    assert code == 0 and f"released {gone}'s slots on cycle:bc" in out, (out, err)
    with lineage_held(store, "bc"):  # free at once, not LEASE_TTL later
        pass
    code, out, err = cli_in_process("quota", "release", gone)
    assert code == 0 and "holds no slot on this store" in out, (out, err)


def test_a_held_lineage_is_given_back_when_the_cycle_raises(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    with pytest.raises(RuntimeError), lineage_held(store, "bc"):
        raise RuntimeError("a step failed")
    with lineage_held(store, "bc"):  # not refused: the lease went back with the exception
        pass


@pytest.mark.slow
def test_a_cycle_killed_outright_leaves_its_lineage_to_the_next_cycle(folder: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_SLEEP, str(folder / "tunesmith.db")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    again = _cycle(folder, "--json")
    out, err = again.communicate(timeout=240)
    # its holder's process is gone: taken over at once, not after the lease's expiry
    assert again.returncode == 0 and json.loads(out)["outcome"] == "retuned", err
    # and the audit trail says so: the killed cycle left no event of its own ending
    assert _cycle_events(folder)[0] == "cycle_took_over", _cycle_events(folder)
    code, out, err = cli_in_process("audit", "bc", "--storage", f"sqlite:///{folder / 'tunesmith.db'}")
    assert " bc cycle_took_over done by " in out and "ended without giving its hold back" in out, out
    assert f":{holder.pid}:" in out, out   # which holder: the killed one


HOLD_AND_SLEEP = """
import sys, time
from tunesmith.lineage_guard import lineage_held
from tunesmith.storage.sql import SQLStore
with lineage_held(SQLStore("sqlite:///" + sys.argv[1]), "bc"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_watch_takes_the_lineage_per_cycle_and_goes_on_when_it_is_held(folder: Path) -> None:
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    with lineage_held(store, "bc"):
        [busy] = watch(store, "bc", "reference.csv", 0.0, cycles=1, sleep=lambda s: None)
    assert busy.outcome is CycleOutcome.BUSY and busy.exit_code == 75 and "pid" in (busy.error or "")
    [ran] = watch(store, "bc", "reference.csv", 0.0, cycles=1, sleep=lambda s: None)
    assert ran.outcome is CycleOutcome.NO_DRIFT  # given back: the next cycle holds it


def test_a_hold_whose_lease_lapsed_refuses_to_promote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that did not answer the renewals for LEASE_TTL: the lease lapsed, another cycle could take the
    lineage, and the first went on to promote unaware (review). The renewal finds it gone, and the check before a
    promotion refuses: exit 75 for the cycle."""
    import time

    from tunesmith.lineage_guard import LineageBusy

    monkeypatch.setattr("tunesmith.lineage_guard.LEASE_RENEW_EVERY", 0.05)
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    with lineage_held(store, "bc") as hold:
        hold.check()  # held: nothing to say
        with sqlite3.connect(tmp_path / "tunesmith.db") as conn:  # as if no renewal came for LEASE_TTL
            conn.execute("UPDATE slot_leases SET expires_at = 0")
        deadline = time.monotonic() + 10
        while not hold.lapsed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with lineage_held(store, "bc"):  # another cycle may take it now
            pass
        with pytest.raises(LineageBusy, match="lapsed"):
            hold.check()
