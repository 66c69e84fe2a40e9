"""The newcomer's path: `feedback-api serve` with no database configured starts an
embedded PostgreSQL, migrates it, creates the default tenant and serves."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

KEY = re.compile(r"fbk_sk_[A-Za-z0-9_-]{20,}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env["FEEDBACK_DATA_DIR"] = str(data_dir)
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedback_api", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"serve did not become ready:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_serve_on_embedded_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    proc, base = _serve(data_dir, log)
    try:
        keys = KEY.findall(log.read_text())
        assert len(set(keys)) == 1, log.read_text()
        headers = {"Authorization": f"Bearer {keys[0]}"}
        created = httpx.post(
            f"{base}/v1/responses",
            json={"kind": "nps", "score": 10, "channel": "web"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/v1/tenant", headers=headers).json()["slug"] == "default"
        assert "worker_started" in log.read_text()  # the embedded default runs a worker
    finally:
        _stop(proc)
    assert proc.returncode == 0

    # A restart keeps the data and does not mint another admin key.
    proc, base = _serve(data_dir, log)
    try:
        assert len(set(KEY.findall(log.read_text()))) == 1
        listed = httpx.get(f"{base}/v1/responses", headers=headers)
        assert len(listed.json()["items"]) == 1
    finally:
        _stop(proc)
