"""Try a native backend in a child process before loading it in ours.

A llama.cpp library built for instructions this CPU lacks kills the process that loads it
with SIGILL: no exception, no message, the server or test run simply dies. So before the
first load, a child Python imports llama_cpp, reports the instruction sets the library was
built with, loads the model and generates a token. The verdict is cached per (library
files, model file, CPU), so the check costs about a second once per machine.

Example:
    >>> check = check_llama(Path("model.gguf"))
    >>> check.ok, check.reason
    (False, 'the llama.cpp library was built for AVX512, which this CPU lacks')
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from datawheel.models.cpu import build_key, cpu_flags, missing_for

log = logging.getLogger(__name__)

#: Run in the child: print the build's system info before anything that could crash.
_PROBE = """
import sys
import llama_cpp
print("SYSTEM_INFO " + llama_cpp.llama_print_system_info().decode().replace("\\n", " "),
      flush=True)
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=128, n_threads=1, verbose=False)
llm("Hello", max_tokens=2)
print("GENERATED", flush=True)
"""
_TIMEOUT_S = 300.0
REBUILD_HINT = (
    "rebuild it for this CPU with `make llm` in a datawheel checkout (it derives the build "
    "flags from this CPU), or use generation.provider extractive"
)


@dataclass(frozen=True)
class NativeCheck:
    """Whether a native backend runs here; ``reason`` says why not."""

    ok: bool
    reason: str = ""
    system_info: str = ""


def check_llama(model: Path, cache_dir: Path | None = None) -> NativeCheck:
    """Whether llama.cpp loads ``model`` and generates on this CPU (cached verdict)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return NativeCheck(False, "llama-cpp-python is not installed")
    flags = cpu_flags()
    key = _cache_key(Path(spec.submodule_search_locations[0]), model, flags)
    cache = _cache_file(cache_dir)
    verdicts = _read(cache)
    if key in verdicts:
        return NativeCheck(**verdicts[key])
    log.info("checking that llama.cpp runs on this CPU (once)")
    check = _probe(model, flags)
    verdicts[key] = asdict(check)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(verdicts, indent=1), encoding="utf-8")
    except OSError as exc:  # a read-only cache only costs a re-check next time
        log.debug("could not cache the llama.cpp check: %s", exc)
    return check


def _probe(model: Path, flags: set[str]) -> NativeCheck:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(model)],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return NativeCheck(False, f"llama.cpp did not load {model.name} within {_TIMEOUT_S:g} s")
    info = next(
        (
            ln.removeprefix("SYSTEM_INFO ")
            for ln in done.stdout.splitlines()
            if ln.startswith("SYSTEM_INFO ")
        ),
        "",
    )
    missing = missing_for(info, flags)
    if missing:
        return NativeCheck(
            False,
            f"the llama.cpp library was built for {', '.join(missing)}, which this CPU lacks",
            info,
        )
    if done.returncode == -signal.SIGILL:
        return NativeCheck(
            False, "llama.cpp stopped on an illegal instruction (built for another CPU)", info
        )
    if done.returncode != 0 or "GENERATED" not in done.stdout:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return NativeCheck(False, f"llama.cpp could not run {model.name}: {last[:300]}", info)
    return NativeCheck(True, "", info)


def _cache_key(package: Path, model: Path, flags: set[str]) -> str:
    """Changes when the library files, the model file or the CPU change."""
    parts = [build_key(flags), str(model.resolve())]
    stat = model.stat()
    parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    for lib in sorted(package.rglob("*.so*")) + sorted(package.rglob("*.dylib")):
        lib_stat = lib.stat()
        parts.append(f"{lib}:{lib_stat.st_size}:{lib_stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _cache_file(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        from datawheel.models.embedder import default_cache_dir

        cache_dir = default_cache_dir()
    return cache_dir / "native-checks.json"


def _read(cache: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
