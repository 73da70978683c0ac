"""The one error tree of tunesmith.

::

    TunesmithError
    ├── SpecError            invalid experiment spec (exit code 2); carries the field path
    │   └── SpaceError       invalid search space or parameter values (also a ValueError)
    ├── ExperimentExists     `run` on a name already in the store (use `resume`)
    ├── ExperimentNotFound   `resume` / `show` on an unknown name
    ├── LeaseHeld            another coordinator holds the experiment
    ├── ClusterLost          the run's Ray cluster went away mid-run (the run stopped; `resume` continues; exit 75)
    ├── RegistryUnavailable  no MLflow tracking server answers at the registry's URI (a TemporaryFailure: exit 75)
    ├── QuotaError           a malformed quota key or limit (`tunesmith quota set`)
    ├── StorageError         the store cannot be opened, migrated or written
    │   ├── StoreUnavailable     no database server answers at the store's address (also a TemporaryFailure: exit 75)
    │   ├── StorageConfigError   a wrong store address (also a UserInputError: exit 2)
    │   │   ├── StoreNotFound    no store there (a read-only command does not create one)
    │   │   └── UpgradeRefused   an older tunesmith's store this host may not upgrade (TUNESMITH_MIGRATE=never)
    │   ├── StoreDamaged         an SQLite file that SQLite finds damaged (restore a backup; exit 1, no resume hint)
    │   └── WorkdirError         a trial's folder cannot be made mid-run (a full disk): the run stopped
    └── TrialError           raised inside a trial to fail it with a classified reason

Errors that are the user's to fix (``UserInputError`` subclasses) print one message and exit with code 2. Errors
that are the infrastructure's and pass (``TemporaryFailure`` subclasses: ``ClusterLost``, ``StoreUnavailable``,
``RegistryUnavailable``) exit with code 75, sysexits' EX_TEMPFAIL, which schedulers read as "try again later"; code 2
says "do not".
"""

from __future__ import annotations

import reprlib


class TunesmithError(Exception):
    """Base of every error tunesmith raises on purpose."""


class UserInputError(TunesmithError):
    """Input the user must fix; the CLI prints the message alone and exits 2."""


class SpecError(UserInputError):
    """An invalid experiment spec.

    Args:
        path: dotted path of the offending field (``space.C.low``), or ``""`` for the whole spec.
        message: what is wrong and how to fix it.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class SpaceError(SpecError, ValueError):
    """An invalid search space, or parameter values that do not belong to it. Also a ValueError: a bad domain was
    pydantic's ValidationError (a ValueError) before, and ``tunesmith.sklearn.to_space`` documents ValueError."""


def _value_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxtuple, shown.maxdict, shown.maxset = 3, 8, 8, 8, 8
    shown.maxstring = shown.maxother = 200
    return shown


_VALUE_REPR = _value_repr()


def quoted(value: object) -> str:
    """``repr(value)`` for a message quoting a value the user gave, cut to a few hundred characters: the first items
    of a list or mapping, three levels deep, the ends of a long text joined by ``...``. A whole repr of a spec's list
    of aliases of aliases (``[*x8, *x8, ...]``, shared once loaded, each written out by repr) was gigabytes."""
    return _VALUE_REPR.repr(value)


class ExperimentExists(UserInputError):
    """`run` was asked for an experiment name that the store already has. ``name`` and ``store`` (the store's
    address, password hidden) let a caller other than the CLI name its own way out (the Python API: a spec's
    ``name``, :func:`tunesmith.resume`), not the CLI's ``--name``; ``differences``, the first ways in which the
    recorded spec differs from the one given (``budget.trials: 40 -> 80``), or ``""`` where it does not."""

    def __init__(self, message: str, name: str | None = None, store: str | None = None,
                 differences: str = "") -> None:
        super().__init__(message)
        self.name, self.store, self.differences = name, store, differences


class ExperimentNotFound(UserInputError):
    """No experiment of that name in the store."""


class LeaseHeld(UserInputError):
    """Another live coordinator holds the experiment's lease."""


class TemporaryFailure(TunesmithError):
    """The infrastructure failed, and it passes (a server restarting, a network outage): the same command later may
    well work. The CLI exits 75 (EX_TEMPFAIL): retried by a scheduler, unlike bad input's 2."""


class ClusterLost(TemporaryFailure):
    """The cluster the trials ran on went away mid-run. The run stopped cleanly: running trials are recorded as
    interrupted, finished ones are in the store, and ``tunesmith resume`` continues on a new cluster."""


class RegistryUnavailable(TemporaryFailure):
    """No MLflow tracking server answers at the model registry's URI (connection refused, timed out, its name server
    silent): a server restarting or a network outage, worth retrying, as for the store's server."""


class QuotaError(UserInputError):
    """A quota key or limit that cannot be used (``tunesmith quota set foo 0``)."""


class StorageError(TunesmithError):
    """The store cannot be opened, migrated, read or written."""


class StoreUnavailable(StorageError, TemporaryFailure):
    """No database server answers at the store's address (connection refused, timed out, no route): a server that is
    restarting or a network outage, worth retrying; a wrong host or port looks the same, which the message says.
    Opening only: a server lost once the store is open fails the command as any store failure does."""


class StorageConfigError(StorageError, UserInputError):
    """The store's address is wrong (not a URL, no such folder or file, no driver, no such host, role or database
    there, another application's database): the user's to fix."""


class StoreNotFound(StorageConfigError):
    """A command that only reads or continues was pointed at a store that does not exist."""


class UpgradeRefused(StorageConfigError):
    """A store an older tunesmith wrote, which this host is told not to upgrade (``TUNESMITH_MIGRATE=never``):
    nothing is read from it until `tunesmith store upgrade` has run."""


class StoreDamaged(StorageError):
    """SQLite finds the store's file damaged ("database disk image is malformed"): a ``cp`` taken while a run
    wrote to it, a disk fault. No retry or ``resume`` mends it: the message names the fix (a backup, ``.recover``).
    Exit 1, a store failure: no input given is wrong, and what was recorded may be lost."""


class WorkdirError(StorageError):
    """A trial's folder (its log, checkpoints, model) could not be made in the experiment's workdir mid-run: a full
    disk, permissions changed. The run stops as on a store that cannot be written (exit 1); ``resume`` continues once
    the workdir takes folders again. (A workdir that cannot be written as a run starts is a SpecError at
    ``workdir``: nothing is recorded.)"""


class TrialError(TunesmithError):
    """Raise from a trial to fail it with this message (not retried)."""
