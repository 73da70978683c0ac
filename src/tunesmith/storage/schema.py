"""The store's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create and evolve them; a brand-new
SQLite store is created from these tables directly, at the head revision (storage/sql.py: create_at_head).

Timestamps are seconds since the epoch (float); structured fields are JSON text, portable across SQLite and
PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger, Column, Dialect, Float, ForeignKey, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

HEAD_REVISION = "0009"

metadata = MetaData()

# Alembic's own record of the revision, as Alembic creates it (its table, column and constraint names), in a metadata
# of its own: not one of the store's tables. A brand-new SQLite store is created from ``metadata`` and stamped here
# without importing Alembic (storage/sql.py: create_at_head).
alembic_version = Table(
    "alembic_version", MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


class ReportValue(TypeDecorator[float]):
    """A report's value: any float, NaN and infinities included (a diverged trial reports them).

    SQLite has no NaN: a NaN bound to a REAL column is stored as NULL (and breaks NOT NULL). So on SQLite a NaN is
    stored as the text ``'nan'``, which a REAL column keeps as text and ``float()`` reads back; infinities are REAL
    values there. PostgreSQL's double precision holds all three itself. The column's DDL is a FLOAT's, unchanged.
    """

    impl = Float
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        to_float = super().bind_processor(dialect)
        if dialect.name != "sqlite":
            return to_float

        def nan_as_text(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return "nan"
            return to_float(value) if to_float is not None else value

        return nan_as_text

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else float(value)

experiments = Table(
    "experiments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("strategy", String(32)),
    Column("strategy_reason", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("next_number", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(255)),
    Column("lease_expires_at", Float),
    Column("attributes", Text, nullable=False, server_default="{}"),
)

trials = Table(
    "trials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("values", Text),
    Column("metrics", Text, nullable=False, server_default="{}"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("failure_kind", String(32)),
    Column("log_path", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Column("heartbeat_at", Float),
    Column("owner", String(255)),
    UniqueConstraint("experiment_id", "number", name="uq_trials_experiment_number"),
    Index("ix_trials_experiment_state", "experiment_id", "state"),
)

trial_reports = Table(
    "trial_reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("step", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),  # 64-bit: steps up to 2**63 - 1
    Column("value", ReportValue, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_trial_reports_trial", "trial_id", "step"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("trial_number", Integer),
    Column("kind", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("payload", Text, nullable=False, server_default="{}"),
    Index("ix_events_experiment", "experiment_id", "id"),
)

# Quotas (revision 0003). A limit per key (``user:alice``, ``tag:team=vision``), set by whoever runs the platform;
# a running trial holds one lease row per key of its run, renewed by its coordinator until ``expires_at``: only
# unexpired rows count, so a killed coordinator's slots come free after the lease TTL (at once to a coordinator on
# the same host, which sees the holder's process is gone).
quota_limits = Table(
    "quota_limits", metadata,
    Column("quota_key", String(255), primary_key=True),
    Column("max_running", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

slot_leases = Table(
    "slot_leases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lease", String(64), nullable=False),         # one slot: the same id on each of its keys' rows
    Column("quota_key", String(255), nullable=False),
    Column("holder", String(255), nullable=False),       # the coordinator (lease_owner_id)
    Column("experiment_id", Integer),                    # who is using the slot, for `quota list`; no FK: a
    Column("acquired_at", Float, nullable=False),        # deleted experiment's leases lapse by themselves
    Column("expires_at", Float, nullable=False),
    Index("ix_slot_leases_key", "quota_key", "expires_at"),
    Index("ix_slot_leases_holder", "holder", "lease"),
)

# A coordinator refused a slot leaves a ticket per full key; a slot that comes free goes to the oldest live ticket
# first, so a coordinator whose trial just ended cannot take its own slot straight back while another one waits.
quota_waiters = Table(
    "quota_waiters", metadata,
    Column("quota_key", String(255), primary_key=True),
    Column("holder", String(255), primary_key=True),
    Column("since", Float, nullable=False),
    Column("expires_at", Float, nullable=False),    # a waiter that stopped asking drops out of the queue
)

# Coordinators' own beats (revision 0004): each coordinator on an experiment (its lead, its joiners) stamps its row
# from its heartbeat thread, trial or no trial, so its peers tell it gone STALE_AFTER after its last beat (a remote
# lead's lease alone kept it at work until the lease lapsed).
coordinator_beats = Table(
    "coordinator_beats", metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True),
    Column("owner", String(255), primary_key=True),
    Column("beat_at", Float, nullable=False),
)

# What the store keeps of a deleted experiment (revision 0005): `tunesmith delete` removes its rows, events included,
# and a registered model's champion may have come from it (--even-if-champion). One row per deletion, written in the
# deletion's transaction: who deleted it, when, how many trials it had, and its promotion and rollback events (the
# ones that explain a champion), so `tunesmith audit` still shows them. No FK: the experiment is gone; a name may
# be deleted, run again and deleted again, and an id may be given again to a later experiment (SQLite).
deleted_experiments = Table(
    "deleted_experiments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(128), nullable=False),
    Column("deleted_at", Float, nullable=False),
    Column("trials", Integer, nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),       # the actor and the reason, as audit events
    Column("kept_events", Text, nullable=False, server_default="[]"),  # [{id, kind, at, trial, payload}], oldest first
    Index("ix_deleted_experiments_name", "name"),
)
