"""The `trial` object a user's objective function receives."""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tunesmith.errors import SpecError, TrialError, WorkdirError
from tunesmith.evaluation.checkpoint_reports import ReportsAppender, read_reports, write_reports
from tunesmith.evaluation.results import _to_float
from tunesmith.records import ExperimentRecord, ParamValue, Report, TrialRecord, TrialState
from tunesmith.suggestions import listed


CHECKPOINT = "checkpoint"
PARENT_CHECKPOINT = "checkpoint-parent"
STATE_FILE = "state.json"
MODEL = "model"  # where a trial hands over its model (trial.save_model, or a command trial's own model/)
FOLDERS_NAMED = 3  # a refusal of a workdir names this many of the trial folders it found
COPY_ATTEMPTS = 50  # a save's swap takes a moment; 50 tries 10 ms apart outlast it by far
TRIAL_FOLDER = "trial-{number:05d}"  # a trial's folder in the workdir, by its number (str.format): the one spelling
_TRIAL_PREFIX = TRIAL_FOLDER.partition("{")[0]  # what the folders of trials found in a workdir start with
_TRIAL_FOLDER = re.compile(re.escape(_TRIAL_PREFIX) + r"(\d+)")


def trial_folders(workdir: str) -> list[str]:
    """The trial folders (``trial-NNNNN``) already in ``workdir``, by name."""
    return sorted(p.name for p in Path(workdir).glob(f"{_TRIAL_PREFIX}[0-9]*") if p.is_dir())


def numbered_trial_folders(workdir: str) -> dict[int, str]:
    """The folders in ``workdir`` named as a run names a trial's (``trial-NNNNN``), by trial number."""
    return {int(m.group(1)): name for name in trial_folders(workdir) if (m := _TRIAL_FOLDER.fullmatch(name))}


def default_workdir(name: str) -> str:
    """Where an experiment's trial folders go when its spec sets no ``workdir``: relative to the current folder."""
    return os.path.join(".tunesmith", name)


def check_fresh_workdir(workdir: str, name: str, recorded: Callable[[], Iterable[ExperimentRecord]]) -> None:
    """A new experiment's workdir must take trial folders, and hold none yet. One that cannot be written (a
    read-only filesystem, a folder of another user's) failed at the first trial's folder, once the experiment was
    recorded. Existing trial folders: trial N would take the checkpoint in ``trial-0000N`` as its own (a retry's),
    and append to its log. They do after ``tunesmith delete`` and a run again under the same name, or when two
    specs set the same ``workdir``.

    Args:
        workdir: the absolute workdir the run records (the spec's, else ``.tunesmith/NAME`` under the current
            folder, as ``runner.prepare`` fills it in).
        recorded: the store's experiments, read only when such folders exist (an experiment still recorded under
            ``name`` is left to the store, which refuses the name and points at ``resume``).

    Raises:
        SpecError: at ``workdir``, naming why no folder can be made there, or the folders, whose they are where the
            store knows, and the fix.
    """
    why = workdir_unwritable(workdir)
    if why is not None:
        default = default_workdir(name)
        if os.path.abspath(default) == os.path.abspath(workdir):
            raise SpecError("workdir", f"trial folders cannot be made in {workdir} (the default, {default} under the "
                                       f"current folder): {why}; run from a folder you can write, or set workdir: in "
                                       "the spec to a folder you can write")
        raise SpecError("workdir", f"trial folders cannot be made in {workdir}: {why}; set workdir: in the spec to a "
                                   "folder you can write")
    folders = trial_folders(workdir)
    if not folders:
        return
    experiments = [(e.name, e.spec.get("workdir")) for e in recorded()]
    if name in {n for n, _ in experiments}:
        return
    here = os.path.realpath(workdir)
    owners = [n for n, w in experiments if w is not None and os.path.realpath(w) == here]
    shown = listed(folders, FOLDERS_NAMED)
    whose = (f"of experiment {owners[0]!r}, which sets the same workdir" if owners else
             "of an experiment this store does not have (deleted, or recorded in another store)")
    remove = "" if owners else f"remove them (rm -r {os.path.join(workdir, _TRIAL_PREFIX + '*')}) or "
    raise SpecError("workdir", f"{workdir} already holds trial folders ({shown}) {whose}; new trials would take "
                               f"their checkpoints and logs as their own: {remove}set workdir: to a folder of this "
                               "experiment's own")


