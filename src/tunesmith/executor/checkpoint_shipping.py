"""Checkpoints that travel with their trials, for a Ray node that does not share the coordinator's files.

A trial's checkpoint is a folder in its trial folder (``checkpoint/``; a PBT child's copy of its parent's in
``checkpoint-parent/``). On the coordinator's machine, or a node that mounts the same filesystem, the Ray executor
needs nothing more. On a node that does not see the trial folder (a cloud node without a shared disk), the
folders travel through Ray as tar archives of plain files (no links, no pickles):

- *in*: the coordinator packs the trial folder's ``checkpoint/`` and ``checkpoint-parent/`` with the job; the node
  creates the trial folder (marked as node-local) and unpacks them before the objective starts;
- *out*: each time the trial has saved a new checkpoint, its next report carries the archive to the coordinator
  first, and the attempt's answer carries the last one; the coordinator swaps it into its own trial folder. So a
  PBT child (whose parent is still running) copies the parent's latest checkpoint there, and a retry or a resume
  finds the trial's own, as with a shared filesystem.

An archive is capped (``limit`` bytes of files): a bigger checkpoint stays on its node, and a warning says that a
trial continuing from it elsewhere starts without it.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from tunesmith.evaluation.context import CHECKPOINT, PARENT_CHECKPOINT, checkpoint_version

DEFAULT_LIMIT = 128 * 2**20
NODE_LOCAL_MARK = ".tunesmith-node-local"   # a trial folder a node created for itself (not the coordinator's)
TRAVELLING = (CHECKPOINT, PARENT_CHECKPOINT)


class CheckpointTooLarge(Exception):
    """A checkpoint over the limit: it does not travel."""


def pack(folder: Path, names: Sequence[str], limit: int) -> bytes | None:
    """A tar archive of ``folder/name`` for each of ``names`` that is a folder; None when none is.

    Raises:
        CheckpointTooLarge: the files add up to more than ``limit`` bytes.
    """
    files: list[tuple[Path, str]] = []
    dirs: list[str] = []
    for name in names:
        root = folder / name
        if not root.is_dir():
            continue
        dirs.append(name)
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_dir() and not path.is_symlink():
                dirs.append(relative)
            elif path.is_file():  # a link to a file travels as the file, as save_checkpoint's copy makes it
                files.append((path, relative))
    if not dirs:
        return None
    size = sum(path.stat().st_size for path, _ in files)
    if size > limit:
        raise CheckpointTooLarge(f"{folder / names[0]} holds {_mib(size)}, over the {_mib(limit)} a checkpoint may "
                                 "carry through Ray")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path, name in files:
            with path.open("rb") as f:
                info = tarfile.TarInfo(name)
                info.size, info.mode = os.fstat(f.fileno()).st_size, 0o644
                archive.addfile(info, f)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> list[str]:
    """Swap each checkpoint folder in the archive into ``folder``, whole; returns their names.

    Only plain folders and files under the travelling names are accepted: the archive came over the network.
    """
    staging = folder / ".checkpoint-arriving"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tops: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                parts = PurePosixPath(member.name).parts
                if (not parts or parts[0] not in TRAVELLING or ".." in parts or member.name.startswith("/")
                        or not (member.isdir() or member.isfile())):
                    raise ValueError(f"unexpected entry in a checkpoint archive: {member.name!r}")
                tops.add(parts[0])
                target = staging.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None  # a regular file
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
        for name in sorted(tops):  # as save_checkpoint: the old one goes only once the new one is complete
            old = folder / (name + ".replaced")
            shutil.rmtree(old, ignore_errors=True)
            if (folder / name).exists():
                (folder / name).rename(old)
            (staging / name).rename(folder / name)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(tops)


class NodeLocalFolder:
    """A trial folder on a node that does not share the coordinator's: what arrived, and what changed since.

    Args:
        folder: the trial folder (the coordinator's path, created on this node).
        limit: the cap on an outgoing archive.
    """

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self._sent: tuple[int, int, int] | None = None

    @staticmethod
    def applies(folder: Path) -> bool:
        """Whether this node lacks the coordinator's trial folder: it does not exist here (the coordinator created
        it before submitting), or this node made it for an earlier attempt."""
        return not folder.is_dir() or (folder / NODE_LOCAL_MARK).exists()

    def receive(self, data: bytes | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / NODE_LOCAL_MARK).touch()
        if data:
            unpack(data, self.folder)
        self._sent = checkpoint_version(self.folder / CHECKPOINT)  # the coordinator has this one

    def changed(self) -> tuple[bytes | None, str | None]:
        """The trial's checkpoint if it changed since last sent: (archive, None); (None, why) when it is too large;
        (None, None) when there is nothing new."""
        version = checkpoint_version(self.folder / CHECKPOINT)
        if version is None or version == self._sent:
            return None, None
        self._sent = version
        try:
            return pack(self.folder, (CHECKPOINT,), self.limit), None
        except CheckpointTooLarge as e:
            return None, str(e)
        except OSError as e:  # the trial is replacing it right now, say: the next report tries again
            self._sent = None
            return None, f"it could not be packed ({e})"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"
