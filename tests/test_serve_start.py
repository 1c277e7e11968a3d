"""`talentbot serve` start-up (issue #12, item 8), as a user runs it: a real process on a real port.

The URL is printed only once the server answers; a port in use or an address that cannot be bound is a
one-line error with exit code 1 (port in use) or 2 (a bad setting), and no URL."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fixtures.helpers import free_port

pytestmark = pytest.mark.slow  # a fresh interpreter that imports Gradio per case

CLI = [sys.executable, "-c", "from talentbot.cli import main; main()", "serve"]
URL_LINE = "talentbot chat on"


def _serve(args: list[str], store: Path, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args, "--store", str(store)], text=True, env={**os.environ, **(env or {})}, **popen
    )


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert URL_LINE not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_port_in_use_is_a_one_line_error_with_exit_code_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*CLI, "--port", str(port), "--store", str(tmp_path / "s")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    line = _one_line_error(done)
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("bad..host", "is not an address"),  # refused before any name lookup: no network needed
        (
            "192.0.2.1",
            "127.0.0.1",
        ),  # a documentation address (TEST-NET-1): no interface of this machine has it
    ],
)
def test_an_address_that_cannot_be_bound_is_a_one_line_error_with_exit_code_2(tmp_path, host, says):
    auth = {"TALENTBOT_AUTH_USER": "admin", "TALENTBOT_AUTH_PASSWORD": "a-long-test-password"}  # off loopback
    done = subprocess.run(
        [*CLI, "--host", host, "--port", str(free_port()), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **auth},
    )
    assert done.returncode == 2, done.stderr
    line = _one_line_error(done)
    assert host in line
    assert says in line


def test_the_url_is_printed_once_the_server_answers_and_ctrl_c_stops_it(tmp_path):
    port = free_port()
    proc = _serve(["--port", str(port)], tmp_path / "s", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        url_line = None
        while url_line is None:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, f"serve exited ({proc.poll()}) without printing its URL"
            if URL_LINE in line:
                url_line = line
        # the moment the line is read, the server must answer: no retry, a short timeout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
            assert b"<html" in page.read(4096).lower()
        assert f"http://127.0.0.1:{port}/" in url_line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_launch_on_port_0_reports_the_port_it_got_and_frees_it_on_close(tmp_path, fake_embedder):
    from talentbot import TalentBot
    from talentbot.web import launch

    announced: list[str] = []
    srv = launch(TalentBot(store=tmp_path / "s", port=0), block=False, on_ready=announced.append)
    assert srv is not None
    try:
        port = int(srv.url.rstrip("/").rsplit(":", 1)[1])
        assert port > 0
        assert announced == [srv.url]
        with urllib.request.urlopen(srv.url, timeout=5) as page:
            assert page.status == 200
    finally:
        srv.close()
    with socket.socket() as again:  # closed: the port can be bound again
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
