"""Keep the champion fresh from Airflow: a daily DAG of three BashOperator tasks, each calling the tunesmith CLI.

drift_report -> cycle -> show_champion. `tunesmith drift` exits 4 on drift, which is news, not a failure, so
the report task treats 0 and 4 alike. `tunesmith cycle` exits 0 when the cycle ran, 3 when a promotion gate
rejected the re-tune (the task fails, so the team hears of it), 1 when a step failed, 2 on bad input.
Set TUNESMITH_STORAGE (a PostgreSQL URL) in the worker's environment or an Airflow connection.
The worker needs `pip install 'tunesmith[postgres,mlflow]'`: with --model-name the cycle reads the champion from
MLflow's model registry and promotes into it (without MLflow it is refused, exit 2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

SPEC = "/opt/tunesmith/models/churn.yaml"
DATA = "/opt/tunesmith/data/{{ ds }}.csv"
REPORTS = "/opt/tunesmith/reports"

with DAG(
    dag_id="tunesmith_cycle",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["tunesmith"],
) as dag:
    drift_report = BashOperator(
        task_id="drift_report",
        bash_command=f"tunesmith drift churn --data {DATA} --json-out {REPORTS}/drift-{{{{ ds }}}}.json "
                     "|| test $? -eq 4",
    )
    cycle = BashOperator(
        task_id="cycle",
        bash_command=f"tunesmith cycle {SPEC} --data {DATA} --trials 30 --model-name churn "
                     f"--json-out {REPORTS}/cycle-{{{{ ds }}}}.json",
    )
    show_champion = BashOperator(task_id="show_champion", bash_command="tunesmith show churn")
    drift_report >> cycle >> show_champion
