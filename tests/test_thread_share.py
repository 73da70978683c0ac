"""Worker processes share the machine's CPUs among their numeric libraries' threads (executor/thread_share.py):
each of N workers may start CPUs // N threads, unless the user set any of the variables."""

import os
import subprocess
import sys

from tunesmith.executor.thread_share import THREAD_VARIABLES, thread_share_env, usable_cpus

REPORTER = """
import os

def threads(config, trial):
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
    seen = {name: float(os.environ.get(name, -1)) for name in names}
    return {**seen, "loss": seen["OPENBLAS_NUM_THREADS"]}  # what `reproduce` compares: the threads it was given
"""


def _cli(project, environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` started with exactly ``environ`` (and the project's store)."""
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root,
                          env={**environ, "TUNESMITH_STORAGE": project.storage}, capture_output=True, text=True,
                          timeout=120)


def _threads_seen(project, name: str, environ: dict[str, str]) -> list[dict[str, float]]:
    """The variables each of a 2-worker run's trials saw, the CLI started with exactly ``environ``."""
    project.write("reporter.py", REPORTER)
    spec = project.spec(name=name, trial={"function": "reporter:threads"}, budget={"trials": 2},
                        executor={"kind": "process", "workers": 2})
    proc = _cli(project, environ, "run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return [t["metrics"] for t in project.trials(name)]


def test_each_of_several_workers_gets_its_share_of_the_cpus_and_a_users_setting_wins(project):
    untouched = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}  # (the suite sets them: conftest)
    share = float(max(1, usable_cpus() // 2))
    for metrics in _threads_seen(project, "shared", untouched):
        assert {name: metrics[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, share), metrics
    # run again alone (`reproduce`: one worker), a trial gets the share it had among its run's two workers
    again = _cli(project, untouched, "reproduce", "shared", "0")
    assert again.returncode == 0 and "1/1 reproduced trials matched" in again.stdout, again.stdout + again.stderr
    for metrics in _threads_seen(project, "own", {**untouched, "OMP_NUM_THREADS": "3"}):
        assert metrics["OMP_NUM_THREADS"] == 3.0
        assert metrics["OPENBLAS_NUM_THREADS"] == -1.0, "a user who set one variable chose: none is added"


def test_the_share_rule():
    assert thread_share_env(1, {}, 8) == {}
    assert thread_share_env(4, {}, 8) == dict.fromkeys(THREAD_VARIABLES, "2")
    assert thread_share_env(16, {}, 8) == dict.fromkeys(THREAD_VARIABLES, "1")
    assert thread_share_env(4, {"MKL_NUM_THREADS": "1"}, 8) == {}
    assert thread_share_env(2, {}, 3) == dict.fromkeys(THREAD_VARIABLES, "1")  # rounded down; strings, for an env
