"""Load on datawheel serve: N concurrent clients ask and vote against a real server on 127.0.0.1.

A fresh workspace gets the bundled demo knowledge base and one viewer per client (so no vote
replaces another's). A uvicorn server runs in its own process; each client loops: ask one of
the demo questions on ``/api/ask``, then vote on that answer on ``/api/feedback``. After the
server stops, the votes are counted in SQLite. Target: zero errors and every feedback the
server acknowledged is in the database.

Usage: python benchmarks/load.py [--json] [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import emit, percentile

WORKSPACE_ENV = "DATAWHEEL_LOAD_WORKSPACE"
RATE_LIMIT = "1000000/minute"  # measure the service, not the per-key limiter
SHOWN_ERRORS = 5


def app_factory() -> Any:
    """The server process's app (``uvicorn --factory load:app_factory``), as serve builds it.

    The scheduler stays off so no scheduled job lands inside the measured window.
    """
    from datawheel import Workspace
    from datawheel.server.app import create_app

    logging.basicConfig(level=logging.WARNING)
    return create_app(Workspace.open(os.environ[WORKSPACE_ENV]))


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"ask": [], "feedback": []})
    errors: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    feedback_sent: int = 0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())

    def fail(self, endpoint: str, message: str) -> None:
        self.errors[endpoint] += 1
        if len(self.messages) < SHOWN_ERRORS:
            self.messages.append(f"{endpoint}: {message}")


def prepare(root: Path, clients: int) -> tuple[list[str], list[str]]:
    """The workspace with the demo sample ingested; one API key per client, and the questions."""
    from datawheel import Workspace
    from datawheel.demo import SAMPLE_KB, SAMPLE_QUESTIONS, SAMPLE_TRAFFIC

    with Workspace.init(root) as ws:
        report = ws.ingest([SAMPLE_KB])
        keys = [ws.add_user(f"load{i:03d}") for i in range(clients)]
    config_path = root / "datawheel.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    config.setdefault("server", {})["rate_limit"] = RATE_LIMIT
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    questions = []
    for path in (SAMPLE_QUESTIONS, SAMPLE_TRAFFIC):
        lines = path.read_text(encoding="utf-8").splitlines()
        questions += [json.loads(line)["question"] for line in lines if line.strip()]
    print(f"workspace: {report.added} documents, {report.chunks_added} chunks, ", end="")
    print(f"{clients} users, {len(questions)} questions")
    return keys, questions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "load:app_factory",
        "--app-dir", str(Path(__file__).parent),
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, WORKSPACE_ENV: str(root)}
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(
    base: str, server: subprocess.Popen[bytes], log_path: Path, timeout: float = 120
) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if server.poll() is not None:
            log = log_path.read_text(encoding="utf-8", errors="replace")
            raise SystemExit(f"the server exited with code {server.returncode}:\n{log}")
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /api/health within {timeout:.0f} s")


async def call(
    http: httpx.AsyncClient, endpoint: str, body: dict[str, Any], tally: Tally
) -> dict[str, Any] | None:
    t0 = time.perf_counter()
    try:
        response = await http.post(f"/api/{endpoint}", json=body)
        data = response.json()
    except Exception as exc:  # a failed request is counted, never fatal
        tally.fail(endpoint, f"{type(exc).__name__}: {exc}")
        return None
    if not response.is_success:
        tally.fail(endpoint, f"HTTP {response.status_code}: {data}")
        return None
    tally.latencies[endpoint].append((time.perf_counter() - t0) * 1000)
    return data  # type: ignore[no-any-return]


async def client(
    n: int, base: str, key: str, questions: list[str], deadline: float, tally: Tally
) -> None:
    """Ask, then vote on that answer, until the deadline (a started pair is finished)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        turn = 0
        while time.perf_counter() < deadline:
            question = questions[(n * 7 + turn) % len(questions)]
            answer = await call(http, "ask", {"question": question}, tally)
            if answer is not None:
                vote = "down" if (n + turn) % 4 == 0 else "up"
                body = {"interaction_id": answer["id"], "vote": vote}
                if await call(http, "feedback", body, tally) is not None:
                    tally.feedback_sent += 1
            turn += 1


