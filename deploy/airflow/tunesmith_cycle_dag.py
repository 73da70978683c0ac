"""Keep the champion fresh from Airflow: a daily DAG of three BashOperator tasks, each calling the tunesmith CLI.

cycle -> (drift_report, show_champion). `tunesmith cycle` runs first: on a fresh store it tunes the spec (the first
tuning), then checks the day's rows against the champion. It exits 0 when the cycle ran (see outcome in its JSON), 3
when a promotion gate rejected the re-tune, 1 when a step failed, 2 on bad input, 75 to try again later (the store's
database server or MLflow did not answer, or another cycle holds the lineage; a re-tune recorded before MLflow
failed is offered again, not run anew), which the task's retry (`retries`, 10 minutes later) is there for. Exit 3 is
a verdict, not a failure: the task is left skipped (`skip_on_exit_code`), never retried (a retry would run another
full re-tune); the two report tasks still run, and cycle-DAY.json's outcome says `rejected`. The reports name the
experiments the cycle's JSON names: `checked` (what the rows were compared with) and `champion` (the champion after
the cycle). `tunesmith drift` exits 4 on drift, which is news, not a failure, so the report task treats 0 and 4
alike.

Each day's rows are /opt/tunesmith/data/DAY.csv, a file of its own (DAY: the end of the run's data interval, the
day the run is for, as in the Argo and GitHub examples; not `ds`, the day before): a re-tune records the path it was
tuned on, and the next cycles compare new rows with that file, so a file overwritten in place would compare the new
rows with themselves. The spec is deploy/models/churn.yaml (its name:, churn, is the experiment).
Airflow Variables (set them from a secrets backend) name the stores, which must outlive the worker:
`tunesmith_storage_secret`, the shared PostgreSQL URL, and `mlflow_tracking_uri_secret`, the MLflow server (read
when the spec names none; `cycle` registers at the spec's tracking.mlflow.uri first: keep the two the same).
The worker needs tunesmith with its postgres and mlflow extras, installed from a checkout of its repository (it is
on no package index; see deploy/README.md, "Installing tunesmith"): `pip install '/opt/src/tunesmith[postgres,mlflow]'`
or the wheel `pip wheel --no-deps . -w dist` built there. With --model-name the cycle reads the champion from
MLflow's model registry and promotes into it (without MLflow it is refused, exit 2). Needs Airflow 2.6 or later
(`skip_on_exit_code`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

SPEC = "/opt/tunesmith/models/churn.yaml"
# The day the run is for, as the Argo and GitHub examples take it (`date -u +%F` as the run starts): the end of the
# data interval. Not `{{ ds }}`: that is the interval's *start*, the day before for @daily on Airflow 2 (and on
# Airflow 3 with create_cron_data_intervals), so a team moving the loop here read yesterday's file. (Airflow 3: a
# manual run needs a logical date for this, as for `ds`.)
DAY = "{{ data_interval_end | ds }}"
DATA = f"/opt/tunesmith/data/{DAY}.csv"
REPORTS = "/opt/tunesmith/reports"
CYCLE_JSON = f"{REPORTS}/cycle-{DAY}.json"
# The Variables' keys end in _secret: Airflow masks such values in the Rendered Template view and the task logs
# (env is a templated field), and a PostgreSQL URL carries its password.
STORES = {"TUNESMITH_STORAGE": "{{ var.value.tunesmith_storage_secret }}",
          "MLFLOW_TRACKING_URI": "{{ var.value.mlflow_tracking_uri_secret }}"}
# The experiment a field of the cycle's JSON names; empty (and the report skipped) when the cycle refused its input
CHECKED = "python -c 'import json, sys; print(json.load(open(sys.argv[1])).get(\"checked\") or \"\")'"
CHAMPION = "python -c 'import json, sys; print(json.load(open(sys.argv[1])).get(\"champion\") or \"\")'"


with DAG(
    dag_id="tunesmith_cycle",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10), "env": STORES, "append_env": True},
    tags=["tunesmith"],
) as dag:
    cycle = BashOperator(
        task_id="cycle",
        bash_command=f"mkdir -p {REPORTS} && tunesmith cycle {SPEC} --data {DATA} --trials 30 --model-name churn "
                     f"--json-out {CYCLE_JSON}",
        skip_on_exit_code=3,
    )
    drift_report = BashOperator(
        task_id="drift_report",
        bash_command=f"checked=$({CHECKED} {CYCLE_JSON}) || exit 1\n"
                     "[ -n \"$checked\" ] || { echo 'the cycle checked nothing (see its JSON)'; exit 0; }\n"
                     f"tunesmith drift \"$checked\" --data {DATA} --json-out {REPORTS}/drift-{DAY}.json "
                     "|| test $? -eq 4",
        trigger_rule="none_failed",   # also after a rejected gate (cycle skipped)
    )
    show_champion = BashOperator(
        task_id="show_champion",
        bash_command=f"champion=$({CHAMPION} {CYCLE_JSON}) || exit 1\n"
                     "[ -n \"$champion\" ] || { echo 'no champion (see the cycle JSON)'; exit 0; }\n"
                     "tunesmith show \"$champion\"",
        trigger_rule="none_failed",
    )
    cycle >> [drift_report, show_champion]
