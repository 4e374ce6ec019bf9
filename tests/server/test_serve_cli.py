"""`datawheel serve` as a user runs it: a subprocess on 127.0.0.1, docs, a key, a clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _kb import bearer, free_port


def test_serve_answers_with_a_key_made_by_the_cli(grouped_kb: Path, tmp_path: Path) -> None:
    path = tmp_path / "kb"
    shutil.copytree(grouped_kb, path)
    cli = [sys.executable, "-m", "datawheel.cli.main"]
    made = subprocess.run(
        [*cli, "users", "add", "ops", "--role", "admin", "--groups", "*", "-w", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    key = next(w for w in made.stdout.split() if w.startswith("dw_"))
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "-w", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.2)
        else:
            raise AssertionError("datawheel serve did not come up")
        assert "swagger" in httpx.get(f"{url}/docs").text.lower()
        schema = httpx.get(f"{url}/openapi.json").json()
        assert {"/api/ask", "/api/feedback", "/v1/chat/completions"} <= set(schema["paths"])
        answer = httpx.post(
            f"{url}/api/ask",
            json={"question": "How long do free trials last?"},
            headers=bearer(key),
            timeout=30,
        ).json()
        assert "14 days" in answer["text"]
        jobs = httpx.get(f"{url}/api/jobs", headers=bearer(key)).json()["scheduled"]
        assert {j["job"] for j in jobs} == {"monitor", "report", "improve", "ab"}
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "Application shutdown complete" in output


def test_a_port_in_use_is_refused_before_anything_loads(tmp_path: Path) -> None:
    import socket

    from datawheel.workspace import Workspace

    Workspace.init(tmp_path / "kb").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "datawheel.cli.main", "serve", "--port", str(port)]
            + ["-w", str(tmp_path / "kb")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert f"cannot listen on 127.0.0.1:{port}" in said and "pick another with --port" in said
    assert "Application startup" not in said  # refused before the app was built
