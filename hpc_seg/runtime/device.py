"""Which device a model runs on, and the mixed precision used there (both studies).

Mixed precision is bf16 autocast wherever the hardware computes bf16 natively: CUDA GPUs that
support it, and CPUs with AMX or AVX-512 BF16 units. Elsewhere it is fp32, because bf16 without
those units is emulated and slower than fp32 (measured 0.5x on an AVX-512 CPU without them, 2.1x
faster on one with AMX). The CPU decision is made at run time from what the CPU reports, logged
once, and can be overridden with ``HPC_SEG_CPU_BF16=on|off`` (benchmarks, or a CPU that reports
its units wrongly). Losses and metrics cast logits to float32 themselves and optimiser state
stays float32: autocast only changes the dtype of matmuls and convolutions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from hpc_seg.errors import ConfigError, InputError

log = logging.getLogger(__name__)

CPU_BF16_ENV = "HPC_SEG_CPU_BF16"


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> the first GPU when there is one, else CPU; a named GPU must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


@dataclass(frozen=True)
class CpuFeatures:
    """What this CPU can do for mixed precision, as the CPU and torch report it."""

    model: str
    """the CPU's model name (``/proc/cpuinfo``)"""
    capability: str
    """torch's vector ISA level (``torch.backends.cpu.get_cpu_capability()``: AVX2, AVX512...)"""
    avx512_bf16: bool
    amx_bf16: bool

    @property
    def native_bf16(self) -> bool:
        return self.avx512_bf16 or self.amx_bf16

    def describe(self) -> str:
        units = [name for name, has in (("AMX", self.amx_bf16), ("AVX-512 BF16", self.avx512_bf16))
                 if has]
        found = " + ".join(units) if units else "no bf16 units (AMX, AVX-512 BF16 absent)"
        return f"{self.model} ({self.capability}; {found})"


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The first CPU's model name and feature flags; empty where /proc is absent (not Linux)."""
    model, flags = "", set()
    try:
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not model:
                model = value
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or "unknown CPU", flags


@cache
def detect_cpu_features() -> CpuFeatures:
    """This machine's CPU features (cached: the CPU does not change while a process runs).

    torch's own probes (the ones oneDNN dispatches on) decide; ``/proc/cpuinfo`` flags count too,
    so a torch build without the probes still finds the units.
    """
    model, flags = _cpuinfo()
    probe = getattr(torch, "cpu", None)

    def has(fn: str) -> bool:
        f = getattr(probe, fn, None)
        try:
            return bool(f()) if f else False
        except Exception:  # a probe that fails is a CPU without the feature, never a crash
            return False

    return CpuFeatures(model=model, capability=torch.backends.cpu.get_cpu_capability(),
                       avx512_bf16=has("_is_avx512_bf16_supported") or "avx512_bf16" in flags,
                       amx_bf16=has("_is_amx_tile_supported") or "amx_bf16" in flags)


def cpu_bf16_override(environ: dict[str, str] | None = None) -> bool | None:
    """``HPC_SEG_CPU_BF16``: ``on`` forces bf16 on CPU, ``off`` forces fp32, unset = detect."""
    raw = (os.environ if environ is None else environ).get(CPU_BF16_ENV, "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{CPU_BF16_ENV}={raw!r}: use on, off or auto")


def amp_dtype(device: torch.device, enabled: bool, cpu: CpuFeatures | None = None,
              environ: dict[str, str] | None = None) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 where it is native and ``enabled``, else None (fp32).

    ``cpu`` and ``environ`` are injectable (tests); by default this machine's CPU and environment.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type != "cpu":
        return None
    forced = cpu_bf16_override(environ)
    features = cpu or detect_cpu_features()
    use = features.native_bf16 if forced is None else forced
    _log_cpu_choice(features, use, forced)
    return torch.bfloat16 if use else None


@cache
def _log_cpu_choice(features: CpuFeatures, use: bool, forced: bool | None) -> None:
    # Once per process and decision: every training step asks, the log should say it once.
    why = f"{CPU_BF16_ENV}={'on' if forced else 'off'}" if forced is not None else "detected"
    log.info("CPU mixed precision: %s on %s (%s)", "bf16 autocast" if use else "fp32",
             features.describe(), why)


def autocast(device: torch.device, enabled: bool, cpu: CpuFeatures | None = None,
             ) -> contextlib.AbstractContextManager:
    """bf16 autocast where :func:`amp_dtype` says so, else a no-op (fp32)."""
    dtype = amp_dtype(device, enabled, cpu)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def use_channels_last(device: torch.device, enabled: bool) -> bool:
    """channels_last memory for 2D convolutions: on every device when ``enabled``.

    On CPU oneDNN's convolutions run in NHWC natively (no reorder per layer); measured with
    ``hpc-seg bench train`` (README, Performance).
    """
    return enabled and device.type in ("cuda", "cpu")
