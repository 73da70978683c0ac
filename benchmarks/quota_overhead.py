"""What a quota slot lease adds to each trial, on SQLite: no-op trials with and without a store-wide tag quota.

    python benchmarks/quota_overhead.py [--trials 200] [--repeats 3] [--executor inline|process]

Rows, each in a fresh interpreter and a fresh SQLite file, repeats interleaved (round robin) so load from elsewhere
hits every row alike:

    leases        the run's keys are leased (user, tag, experiment), no limit set anywhere
    tag-quota     the same with `quota set tag:bench=overhead N` (N = workers: the limit never blocks, so the figure
                  is the cost of counting and taking a slot, not of waiting for one)

Compare with the same script run against a checkout without leases (PYTHONPATH=/path/to/older/src) for the cost
of leasing itself. Prints the median wall time per trial of each row, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def measure(row: str, trials: int, executor: str) -> float:
    import tunesmith
    import tunesmith.executor.inline  # noqa: F401  imported before the clock starts
    import tunesmith.executor.process  # noqa: F401
    import tunesmith.runner  # noqa: F401
    import tunesmith.strategy.optuna_adapter  # noqa: F401
    from tunesmith.storage.sql import SQLStore

    folder = tempfile.mkdtemp(prefix=f"quota-{row}-")
    url = f"sqlite:///{folder}/tunesmith.db"
    workers = 1 if executor == "inline" else 2
    store = SQLStore(url)
    if row == "tag-quota":
        store.set_quota("tag:bench=overhead", workers, now=time.time())
    else:
        store.experiments()  # the schema exists before the clock starts in both rows
    store.close()
    spec = {
        "name": "overhead", "objective": {"metric": "value", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "strategy": "random",
        "budget": {"trials": trials}, "executor": {"kind": executor, "workers": workers},
        "trial": {"function": "noop_objective:objective"}, "tags": {"bench": "overhead"},
        "seed": 0, "workdir": os.path.join(folder, "work"), "base_dir": str(BENCH_DIR),
    }
    t0 = time.perf_counter()
    result = tunesmith.run(spec, storage=url)
    elapsed = time.perf_counter() - t0
    assert sum(t.state.value == "completed" for t in result.trials) == trials
    return elapsed / trials * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--executor", choices=("inline", "process"), default="inline")
    ap.add_argument("--rows", default="leases,tag-quota")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.child, a.trials, a.executor)))
        return
    rows = a.rows.split(",")
    got: dict[str, list[float]] = {r: [] for r in rows}
    for _ in range(a.repeats):
        for r in rows:
            out = subprocess.run([sys.executable, __file__, "--child", r, "--trials", str(a.trials),
                                  "--executor", a.executor], capture_output=True, text=True, check=True,
                                 cwd=BENCH_DIR)
            got[r].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for r in rows:
        print(f"{r:10s} {a.executor:8s} {statistics.median(got[r]):7.2f} ms/trial  (runs: "
              f"{', '.join(f'{x:.2f}' for x in got[r])})")


if __name__ == "__main__":
    main()
