"""Start-up: how long a newcomer waits for the CLI and the service, cold processes each time.

On the demo's sample knowledge base (ingested into a scratch workspace first), the median
of --runs fresh processes for:

- ``help_s``: ``datawheel --help``;
- ``status_s``: ``datawheel status -w WS``;
- ``ask_s``: ``datawheel ask "..." -w WS`` (loads the embedding model, answers, exits);
- ``serve_ready_s``: ``datawheel serve`` until ``GET /api/health`` answers 200.

Targets (issue 20, 2 cores): help_s <= 0.4, status_s <= 0.8, ask_s <= 1.5,
serve_ready_s <= 5.

Usage: python benchmarks/startup.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import emit

EXE = Path(sys.executable).parent / "datawheel"
TARGETS = {"help_s": 0.4, "status_s": 0.8, "ask_s": 1.5, "serve_ready_s": 5.0}


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=os.environ.copy())
    return time.perf_counter() - started


def serve_ready(workspace: Path, timeout: float = 120.0) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(EXE), "serve", "--port", str(port), "-w", str(workspace)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"datawheel serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"datawheel serve gave no /api/health in {timeout:.0f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from datawheel import Workspace
    from datawheel.demo import SAMPLE_KB

    with tempfile.TemporaryDirectory(prefix="datawheel-startup-") as tmp:
        ws_path = Path(tmp) / "kb"
        with Workspace.init(ws_path) as ws:
            ws.ingest([SAMPLE_KB])
        ws_arg = ["-w", str(ws_path)]
        timed([str(EXE), "ask", "gift card expiration", *ws_arg])  # model export cached once
        runs: dict[str, list[float]] = {k: [] for k in TARGETS}
        for _ in range(args.runs):
            runs["help_s"].append(timed([str(EXE), "--help"]))
            runs["status_s"].append(timed([str(EXE), "status", *ws_arg]))
            runs["ask_s"].append(timed([str(EXE), "ask", "how long is the return window", *ws_arg]))
            runs["serve_ready_s"].append(serve_ready(ws_path))
    result: dict[str, object] = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    for key, target in TARGETS.items():
        value = float(result[key])  # type: ignore[arg-type]
        mark = "ok" if value <= target else "over"
        print(f"{key:14} median {value:6.2f} s of {args.runs} (target <= {target:g}: {mark})")
    result["runs"] = args.runs
    emit(result, args.json)


if __name__ == "__main__":
    main()