async def report_progress(tally: Tally, started: float, seconds: float) -> None:
    while True:
        await asyncio.sleep(5)
        elapsed = time.perf_counter() - started
        sys.stderr.write(
            f"  {elapsed:4.0f}/{seconds:.0f} s: {tally.requests} requests "
            f"({tally.requests / elapsed:.0f}/s), {sum(tally.errors.values())} errors\n"
        )


async def run_clients(
    base: str, keys: list[str], questions: list[str], seconds: float
) -> tuple[Tally, float]:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    progress = asyncio.create_task(report_progress(tally, started, seconds))
    await asyncio.gather(
        *(client(n, base, key, questions, deadline, tally) for n, key in enumerate(keys))
    )
    progress.cancel()
    return tally, time.perf_counter() - started


def stored_feedback(root: Path) -> int:
    """Distinct (interaction, user) votes in the store."""
    from sqlalchemy import create_engine, func, select

    from datawheel.config import Config
    from datawheel.store.schema import feedback

    engine = create_engine(Config.load(root / "datawheel.yaml").database_url(root))
    try:
        pairs = select(feedback.c.interaction_id, feedback.c.user).distinct().subquery()
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(pairs)).scalar_one())
    finally:
        engine.dispose()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of another one from /proc (Linux)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="datawheel-load-") as tmp:
        root = Path(tmp) / "ws"
        keys, questions = prepare(root, args.clients)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        server = start_server(root, port, log_path)
        try:
            ready = wait_healthy(base, server, log_path)
            print(f"server on {base} (pid {server.pid}) ready in {ready:.1f} s")
            before = cpu_seconds(), cpu_seconds(server.pid)
            tally, elapsed = asyncio.run(run_clients(base, keys, questions, args.seconds))
            cpu = {  # the clients and the server share the machine's cores
                "client_cpu_s": round(cpu_seconds() - before[0], 1),
                "server_cpu_s": round(cpu_seconds(server.pid) - before[1], 1),
            }
        finally:
            server.terminate()
            server.wait(timeout=60)
        server_log = log_path.read_text(encoding="utf-8", errors="replace")
        stored = stored_feedback(root)
    result = summarize(args, tally, elapsed, stored) | cpu
    print(
        f"cpu under load: clients {cpu['client_cpu_s']} s, server {cpu['server_cpu_s']} s "
        f"(of {os.cpu_count()} cores x {elapsed:.0f} s)"
    )
    errors = result["errors"]
    for message in tally.messages:
        print(f"  error {message}")
    if errors and server_log.strip():
        print("server log (last 40 lines):")
        print("\n".join(server_log.splitlines()[-40:]))
    met = errors == 0 and stored == tally.feedback_sent
    print(f"zero errors and every acknowledged vote stored: {met}")
    emit(result, args.json)


def summarize(args: argparse.Namespace, tally: Tally, elapsed: float, stored: int) -> dict:
    every = tally.latencies["ask"] + tally.latencies["feedback"]
    result: dict[str, Any] = {
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "errors": sum(tally.errors.values()),
        "feedback_sent": tally.feedback_sent,
        "feedback_stored": stored,
        "p50_ms": round(percentile(every, 50), 1),
        "p95_ms": round(percentile(every, 95), 1),
        "requests_per_s": round(tally.requests / elapsed, 1),
        "errors_by_endpoint": dict(tally.errors),
    }
    print(
        f"{args.clients} clients for {elapsed:.1f} s: {result['requests']} requests "
        f"({result['requests_per_s']}/s), {result['errors']} errors"
    )
    for endpoint, values in tally.latencies.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        result[f"{endpoint}_p50_ms"] = round(p50, 1)
        result[f"{endpoint}_p95_ms"] = round(p95, 1)
        print(f"  /api/{endpoint}: {len(values)} ok, p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"  all: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
    print(f"feedback: {tally.feedback_sent} acknowledged, {stored} stored")
    return result


if __name__ == "__main__":
    main()
