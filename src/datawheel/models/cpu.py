"""What the CPU can run: its feature flags, and the llama.cpp build that suits them.

A native library compiled for instructions the CPU lacks (AVX-512 on a laptop, say) does
not raise an error: it kills the process with an illegal instruction. So datawheel builds
llama.cpp for the CPU it finds (``make llm`` asks this module for the CMake flags and keys
its wheel cache by them) and checks a build before loading it (see ``native.py``).

Run as a script it prints what the Makefile needs::

    $ python -m datawheel.models.cpu cmake-args
    -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON ... -DGGML_AMX_TILE=OFF ...
    $ python -m datawheel.models.cpu key
    x86_64-avx2-bmi2-f16c-fma-sse42
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

#: llama.cpp's CMake switches for x86 and the /proc/cpuinfo flags each one needs.
#: AVX512 turns on -mavx512f/cd/vl/dq/bw together, so it needs all five.
GGML_OPTIONS: dict[str, tuple[str, ...]] = {
    "SSE42": ("sse4_2",),
    "AVX": ("avx",),
    "AVX2": ("avx2",),
    "FMA": ("fma",),
    "F16C": ("f16c",),
    "BMI2": ("bmi2",),
    "AVX_VNNI": ("avx_vnni",),
    "AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
}
#: Always off: AMX builds crashed on the cloud VMs this was tried on (the hypervisor
#: reports AMX but the kernel does not grant the tile state), and the small GGUF models
#: datawheel runs gain nothing from it.
GGML_OFF = ("AMX_TILE", "AMX_INT8", "AMX_BF16")

#: Names in llama.cpp's system-info line -> the /proc/cpuinfo flags they need.
SYSTEM_INFO_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE3": ("pni",),
    "SSSE3": ("ssse3",),
    **GGML_OPTIONS,
    "AMX_INT8": ("amx_int8",),
}

#: The features worth naming in ``status`` (what decides the embedding and LLM runtimes).
REPORTED = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
)


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere or when unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def reported_features(flags: set[str] | None = None) -> list[str]:
    """The runtime-deciding features this CPU has, in a fixed order."""
    flags = cpu_flags() if flags is None else flags
    return [name for name in REPORTED if name in flags]


def ggml_options(flags: set[str]) -> list[str]:
    """The llama.cpp instruction-set switches this CPU supports, in GGML_OPTIONS order."""
    return [option for option, needs in GGML_OPTIONS.items() if set(needs) <= flags]


def cmake_args(flags: set[str]) -> str:
    """CMAKE_ARGS for a llama.cpp build that runs on a CPU with ``flags``.

    Every switch is explicit (GGML_NATIVE's -march=native also enables AMX where the
    hypervisor advertises it, which crashed): on for what the CPU has, off for the rest.
    """
    wanted = set(ggml_options(flags))
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-DGGML_{opt}={'ON' if opt in wanted else 'OFF'}" for opt in GGML_OPTIONS]
    args += [f"-DGGML_{opt}=OFF" for opt in GGML_OFF]
    return " ".join(args)


def build_key(flags: set[str]) -> str:
    """A short name for the instruction sets a build uses: the wheel cache's folder name."""
    options = sorted(option.lower() for option in ggml_options(flags))
    return "-".join([platform.machine() or "unknown", *options])


def missing_for(system_info: str, flags: set[str]) -> list[str]:
    """The features a llama.cpp build reports in ``system_info`` that this CPU lacks.

    ``system_info`` is ``llama_print_system_info()``: ``"CPU : SSE3 = 1 | AVX2 = 1 | ..."``.
    An empty ``flags`` (an unknown CPU) lacks nothing: there is nothing to compare.
    """
    if not flags:
        return []
    missing = []
    for part in system_info.replace("\n", "|").split("|"):
        name, _, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        needs = set(SYSTEM_INFO_FLAGS.get(name, ()))
        if value.strip() == "1" and needs and not needs <= flags:
            missing.append(name)
    return missing


def main(argv: list[str]) -> int:
    commands = {"cmake-args": cmake_args, "key": build_key}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m datawheel.models.cpu cmake-args|key", file=sys.stderr)
        return 2
    print(commands[argv[0]](cpu_flags()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
