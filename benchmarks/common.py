"""Shared helpers: paths, environment, stage profiler, percentiles, RSS, worker processes."""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
OUT = BENCH / "out"
RUN_PY = BENCH / "run.py"
BIN = Path(sys.executable).parent
QA_FILES = [ROOT / "eval" / "qa_regulations.jsonl", ROOT / "eval" / "qa_shanxi.jsonl"]


EXTRA_ENV: dict[str, str] = {}  # settings a comparison run gives every child (run.py bench_models)


def bench_env(device: str | None = None) -> dict[str, str]:
    """The environment of every child process: offline models, default talentbot settings (plus EXTRA_ENV)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALENTBOT_")}
    env.update(EXTRA_ENV)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        ANONYMIZED_TELEMETRY="False",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if device:
        env["TALENTBOT_DEVICE"] = device
    return env


def compile_product() -> None:
    """Write talentbot's bytecode, as an installed package has it: the children run with PYTHONDONTWRITEBYTECODE,
    so a module edited since its bytecode was last written would be compiled again by every timed start."""
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "talentbot"), quiet=1)


def setup_worker_env() -> None:
    for k, v in bench_env().items():
        if k not in os.environ or k.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_")):
            os.environ[k] = v


# ------------------------------------------------------------------------------------- statistics
def pct(values: Iterable[float], q: float) -> float:
    v = list(values)
    return float(np.percentile(v, q)) if v else float("nan")


def ms_summary(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/mean/min/max in milliseconds."""
    v = [s * 1000 for s in seconds]
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "p50": round(pct(v, 50), 3),
        "p95": round(pct(v, 95), 3),
        "mean": round(float(np.mean(v)), 3),
        "min": round(min(v), 3),
        "max": round(max(v), 3),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


# --------------------------------------------------------------------------------------- profiler
_MISSING = object()


OVERLAPPED = " (2nd thread, overlapped)"


class Profiler:
    """Exclusive wall time per named stage, by wrapping functions (nested stages are not double counted)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()  # one stack per thread: a worker's stages never nest in the main's
        self._undo: list[tuple[object, str, object]] = []

    @property
    def _stack(self) -> list[float]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _enter(self) -> float:
        self._stack.append(0.0)
        return time.perf_counter()

    def _exit(self, stage: str, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        stack = self._stack
        child = stack.pop()
        if threading.current_thread() is not threading.main_thread():
            stage += OVERLAPPED  # ran beside the main thread: not part of the sequential split
        self.seconds[stage] += elapsed - child
        self.calls[stage] += 1
        if stack:
            stack[-1] += elapsed

    def wrap(self, stage: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = self._enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit(stage, t0)

        return timed

    def wrap_gen(self, stage: str, fn: Callable) -> Callable:
        """For generator functions: each step of the generator is timed."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            it = iter(fn(*args, **kwargs))
            while True:
                t0 = self._enter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self._exit(stage, t0)
                yield item

        return timed

    def patch(self, owner: object, name: str, stage: str, generator: bool = False) -> bool:
        """Replace ``owner.name`` by a timed wrapper; False when it does not exist (the code moved)."""
        fn = getattr(owner, name, None)
        if fn is None or not callable(fn):
            return False
        own = getattr(owner, "__dict__", {})
        self._undo.append((owner, name, own.get(name, _MISSING)))
        setattr(owner, name, (self.wrap_gen if generator else self.wrap)(stage, fn))
        return True

    def restore(self) -> None:
        for owner, name, fn in reversed(self._undo):
            if fn is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, fn)
        self._undo.clear()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def result(self, total: float | None = None) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])}
        if total is not None:
            main = sum(v for k, v in self.seconds.items() if not k.endswith(OVERLAPPED))
            out["other (glue, not wrapped)"] = round(max(0.0, total - main), 4)
        return out


# -------------------------------------------------------------------------------- synthetic vectors
class SyntheticVectors:
    """Cheap stand-in embeddings: hashed character bigrams, randomly projected to 384-d and normalised.

    Texts that share words land close together, as with a real model, so the HNSW graph has a
    realistic neighbourhood structure; they are NOT model embeddings and carry no quality meaning.
    """

    def __init__(self, dim: int = 384, buckets: int = 1 << 14, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.proj = rng.standard_normal((buckets, dim)).astype(np.float32)
        self.common = rng.standard_normal(dim).astype(np.float32)
        self.common /= np.linalg.norm(self.common)
        self.buckets = buckets

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.proj.shape[1]), dtype=np.float32)
        for i, text in enumerate(texts):
            cps = np.frombuffer((text or " ").encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
            ids = (cps[:-1] * 1000003 + cps[1:]) % self.buckets if len(cps) > 1 else cps % self.buckets
            v = self.proj[ids].sum(axis=0)
            v /= np.linalg.norm(v) or 1.0
            v += 0.8 * self.common  # real sentence embeddings share a common direction
            out[i] = v / np.linalg.norm(v)
        return out


# --------------------------------------------------------------------------------------- questions
def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]