def check_resumed_workdir(workdir: str, name: str, counts: Callable[[], Mapping[TrialState, int]]) -> None:
    """A resumed experiment's workdir must hold no folder of a trial its store does not have. A run the store does
    not know of left it: the run went on after the backup the store was restored from had been taken, or another
    store's experiment writes the same workdir. The first attempt of the store's next trials would take such a
    folder as its own, as :func:`check_fresh_workdir` says of a new experiment: load its checkpoint (another
    configuration's) as a retry's, record that configuration's result as its own, append to its log beside its
    ``model/``.

    Trial numbers are drawn from 0 without gaps (one atomic counter, a trial recorded with each number), so the store
    has trial N exactly when N is below the number of trials it holds.

    Args:
        workdir: the experiment's recorded, absolute workdir.
        name: the experiment's name.
        counts: the experiment's trials in the store, by state. Read after the folders are listed: a folder that a
            coordinator cooperating on the experiment makes meanwhile belongs to a trial already recorded, and counted.

    Raises:
        SpecError: at ``workdir``, naming the folders and the command that moves them aside.
    """
    folders = numbered_trial_folders(workdir)
    if not folders:
        return
    recorded = sum(counts().values())
    unknown = [folders[n] for n in sorted(folders) if n >= recorded]
    if not unknown:
        return
    has = f"trials 0 to {recorded - 1}" if recorded else "no trial"
    raise SpecError("workdir", f"{workdir} holds {len(unknown)} trial folder(s) of trials this store does not have "
                               f"({listed(unknown, FOLDERS_NAMED)}; experiment {name!r} has {has} here), left by a run "
                               "it does not know of: a run that went on after the backup this store was restored "
                               "from, or another store's experiment writing to this workdir; the next trials would "
                               "take their checkpoints and logs as their own: move them aside, then resume again: "
                               f"{_move_aside(workdir, unknown)}")


def _move_aside(workdir: str, folders: list[str]) -> str:
    """A shell command that moves ``folders`` (names in ``workdir``) into a new folder of the workdir that no run
    takes for a trial's: a range (``trial-{00008..00420}``: bash and zsh pad it) where they are one, else each."""
    aside = shlex.quote(os.path.join(workdir, time.strftime("not-in-store-%Y%m%d-%H%M%S")))
    digits = [f.removeprefix(_TRIAL_PREFIX) for f in folders]
    numbers = [int(d) for d in digits]
    if len(folders) > 3 and numbers == list(range(numbers[0], numbers[-1] + 1)) and len(set(map(len, digits))) == 1:
        moved = f"{shlex.quote(workdir)}/{_TRIAL_PREFIX}{{{digits[0]}..{digits[-1]}}}"
    else:
        moved = " ".join(shlex.quote(os.path.join(workdir, f)) for f in folders)
    return f"mkdir {aside} && mv {moved} {aside}/"


def workdir_unwritable(workdir: str) -> str | None:
    """Why no folder can be made in ``workdir``, as the OS says it (``/data: Read-only file system``), or None.

    Tried for real, as the run would: a folder is made and removed at once in ``workdir`` or, where it does not exist
    yet, in its nearest existing parent, where ``mkdir -p`` writes first. (``os.access`` is no answer: root passes it
    on a folder with mode 0555, and it knows nothing of a full disk.)
    """
    path = os.path.abspath(workdir)
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    try:
        probe = tempfile.mkdtemp(prefix=".tunesmith-probe-", dir=path)
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    os.rmdir(probe)
    return None


