"""Watching a run from outside: Prometheus metrics, JSON event logs, the HTML report and its live view.

Everything here observes; nothing changes a run. The modules are imported lazily by the CLI, so that
`import tunesmith` loads neither prometheus_client nor plotly:

- ``metrics``: the Prometheus metrics, declared once (the only module importing prometheus_client);
- ``observers``: the run listeners the CLI attaches (metrics served / written as a textfile, JSON logs);
- ``json_log``: one JSON object per run event;
- ``report``: the self-contained HTML report (the only module importing plotly);
- ``dashboard``: that report served on 127.0.0.1, refreshed from the store.
"""