def questions() -> list[dict]:
    rows = []
    for path in QA_FILES:
        for row in read_jsonl(path):
            rows.append({**row, "set": path.stem})
    return rows


def holds(text: str, expected: list[str]) -> bool:
    """Same test as talentbot.evaluate: every expected string occurs, whitespace ignored."""
    t = re.sub(r"\s+", "", text)
    return all(re.sub(r"\s+", "", e) in t for e in expected)


# ----------------------------------------------------------------------------------------- workers
def run_worker(
    name: str,
    args: dict,
    timeout: float = 3600,
    device: str | None = None,
    extra_env: dict[str, str] | None = None,
    retry: bool = True,
) -> dict:
    """Run ``run.py --worker name`` in a fresh process (own peak RSS, cold caches); return its JSON.

    A run disturbed by other processes (foreign CPU share above QUIET['retry_share']) is run once more,
    while the retry budget lasts; the less disturbed of the two is kept (the other's share is recorded).
    """
    result = _run_worker_once(name, args, timeout, device, extra_env)
    share = result.get("contention", {}).get("foreign_cpu_share", 0.0)
    cost = result.get("worker_wall_s", 0.0)
    if retry and share > QUIET["retry_share"] and cost <= QUIET["retry_budget_s"]:
        QUIET["retry_budget_s"] -= cost
        log(f"  {name}: other processes used {share:.0%} of the CPUs; measuring again")
        again = _run_worker_once(name, args, timeout, device, extra_env)
        again_share = again.get("contention", {}).get("foreign_cpu_share", 1.0)
        if "error" not in again and again_share < share:
            again["contention"]["retried_after_share"] = share
            return again
        result["contention"]["retry_share"] = again_share
    return result


def _run_worker_once(
    name: str, args: dict, timeout: float, device: str | None, extra_env: dict[str, str] | None
) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    out_file = OUT / f"worker-{name}-{os.getpid()}.json"
    out_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(RUN_PY),
        "--worker",
        name,
        "--worker-args",
        json.dumps(args, ensure_ascii=False),
        "--worker-out",
        str(out_file),
    ]
    waited = wait_quiet()
    cpu0, kids0 = _busy_cpu_s(), _children_cpu_s()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            env={**bench_env(device), **(extra_env or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"worker {name} timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out_file.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        print(f"  ! worker {name} failed (rc={proc.returncode}):\n{tail}", file=sys.stderr)
        return {"error": f"rc={proc.returncode}: {tail[-2000:]}"}
    result = json.loads(out_file.read_text())
    out_file.unlink(missing_ok=True)
    result["worker_wall_s"] = round(wall, 2)
    result["contention"] = {
        "waited_for_quiet_s": waited,
        "foreign_cpu_share": foreign_share(cpu0, kids0, wall),
    }
    return result


QUIET = {
    "max_wait_s": 60.0,
    "budget_s": 600.0,
    "threshold_pct": 30.0,
    "retry_share": 0.15,
    "retry_budget_s": 600.0,
}


def wait_quiet() -> float:
    """Wait (at most QUIET['max_wait_s'] per call, QUIET['budget_s'] per run) for the CPUs to idle."""
    import psutil

    t0 = time.perf_counter()
    limit = min(QUIET["max_wait_s"], QUIET["budget_s"])
    calm = 0
    while time.perf_counter() - t0 < limit:
        calm = calm + 1 if psutil.cpu_percent(interval=1.0) < QUIET["threshold_pct"] else 0
        if calm >= 2:
            break
    waited = time.perf_counter() - t0
    QUIET["budget_s"] = max(0.0, QUIET["budget_s"] - waited)
    return round(waited, 1)


def _busy_cpu_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


class Phase:
    """Foreign CPU share during one phase inside a worker (machine busy time minus this process's CPU)."""

    def __init__(self) -> None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.busy0, self.own0, self.t0 = _busy_cpu_s(), r.ru_utime + r.ru_stime, time.perf_counter()

    def share(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        foreign = (_busy_cpu_s() - self.busy0) - (r.ru_utime + r.ru_stime - self.own0)
        wall = time.perf_counter() - self.t0
        return round(max(0.0, foreign) / max(1e-9, wall * (os.cpu_count() or 1)), 3)


def foreign_share(cpu0: float, kids0: float, wall: float) -> float:
    """Share of the machine's CPU capacity used by processes other than this benchmark during ``wall``."""
    foreign = (_busy_cpu_s() - cpu0) - (_children_cpu_s() - kids0)
    return round(max(0.0, foreign) / max(1e-9, wall * (os.cpu_count() or 1)), 3)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
