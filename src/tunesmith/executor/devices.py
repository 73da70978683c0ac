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


def visible_gpus() -> list[int]:
    """This machine's NVIDIA GPUs (``gpus: all``), as the indices CUDA_VISIBLE_DEVICES takes.

    Raises:
        UserInputError: none found.
    """
    found: list[int] = []
    try:
        found = sorted(range(len(os.listdir("/proc/driver/nvidia/gpus"))))
    except OSError:
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
            found = [int(m) for m in re.findall(r"^GPU (\d+):", listing, re.MULTILINE)]
        except (OSError, subprocess.SubprocessError):
            pass
    if not found:
        raise UserInputError("executor.gpus is all, but this machine shows no NVIDIA GPU (no /proc/driver/nvidia, no "
                             "nvidia-smi); list the devices (gpus: [0, 1]) or remove gpus")
    return found


def slot_env(slot: GpuSlot) -> dict[str, str]:
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in slot)}


def slot_metrics(slot: GpuSlot, per_trial: float) -> dict[str, float]:
    """What a trial records about its devices: ``gpu_device_0`` (``_1``, ...) and, when shared, ``gpu_share``."""
    metrics = {f"gpu_device_{i}": float(g) for i, g in enumerate(slot)}
    if per_trial < 1:
        metrics["gpu_share"] = per_trial
    return metrics
