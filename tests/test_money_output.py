"""Money in the output: ``show --json`` carries the full value (machine output is not rounded), and the text of
``show`` writes it with the same significant digits as the run's own stop line, however small the amount."""

from __future__ import annotations

import re

import pytest


def test_show_reports_a_tiny_spend_in_full_and_as_the_stop_line_did(project):
    spec = project.write_spec(project.spec(name="cheap", budget={"trials": 12}, executor={"kind": "inline"},
                                           cost={"cpu_hour": 0.04, "memory_gb_hour": 0.005}))
    run = project.cli("run", str(spec), check=True)
    stopped = re.search(r"Stopped: trial budget of 12 reached \(spent (\S+)\)\.", run.stdout)
    assert stopped, run.stdout
    costs = [t["metrics"]["cost"] for t in project.trials("cheap")]
    assert len(costs) == 12 and 0 < sum(costs) < 5e-7, costs  # below what 6 decimals can hold

    cost = project.show("cheap")["cost"]
    assert cost["spent"] == pytest.approx(sum(costs), rel=1e-12, abs=0)
    assert cost["projected_total"] == pytest.approx(sum(costs), rel=1e-12, abs=0)  # finished: what it spent
    assert cost["burn_per_hour"] > 0

    shown = project.cli("show", "cheap", check=True).stdout
    line = re.search(r"cost: spent (\S+) over 12 trials; burn rate (\S+)/hour; projected total (\S+)", shown)
    assert line, shown
    assert line[1] == stopped[1] == f"{sum(costs):.4g}", (line[0], stopped[0])
    assert line[3] == line[1] and float(line[2]) == pytest.approx(cost["burn_per_hour"], rel=1e-3)