def make_trial_folder(trial: TrialRecord, workdir: str, new_trial: bool) -> Path:
    """Make the folder of ``trial`` (its log's) in ``workdir``; a re-run's is there already (a retry's, a lost or
    interrupted attempt's: also where that attempt never began and the re-run is attempt 1 again, its folder made
    as it was queued).

    A ``new_trial`` (just numbered, its first attempt) never takes a folder that is there already: a trial the store
    does not have left it (another run writing to the workdir since this one started: ``check_resumed_workdir``
    found none then), and its checkpoint would be loaded as this trial's own.

    Raises:
        WorkdirError: it cannot be made (a full disk, permissions changed mid-run), or a new trial found it there:
            the run stops, as on a store that cannot be written.
    """
    folder = Path(trial.log_path or "").parent
    try:
        folder.mkdir(parents=True, exist_ok=not new_trial)
    except FileExistsError:
        aside = _move_aside(str(folder.parent), [folder.name])
        raise WorkdirError(f"trial {trial.number}'s folder {folder} is there already, left by a trial this store does "
                           f"not have (another run writing to workdir {workdir}: one on a store this store was "
                           "restored from, or another store's experiment with the same workdir); the run stopped "
                           f"rather than have trial {trial.number} take its checkpoint and log as its own; its "
                           "running trials are recorded interrupted: stop the other run or give it a workdir of its "
                           f"own, move the folder aside ({aside}), then resume the experiment") from None
    except OSError as e:
        raise WorkdirError(f"trial {trial.number}'s folder could not be made in workdir {workdir}: "
                           f"{e.strerror or e} ({e.filename or folder}); the run stopped; its running trials are "
                           "recorded interrupted: make the workdir take folders again (free space, or fix its "
                           "permissions), then resume the experiment") from None
    return folder


def copy_latest_checkpoint(trial_dir: Path, into: Path) -> bool:
    """Copy the checkpoint in ``trial_dir`` into ``into`` (a PBT child's ``checkpoint-parent/``), whole; False when
    there is none (or, rarely, when every try met a save).

    The trial may be running and saving meanwhile: a save swaps folders by renaming (``checkpoint`` to ``.old``,
    ``.new`` to ``checkpoint``), so files can vanish under a copy, or a copy can begin in one checkpoint and end in
    the next. A copy is kept only if the folder it read is still the checkpoint when it ends (same inode and
    times); else it is made again. It goes to a staging folder and is swapped in, so the child never sees half of
    one.
    """
    source, staging = trial_dir / CHECKPOINT, into.with_name(into.name + ".new")
    saving = (trial_dir / (CHECKPOINT + ".new"), trial_dir / (CHECKPOINT + ".old"))
    into.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(COPY_ATTEMPTS):
        shutil.rmtree(staging, ignore_errors=True)
        try:
            before = checkpoint_version(source)
            shutil.copytree(source, staging)
            if before is not None and checkpoint_version(source) == before:
                shutil.rmtree(into, ignore_errors=True)
                staging.rename(into)
                return True
        except (shutil.Error, OSError):
            if not source.exists() and not any(p.exists() for p in saving):
                return False  # no checkpoint, and none being saved
        time.sleep(0.01)
    shutil.rmtree(staging, ignore_errors=True)
    return False


