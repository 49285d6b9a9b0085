"""Which floating-point precision the slice networks train in, by the CPU's abilities.

bf16 autocast is 2-6x faster than float32 on CPUs with native bf16 (x86 AVX-512-BF16 or
AMX, Arm's BF16 extension) and about 8x slower where it is emulated (measured:
``benchmarks/slices_experiment.py --part precision``). ``"auto"`` picks bf16 only where
it is native. No torch import: a config can be made without loading torch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "cpu_native_bf16", "resolve_precision"]

PRECISIONS = ("bf16", "fp32")
#: CPU flags of native bf16 arithmetic: x86 AVX-512-BF16 and AMX, Arm's BF16 extension.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bf16 natively (so bf16 autocast is faster than float32).

    ``torch.backends.cpu.get_cpu_capability()`` names the vector ISA ("AVX512") but not
    its bf16 extension, so the CPU's flags are read: ``flags`` (x86) or ``Features``
    (Arm) lines of ``/proc/cpuinfo`` holding one of :data:`BF16_CPU_FLAGS`.

    Parameters
    ----------
    cpuinfo : str, optional
        Text in the format of ``/proc/cpuinfo``; default that file (False where it
        cannot be read, e.g. on macOS or Windows).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & BF16_CPU_FLAGS)


def resolve_precision(precision: str, native_bf16: bool | None = None) -> tuple[str, str]:
    """The precision to train with, and why.

    Parameters
    ----------
    precision : str
        ``"auto"``, ``"bf16"`` or ``"fp32"``; ``"auto"`` means ``"bf16"`` on a CPU with
        native bf16, else ``"fp32"``.
    native_bf16 : bool, optional
        Whether the CPU has native bf16; default :func:`cpu_native_bf16`.

    Returns
    -------
    (precision, reason) : ``"bf16"`` or ``"fp32"``, and one line for the report
    """
    if precision in PRECISIONS:
        return precision, f"{precision} as requested"
    if precision != "auto":
        raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}, got {precision!r}")
    if native_bf16 is None:
        native_bf16 = cpu_native_bf16()
    if native_bf16:
        return "bf16", "auto: the CPU has native bf16 (avx512_bf16, amx_bf16 or bf16 flag)"
    return "fp32", "auto: the CPU has no native bf16 (bf16 autocast would be emulated, ~8x slower)"
