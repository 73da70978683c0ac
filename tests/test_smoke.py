"""The shortest path a user takes: write a spec, run it, read the results."""

from __future__ import annotations


def test_run_show_trials(project):
    spec = project.write_spec(project.spec())
    proc = project.cli("run", str(spec))
    assert proc.returncode == 0, proc.stderr
    shown = project.show("exp")
    assert shown["status"] == "completed"
    assert shown["trials"]["completed"] == 6
    trials = project.trials("exp")
    assert [t["number"] for t in trials] == list(range(6))
    best = min(trials, key=lambda t: t["values"]["loss"])
    assert shown["best"]["number"] == best["number"]
    assert abs(best["values"]["loss"] - (best["params"]["x"] - 0.3) ** 2) < 1e-12