def checkpoint_version(path: Path) -> tuple[int, int, int] | None:
    """Which save a checkpoint folder is (None: there is none): save_checkpoint swaps in a new folder each time,
    and its inode and times tell one save from the next (a new folder may reuse an inode; a rename changes ctime)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


class TrialContext:
    """What a running trial can see and do.

    Attributes:
        number: the trial's number in its experiment (0, 1, ...).
        seed: a seed for this trial, derived from the experiment's seed and the trial number.
        params: the active parameters of this trial.
        workdir: a folder of the trial's own for files, checkpoints and artifacts.
        attempt: 1 for the first attempt, 2 for the first retry, ...
    """

    def __init__(self, number: int, seed: int, params: dict[str, ParamValue], workdir: str, attempt: int,
                 on_report: Callable[[Report], None], prune_requested: Callable[[], bool]) -> None:
        self.number = number
        self.seed = seed
        self.params = params
        self.workdir = Path(workdir)
        self.attempt = attempt
        self._on_report = on_report
        self._prune_requested = prune_requested
        self._reports: list[Report] = []
        # The trial's curve as its latest checkpoint carries it (checkpoint_reports.py): the reports that count
        # (steps increasing), after those restated from the checkpoint this attempt loaded. The first `_unsent`
        # are restated and not sent yet: the first report decides which (the steps before it), else the end.
        self._curve: list[Report] = []
        self._unsent = 0
        self._appender: ReportsAppender | None = None  # while a checkpoint of the trial's own is its latest

    def report(self, step: int, value: float) -> None:
        """Record an intermediate value (validation score after an epoch, say) at ``step``.

        ``step``: a whole number from 0 to ``MAX_STEP``; a whole float (``1.0``) is that step, as in a command
        trial's report line. ``value``: any number, NaN and infinities included: a diverged training reports them,
        and that is a result, not an error (under a scheduler the trial is stopped, pruned; see
        :func:`tunesmith.records.diverged`).

        Raises:
            TrialError: when step is no such number or value is no number at all (None, a string).
        """
        # numpy scalars are accepted (an epoch from np.arange, a np.float32 score), as in a trial's result
        index = report_step(step)
        if index is None:
            # a fraction is a score where the step goes: Optuna's order, report(value, step), kept in a port
            fraction = (isinstance(step, numbers.Real) and not isinstance(step, bool) and math.isfinite(step)
                        and not float(step).is_integer())
            order = f". {_STEP_FIRST}" if fraction else ""
            raise TrialError(f"trial.report: step must be a whole number from 0 to {MAX_STEP} (an int, or a whole "
                             f"float such as 1.0); got {step!r}{order}")
        number = _to_float(value)
        if number is None:
            raise TrialError(f"trial.report: value must be a number; got {value!r}")
        report = Report(index, number)
        if self._unsent:
            self._restate(before=index)
        if not self._curve or index > self._curve[-1].step:  # (one out of order: the attempt ignores and says it)
            self._curve.append(report)
            if self._appender is not None:
                try:
                    self._appender.append(report)
                except OSError:  # (a full disk): the trial goes on; its next save writes the curve whole
                    self._appender.close()
                    self._appender = None
        self._reports.append(report)
        self._on_report(report)

    def _restate(self, before: int | None = None) -> None:
        """Send the reports restated from the loaded checkpoint, those at steps below ``before`` (the attempt's
        first report of its own, which re-does the rest); all of them at the attempt's end (``before`` None)."""
        # (nothing of the attempt's own is in the curve yet: the restated reports are all of it, steps increasing)
        kept = len(self._curve) if before is None else sum(1 for r in self._curve if r.step < before)
        self._unsent = 0
        del self._curve[kept:]
        for report in self._curve:
            restated = Report(report.step, report.value, restated=True)
            self._reports.append(restated)
            self._on_report(restated)

    def _end_attempt(self, restate: bool = True) -> None:
        """The objective returned or raised (the attempt runs it once): restate what no report of its own came
        after (``restate``), and close the checkpoint's reports file."""
        if self._unsent and restate:
            self._restate()
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    if not TYPE_CHECKING:  # a type checker still refuses a name the class lacks
        def __getattr__(self, name: str) -> object:
            # called only for a name the class lacks: Optuna's define-by-run (trial.suggest_float), kept in a port
            if name.startswith("suggest_"):
                raise AttributeError(f"trial.{name}: tunesmith has no define-by-run; the space is declared in the "
                                     "spec (space: {x: {type: float, low: 0, high: 1}}) and the trial reads "
                                     "config['x'] (see docs/from-optuna.md)")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def should_prune(self) -> bool:
        """True when the scheduler decided this trial should stop now (return the last value, or anything)."""
        return self._prune_requested()

    # -- checkpoints ------------------------------------------------------------------------------------------
    # A trial's checkpoint lives in <workdir>/checkpoint. A retried attempt finds its own last checkpoint; a
    # trial started from another (PBT's exploit) finds a copy of its parent's in <workdir>/checkpoint-parent.
    # Objects are stored as JSON (checkpoints are read back, and nothing read from disk is ever unpickled);
    # anything else goes in a folder the trial fills itself (torch.save files, say) and passes as a path.

    def save_checkpoint(self, state: object) -> Path:
        """Save ``state``: a JSON-able object, or the path of a folder whose contents are copied.

        Returns:
            The checkpoint folder.

        Raises:
            TrialError: when ``state`` is neither a folder nor JSON-able (save such state into a folder).
        """
        target = self.workdir / CHECKPOINT
        staging = self.workdir / (CHECKPOINT + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(state, str | os.PathLike) and Path(state).is_dir():
            shutil.copytree(state, staging)
        else:
            try:
                text = json.dumps(state)
            except (TypeError, ValueError) as e:
                raise TrialError(f"trial.save_checkpoint: the state is not JSON-able ({e}); save it into a folder "
                                 "and pass the folder's path") from None
            staging.mkdir(parents=True)
            (staging / STATE_FILE).write_text(text)
        if self._appender is not None:  # its file holds the curve: every report since it was saved or loaded
            self._appender.close()
        write_reports(staging, self._curve, self._appender.path if self._appender is not None else None)
        # swap in whole, so a crash mid-save leaves the previous checkpoint intact
        old = self.workdir / (CHECKPOINT + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        self._appender = ReportsAppender(target)
        return target

    def load_checkpoint(self) -> object | Path | None:
        """This trial's latest checkpoint (a retry resumes from it), else its parent's (PBT), else None.

        Returns:
            The object saved, or the checkpoint folder's path when a folder was saved.
        """
        for folder in (self.workdir / CHECKPOINT, self.workdir / PARENT_CHECKPOINT):
            if folder.is_dir():
                if folder.name == CHECKPOINT and self._appender is None and not self._reports:
                    self._curve, self._appender = list(read_reports(folder)), ReportsAppender(folder)
                    self._unsent = len(self._curve)
                state = folder / STATE_FILE
                return json.loads(state.read_text()) if state.is_file() else folder
        return None

    def save_model(self, path_or_folder: str | os.PathLike[str]) -> Path:
        """Hand over this trial's model: a file or a folder (an MLflow model saved with ``mlflow.<flavor>.save_model``,
        say), copied into ``<workdir>/model``. Tracking logs it on the trial's MLflow run and ``tunesmith promote``
        registers it. A command trial writes ``model/`` in its trial folder instead.

        Raises:
            TrialError: when nothing exists at ``path_or_folder``.
        """
        source = Path(path_or_folder)
        target = self.workdir / MODEL
        if not source.exists():
            raise TrialError(f"trial.save_model: nothing at {str(source)!r}")
        if source.resolve() == target.resolve():
            return target
        shutil.rmtree(target, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)
        return target

    @property
    def reports(self) -> tuple[Report, ...]:
        return tuple(self._reports)

    def __repr__(self) -> str:
        return f"TrialContext(number={self.number}, seed={self.seed}, params={self.params})"


_STEP_FIRST = "report(step, value): the step comes first (Optuna's Trial.report takes value, step)"


def step_first_hint(error: BaseException) -> str:
    """What a trial's failure adds to Python's own TypeError for ``trial.report(0.9, step=3)``, Optuna's order with
    the step named: the call binds 0.9 to ``step`` before ``report`` runs, so report cannot say it itself (a
    signature taking anything, to say it, would leave report(step, value) unreadable to type checkers and IDEs).
    ``""`` for any other error."""
    if isinstance(error, TypeError) and \
            str(error) == f"{TrialContext.report.__qualname__}() got multiple values for argument 'step'":
        return f". {_STEP_FIRST}: write trial.report(step, value), or name both: trial.report(step=..., value=...)"
    return ""


MAX_STEP = 2 ** 63 - 1
"""The largest step a report can have: the store keeps steps as 64-bit integers (SQLite raised OverflowError)."""


def report_step(step: object) -> int | None:
    """``step`` as a report's step, else None: the one rule of ``trial.report`` and a command's report line. A whole
    number from 0 to MAX_STEP: an int (numpy's too) or a whole float (``1.0``: a float counter, a numpy number
    through json.dumps); never a bool."""
    if isinstance(step, bool | str | bytes) or type(step).__name__ == "bool_":  # np.True_ is no step either
        return None
    try:
        index = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        if not isinstance(step, numbers.Real):  # np.float32 is one, though no float
            return None
        number = float(step)
        if not (math.isfinite(number) and number.is_integer()):
            return None
        index = int(number)
    return index if 0 <= index <= MAX_STEP else None


class TrialPruned(Exception):  # noqa: N818 - named for what it signals, like Optuna's
    """Raise from an objective to stop the trial as pruned (after ``trial.should_prune()`` said so)."""


def prune_signals() -> tuple[type[BaseException], ...]:
    """The exceptions that stop a trial as pruned: tunesmith's ``TrialPruned``, and Optuna's, which a ported
    objective keeps (``if trial.should_prune(): raise optuna.TrialPruned()``). Optuna's class is taken where the
    trial's own import put it, so a worker never imports optuna to ask: no optuna loaded, none raised."""
    optuna_exceptions = sys.modules.get("optuna.exceptions")
    return (TrialPruned,) if optuna_exceptions is None else (TrialPruned, optuna_exceptions.TrialPruned)
