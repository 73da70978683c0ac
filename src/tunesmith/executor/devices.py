"""Local GPUs for the process executor: which devices each worker slot owns (``executor.gpus``, ``gpu_per_trial``).

A worker process keeps its devices for life, so a trial function that initialised CUDA in an earlier trial is
still on the right device: the assignment is per worker slot, written into the worker's ``CUDA_VISIBLE_DEVICES``
when it starts (and inherited by a command trial's process). A worker replaced after a crash takes over its
predecessor's devices. Slots never share a GPU unless ``gpu_per_trial`` is a fraction: 0.5 puts two slots on each
GPU, 2 gives each slot two whole GPUs.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache

from tunesmith.errors import UserInputError

GpuSlot = tuple[int, ...]


def gpu_slots(gpus: list[int], per_trial: float, workers: int) -> list[GpuSlot]:
    """The devices of each of ``workers`` slots.

    Raises:
        UserInputError: the GPUs do not make ``workers`` slots of ``per_trial`` GPUs each.
    """
    if per_trial >= 1:
        width = int(per_trial)
        slots = [tuple(gpus[i:i + width]) for i in range(0, len(gpus) - width + 1, width)]
    else:
        # Round robin: each GPU takes one slot before any takes a second, so few workers spread over all GPUs.
        slots = [(g,) for _ in range(int(1 / per_trial + 1e-9)) for g in gpus]
    if workers > len(slots):
        raise UserInputError(f"executor.workers is {workers}, but executor.gpus {gpus} with gpu_per_trial {per_trial} "
                             f"make only {len(slots)} trial slot(s); lower workers, or add GPUs, or ask for a fraction "
                             "(gpu_per_trial: 0.5 shares each GPU between two trials)")
    return slots[:workers]


def worker_slots(gpus: list[int] | str | None, per_trial: float, workers: int) -> list[GpuSlot]:
    """The devices of each worker slot, from ``executor.gpus`` as given (None: no assignment, ``"all"``, or a list).

    Checked the same way whether a run starts or ``tunesmith validate`` asks, so a spec that validates starts.

    Raises:
        UserInputError: the devices are not there, or do not make ``workers`` slots.
    """
    if gpus is None:
        return [()] * workers
    if isinstance(gpus, str):
        return gpu_slots(visible_gpus(), per_trial, workers)
    check_listed_gpus(gpus)
    return gpu_slots(gpus, per_trial, workers)


def visible_gpus() -> list[int]:
    """The GPUs ``gpus: all`` takes, as the indices CUDA_VISIBLE_DEVICES takes.

    When the coordinator itself was started with CUDA_VISIBLE_DEVICES (a batch scheduler's allocation, a container
    runtime), those devices and no others: a trial's own CUDA_VISIBLE_DEVICES replaces the inherited one, so
    handing it any other index would reach a GPU outside the allocation. Otherwise every NVIDIA GPU of the machine.

    Raises:
        UserInputError: none found, or the inherited variable names devices other than by index.
    """
    allotted = allotted_gpus()
    if allotted is not None:
        if not allotted:
            raise UserInputError("executor.gpus is all, but this process was started with CUDA_VISIBLE_DEVICES set "
                                 "to no device; unset it, or list the devices (gpus: [0, 1]), or remove gpus")
        return allotted
    found = machine_gpus()
    if not found:
        raise UserInputError("executor.gpus is all, but this machine shows no NVIDIA GPU (no /proc/driver/nvidia, no "
                             "nvidia-smi); list the devices (gpus: [0, 1]) or remove gpus")
    return found


def check_listed_gpus(gpus: list[int]) -> None:
    """Refuse devices this coordinator cannot hand out: outside its inherited CUDA_VISIBLE_DEVICES, or absent.

    A machine that shows no NVIDIA GPU at all (no driver) is not checked: the list is taken as given, so that the
    assignment can be prepared, and tested, where the GPUs are not.

    Raises:
        UserInputError: a listed device is not among those available.
    """
    allotted = allotted_gpus()
    available = allotted if allotted is not None else machine_gpus()
    if allotted is None and not available:
        return
    missing = [g for g in gpus if g not in available]
    if missing:
        where = (f"this process was started with CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}"
                 if allotted is not None else f"this machine has GPU(s) {available}")
        raise UserInputError(f"executor.gpus lists GPU(s) {missing}, but {where}; list only those, or use gpus: all")


@cache
def machine_gpus() -> list[int]:
    """Every NVIDIA GPU this machine shows, by index; empty where there is no driver. Read once per process: a run
    asks it for its warnings, its check and its start, and without /proc/driver/nvidia each read runs nvidia-smi."""
    try:
        return sorted(range(len(os.listdir("/proc/driver/nvidia/gpus"))))
    except OSError:
        pass
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(m) for m in re.findall(r"^GPU (\d+):", listing, re.MULTILINE)]


def allotted_gpus() -> list[int] | None:
    """The indices in this process's own CUDA_VISIBLE_DEVICES; None when it is unset.

    CUDA reads the list up to its first invalid entry, and an empty list or -1 hides every device; both are
    followed here.

    Raises:
        UserInputError: the devices are named by UUID (GPU-..., MIG-...), which a per-trial index cannot name.
    """
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    indices: list[int] = []
    for entry in (e.strip() for e in value.split(",")):
        if entry.upper().startswith(("GPU-", "MIG-")):
            raise UserInputError(f"CUDA_VISIBLE_DEVICES={value} names devices by UUID, but executor.gpus hands them "
                                 "out by index; set CUDA_VISIBLE_DEVICES to indices (0,1) or unset it")
        if not entry.isdigit():
            break
        indices.append(int(entry))
    return indices


def slot_env(slot: GpuSlot) -> dict[str, str]:
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in slot)}


GPU_SHARE_METRIC = "gpu_share"
GPU_DEVICE_METRIC = re.compile(r"gpu_device_\d+")


def slot_metrics(slot: GpuSlot, per_trial: float) -> dict[str, float]:
    """What a trial records about its devices: ``gpu_device_0`` (``_1``, ...) and, when shared, ``gpu_share``."""
    metrics = {f"gpu_device_{i}": float(g) for i, g in enumerate(slot)}
    if per_trial < 1:
        metrics[GPU_SHARE_METRIC] = per_trial
    return metrics


def is_slot_metric(metric: str) -> bool:
    """Whether ``metric`` is one :func:`slot_metrics` records."""
    return metric == GPU_SHARE_METRIC or GPU_DEVICE_METRIC.fullmatch(metric) is not None
