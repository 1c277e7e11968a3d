"""Shared helpers of the reliability scripts: paths, a corpus store, a chat server subprocess,
raw HTTP, and the RELIABILITY.md section writer.

Scratch data goes to benchmarks/out/reliability/ (git-ignored). Nothing here talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "out" / "reliability"
CORPUS = ROOT / "corpus"
EVAL = [ROOT / "eval" / "qa_regulations.jsonl", ROOT / "eval" / "qa_shanxi.jsonl"]
REPORT = ROOT / "RELIABILITY.md"
PY = sys.executable
TALENTBOT = str(Path(sys.executable).with_name("talentbot"))
ALL = "（全部）"


def env() -> dict[str, str]:
    """Child environment: offline models, no telemetry, no TALENTBOT_* from the caller's shell."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TALENTBOT_")}
    e.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        ANONYMIZED_TELEMETRY="False",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    return e


def setup_env() -> None:
    for k, v in env().items():
        os.environ.setdefault(k, v)
    for k in [k for k in os.environ if k.startswith("TALENTBOT_")]:
        del os.environ[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions() -> list[dict]:
    rows = []
    for f in EVAL:
        rows += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def copy_corpus(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(CORPUS, dest)
    return dest


def corpus_store(name: str = "store", corpus: Path | None = None) -> tuple[Path, Path]:
    """(corpus copy, store) under OUT/<name>: the real corpus ingested (incrementally reused)."""
    base = OUT / name
    corpus = corpus or base / "corpus"
    if not corpus.exists():
        copy_corpus(corpus)
    store = base / "vectorstore"
    done = subprocess.run(
        [TALENTBOT, "ingest", str(corpus), "--store", str(store), "--json"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    return corpus, store


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def commit() -> str:
    """The commit that produced the figures (``git rev-parse --short HEAD``), marked when the sources differ."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node() or 'host'}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) when the run ended, "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, commit {commit()}"
    )


# ------------------------------------------------------------------------------------ chat server
SERVE = r"""
import json, os, sys, time
from talentbot import TalentBot
from talentbot.web import launch
store, corpus, port, conc, maxq, delay, upload, upload_mb, extra = sys.argv[1:10]
bot = TalentBot(store=store, corpus=corpus, port=int(port), concurrency=int(conc), max_queue=int(maxq),
                allow_upload=upload == "1", max_upload_mb=float(upload_mb), **json.loads(extra))
if float(delay):
    real = bot.stream
    def slow(question, *a, **kw):  # stands in for a slow LLM endpoint
        time.sleep(float(delay))
        yield from real(question, *a, **kw)
    bot.stream = slow
bot.ask("人才公寓有哪些支持方式？")  # warm: store, index, model
srv = launch(bot, block=False)
print("READY", srv.url, os.getpid(), flush=True)
sys.stdin.read()
srv.close()
"""


class Server:
    """`talentbot.web.launch(TalentBot(...), block=False)` in a child process, on a free loopback port."""

    def __init__(
        self,
        store: Path,
        corpus: Path,
        concurrency: int = 4,
        max_queue: int = 64,
        delay: float = 0.0,
        allow_upload: bool = False,
        max_upload_mb: float = 10.0,
        log: Path | None = None,
        settings: dict | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``settings``: more TalentBot settings (JSON values); ``extra_env``: more environment variables."""
        self.port = free_port()
        self.log_path = log or OUT / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in close()
        args = [
            str(store),
            str(corpus),
            str(self.port),
            str(concurrency),
            str(max_queue),
            str(delay),
            "1" if allow_upload else "0",
            str(max_upload_mb),
            json.dumps(settings or {}),
        ]
        self.proc = subprocess.Popen(
            [PY, "-c", SERVE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**env(), **(extra_env or {})},
            cwd=str(OUT),
        )
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY") or not line and self.proc.poll() is not None:
                break
        if not line.startswith("READY"):
            self.close()
            raise SystemExit(f"server did not start: {self.log_path.read_text()[-3000:]}")
        _, self.url, pid = line.split()
        self.pid = int(pid)

    def _status_mb(self, field: str) -> float:
        """A memory figure (``VmRSS``, ``VmHWM``) of the server process from /proc, in MB."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith(f"{field}:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def rss_mb(self) -> float:
        return self._status_mb("VmRSS")

    def cpu_seconds(self, children: bool = False) -> float:
        """User + system CPU time the server process has used so far (plus its reaped children's: the parser
        worker's, with ``children``)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
            return ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def hwm_mb(self) -> float:
        return self._status_mb("VmHWM")

    def log_lines(self) -> int:
        """Lines the server has written to its log (stderr) so far."""
        self._log.flush()
        try:
            return len(self.log_path.read_bytes().splitlines())
        except OSError:
            return 0

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=20)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _hwm_mb(pid: int) -> float:
    """VmHWM (peak RSS) of process ``pid`` in MB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmHWM:")), 0.0)
    except (OSError, ValueError):
        return 0.0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [
                int(c)
                for t in os.listdir(f"/proc/{p}/task")
                for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()
            ]
        except (OSError, ValueError):
            kids = []
        out += kids
        todo += kids
    return out


def run_measured(
    cmd: list[str], timeout: float = 600, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str, float, tuple[float, float], float]:
    """Run ``cmd``: (exit code, stdout, stderr, seconds, (peak RSS MB, children's peak RSS MB), CPU seconds).

    Peak RSS is the VmHWM of the process, and the largest of each process it starts (a parser worker), read from
    /proc every 50 ms (``ru_maxrss`` would not do: Linux carries the parent's peak across fork and exec).
    CPU covers the process and the children it reaped. A run over ``timeout`` is killed (exit code -9)."""
    import threading

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env={**env(), **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    streams: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: streams.__setitem__(k, f.read()), daemon=True)
        for k, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    peaks: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for pid in [proc.pid, *_descendants(proc.pid)]:
                peaks[pid] = max(peaks.get(pid, 0.0), _hwm_mb(pid))
            done.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    for t in [*readers, watcher]:
        t.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
        done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in [*readers, watcher]:
        t.join(10)
    return (
        proc.returncode,
        streams.get("out", ""),
        streams.get("err", ""),
        time.perf_counter() - t0,
        (peaks.get(proc.pid, 0.0), max((v for k, v in peaks.items() if k != proc.pid), default=0.0)),
        usage.ru_utime + usage.ru_stime,
    )


def raw_request(
    url: str,
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes | None = None,
    timeout: float = 20,
) -> tuple[int, dict, bytes]:
    """One HTTP request with ``path`` sent exactly as written (no normalisation of '..' or %2e)."""
    m = re.match(r"http://([^:/]+):(\d+)", url)
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=timeout)
    try:
        conn.putrequest(
            method, path, skip_host=bool(headers and "Host" in headers), skip_accept_encoding=True
        )
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# ----------------------------------------------------------------------------------- the report
HEADER = """# Reliability and security checks

Each section below is written by a script in `benchmarks/reliability/` (not part of `pytest`); rerun the
script to refresh its figures. Each section says when it was last run; sections run since issue #16 also
name the commit that produced their figures (`git rev-parse --short HEAD`, marked when `src/` had
uncommitted changes). The pytest side of the
same checks is `tests/test_faults.py`, `tests/test_chroma_server.py`, `tests/test_recovery.py`,
`tests/test_web.py`, `tests/test_web_security.py`, `tests/test_bombs.py`, `tests/test_ingest_skips.py`,
`tests/test_index_integrity.py`, `tests/test_injection.py`, `tests/test_figures.py`, `tests/test_llm.py` and
`tests/test_cli_ingest.py`. Scratch data goes to `benchmarks/out/reliability/` (git-ignored); everything talks
to 127.0.0.1 only.

"""


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- name -->`` markers in RELIABILITY.md."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else HEADER
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip() + "\n\n" + block
    REPORT.write_text(text, encoding="utf-8")
    print(f"updated section '{name}' of {REPORT}")


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
