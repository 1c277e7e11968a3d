"""talentbot benchmark suite (issue 5): ingest, re-ingest, query latency, cold start, serve, RSS, naive baseline.

Usage (from the repository root):

    .venv/bin/python benchmarks/run.py                  # corpus/, 1k, 10k, 100k chunks (~20 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick          # corpus/ and 1k only (~3 min)
    .venv/bin/python benchmarks/run.py --sizes corpus,10000 --real-max 10000

Writes BENCHMARKS.md (repository root) and benchmarks/results.json. Scratch data (synthetic corpora,
stores) goes to benchmarks/out/ (git-ignored). Every measurement runs in a fresh child process, so
peak RSS figures are per measurement. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, OUT, QUIET, ROOT, compile_product, log, run_worker, setup_worker_env

DEFAULT_SIZES = "corpus,1000,10000,100000"
QUICK_SIZES = "corpus,1000"


def _workers() -> dict:
    from encode_bench import worker_encode
    from ingest_bench import worker_ingest
    from naive import worker_naive
    from process_bench import worker_serve_ask
    from query_bench import worker_coldprofile, worker_query

    return {
        "ingest": worker_ingest,
        "query": worker_query,
        "naive": worker_naive,
        "encode": worker_encode,
        "coldprofile": worker_coldprofile,
        "serve_ask": worker_serve_ask,
    }


def machine_info() -> dict:
    import importlib.metadata as md

    import psutil

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in (
        "talentbot",
        "torch",
        "sentence-transformers",
        "transformers",
        "chromadb",
        "bm25s",
        "rjieba",
        "numpy",
        "scipy",
        "langchain-core",
        "langchain-chroma",
        "langchain-huggingface",
        "langchain-text-splitters",
        "gradio",
        "onnxruntime",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "default_model": _default_model(),
        "src_modified_since_commit": dirty,
    }


def _default_model() -> str:
    from talentbot.config import Settings

    return Settings().model_name


def corpus_info(corpus: Path) -> dict:
    from synth import count_chunks

    from talentbot.config import Settings

    s = Settings()
    chunks = chars = articles = 0
    for p in sorted(corpus.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            n, c = count_chunks(p, s.chunk_size, s.chunk_overlap)
            chunks, chars, articles = chunks + n, chars + c, articles + 1
    return {"path": str(corpus), "articles": articles, "chunks": chunks, "chars": chars}


SMALL_REPEATED = 1000  # synthetic sizes (chunks) whose ingest is repeated --ingest-repeats times


def _median_run(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    ok.sort(key=lambda r: r["total_s"])
    best = dict(ok[len(ok) // 2])
    best["runs_total_s"] = [r["total_s"] for r in runs if "total_s" in r]
    return best


def bench_size(size: str, args, results: dict, save) -> None:
    import process_bench
    import synth

    from talentbot.config import Settings

    s = Settings()
    if size == "corpus":
        info = corpus_info(ROOT / "corpus")
        corpus = ROOT / "corpus"
        vectors = "real"
    else:
        log(f"size {size}: generating the synthetic corpus")
        info = synth.make_corpus(int(size), ROOT / "corpus", OUT / "corpora", s.chunk_size, s.chunk_overlap)
        corpus = Path(info["path"])
        vectors = "real" if int(size) <= args.real_max else "synthetic"
    store = OUT / "stores" / f"store-{size}"
    entry: dict = {"corpus": {**info, "path": str(corpus.relative_to(ROOT))}, "vectors": vectors}
    results["sizes"][size] = entry
    # the ingest / embedding-only ratio pairs two runs whose embedding speed alone varies by 10-15% here:
    # repeated (median run kept) where a run takes under a minute
    repeats = args.ingest_repeats if size == "corpus" or int(size) <= SMALL_REPEATED else 1
    runs = []
    for i in range(repeats):
        log(f"size {size}: ingest {i + 1}/{repeats} ({vectors} vectors, {info['chunks']} chunks)")
        runs.append(
            run_worker(
                "ingest",
                {
                    "corpus": str(corpus),
                    "store": str(store),
                    "vectors": vectors,
                    "reference_max": 600 if args.quick else 5000,
                },
                device=args.device,
            )
        )
    entry["ingest"] = _median_run(runs)
    save()
    log(f"size {size}: queries (default fusion, with eval={vectors == 'real'} and cProfile)")
    entry["query"] = run_worker(
        "query",
        {"store": str(store), "eval": vectors == "real", "cprofile": True, "rounds": args.rounds},
        device=args.device,
    )
    log(f"size {size}: queries (the alternative fusion: rrf if the default is lexical, else lexical)")
    entry["query_alt"] = run_worker(
        "query",
        {"store": str(store), "fusion": "alternative", "eval": vectors == "real", "rounds": 1},
        device=args.device,
    )
    save()
    log(f"size {size}: cold `talentbot ask`, CLI re-ingest")
    entry["cold_ask"] = process_bench.wall_median(
        [str(BIN / "talentbot"), "ask", process_bench.ASK_Q, "--store", str(store)],
        args.cold_repeats,
        args.device,
    )
    entry["cli_reingest"] = process_bench.wall_median(
        [str(BIN / "talentbot"), "ingest", str(corpus), "--store", str(store), "--json"], 2, args.device
    )
    if not args.no_serve and (not args.quick or size == args.sizes_list[-1]):
        log(f"size {size}: `talentbot serve` start-up")
        entry["serve"] = process_bench.serve_probe(store, device=args.device)
    save()


def bench_models(args, results: dict, save) -> None:
    """The default embedding model against ``--compare-model`` on the real-vector sizes: ingest and
    embedding-only chunks/s, peak RSS, model load, query p50/p95 (default fusion) and cold ``ask``.
    The default model's figures are those of the main run; only the other model is measured here."""
    import common
    import process_bench

    other = args.compare_model
    entry: dict = {"model": other, "sizes": {}}
    results["compare_model"] = entry
    for size, main in results["sizes"].items():
        if main.get("vectors") != "real":
            continue
        corpus = ROOT / main["corpus"]["path"]
        store = OUT / "stores" / f"store-{size}-{other.replace('/', '_')}"
        common.EXTRA_ENV.update(TALENTBOT_EMBEDDING_MODEL=other)
        try:
            log(f"model {other}, size {size}: ingest, queries, cold ask")
            ing = run_worker(
                "ingest",
                {
                    "corpus": str(corpus),
                    "store": str(store),
                    "vectors": "real",
                    "reference_max": 600 if args.quick else 5000,
                    "reingest_repeats": 1,
                },
                device=args.device,
            )
            query = run_worker(
                "query", {"store": str(store), "eval": size == "corpus", "rounds": 1}, device=args.device
            )
            cold = process_bench.wall_median(
                [str(BIN / "talentbot"), "ask", process_bench.ASK_Q, "--store", str(store)],
                args.cold_repeats,
                args.device,
            )
        finally:
            common.EXTRA_ENV.clear()
        entry["sizes"][size] = {"ingest": ing, "query": query, "cold_ask": cold}
        save()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default=None, help=f"comma list: 'corpus' and/or chunk counts (default {DEFAULT_SIZES})"
    )
    ap.add_argument("--quick", action="store_true", help=f"only {QUICK_SIZES}, fewer repeats (~3 min)")
    ap.add_argument(
        "--real-max",
        type=int,
        default=10000,
        help="largest size embedded with the real model; above it, synthetic vectors (default 10000)",
    )
    ap.add_argument("--rounds", type=int, default=2, help="passes over the 84 eval questions per latency run")
    ap.add_argument(
        "--ingest-repeats",
        type=int,
        default=None,
        help="ingest runs on corpus/ and the 1k corpus (median kept; default 3, --quick 1)",
    )
    ap.add_argument("--cold-repeats", type=int, default=None, help="runs of each cold-start command (median)")
    ap.add_argument("--device", default=None, help="TALENTBOT_DEVICE for the children (default: cpu)")
    ap.add_argument("--no-serve", action="store_true", help="skip `talentbot serve`")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive LangChain pipeline")
    ap.add_argument(
        "--compare-model",
        default="all-MiniLM-L6-v2",
        help="embedding model measured beside the default on the real-vector sizes ('' to skip)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each measurement wait up to this many seconds for other processes to idle "
        "(default 60; at most --quiet-budget in all)",
    )
    ap.add_argument(
        "--quiet-budget",
        type=float,
        default=None,
        help="total seconds of such waiting per run (default 600, --quick 30)",
    )
    ap.add_argument(
        "--no-retry",
        action="store_true",
        help="do not measure again what other processes disturbed (>15%% of the CPUs; 600 s budget)",
    )
    ap.add_argument("--md", default=str(ROOT / "BENCHMARKS.md"), help="Markdown report path")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"), help="JSON results path")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        setup_worker_env()
        result = _workers()[args.worker](json.loads(args.worker_args or "{}"))
        Path(args.worker_out).write_text(json.dumps(result, ensure_ascii=False, indent=1))
        return 0

    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    QUIET["max_wait_s"] = args.quiet_wait
    QUIET["budget_s"] = args.quiet_budget if args.quiet_budget is not None else (30 if args.quick else 600)
    QUIET["retry_budget_s"] = 0 if args.quick or args.no_retry else 600
    sizes = [x.strip() for x in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    args.sizes_list = sizes
    if args.ingest_repeats is None:
        args.ingest_repeats = 1 if args.quick else 3
    if args.cold_repeats is None:
        args.cold_repeats = 1 if args.quick else 3
    if args.quick:
        args.rounds = min(args.rounds, 1)
    t_start = time.perf_counter()
    md_path, json_path = Path(args.md), Path(args.json)
    results: dict = {
        "meta": machine_info(),
        "argv": sys.argv[1:],
        "quick": args.quick,
        "command": " ".join(["python benchmarks/run.py", *sys.argv[1:]]),
        "real_max": args.real_max,
        "sizes": {},
        "complete": False,
    }

    def save() -> None:
        results["runtime_s"] = round(time.perf_counter() - t_start, 1)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, ensure_ascii=False, indent=1))

    import process_bench

    (OUT / "stores").mkdir(parents=True, exist_ok=True)
    compile_product()
    log("cold `talentbot --help`")
    results["cold_help"] = process_bench.wall_median([str(BIN / "talentbot"), "--help"], args.cold_repeats)
    results["import_profile_help"] = process_bench.import_profile(["--help"])
    save()
    for size in sizes:
        bench_size(size, args, results, save)
    if args.compare_model:
        bench_models(args, results, save)
    first_store = OUT / "stores" / f"store-{sizes[0]}"
    results["import_profile_ask"] = process_bench.import_profile(
        ["ask", process_bench.ASK_Q, "--store", str(first_store)]
    )
    log("cold-start breakdown (in-process steps)")
    profiled = [sizes[-1]] if args.quick else [sizes[0], sizes[-1]]
    results["cold_profile"] = {
        s: run_worker("coldprofile", {"store": str(OUT / "stores" / f"store-{s}")}, device=args.device)
        for s in dict.fromkeys(profiled)
    }
    save()
    if not args.no_naive:
        log("naive LangChain pipeline on corpus/")
        results["naive"] = run_worker(
            "naive",
            {
                "corpus": str(ROOT / "corpus"),
                "store": str(OUT / "stores"),
                "rounds": args.rounds,
                "variants": 1 if args.quick else 2,
            },
            device=args.device,
        )
        save()
    log("encoding: float32 vs bf16 (200 real chunks)")
    results["encode"] = run_worker(
        "encode",
        {
            "corpus": str(ROOT / "corpus"),
            "n": 100 if args.quick else 200,
            "repeats": 1 if args.quick else 2,
            "batches": [] if args.quick else [8, 32, 64, 128],
            "int8": not args.quick,
        },
        device=args.device,
    )
    save()
    if not args.quick and "corpus" in sizes:
        log("quality with float32 vectors (corpus/, fusion=rrf) to check that bf16 does not cost hit@1")
        store32 = OUT / "stores" / "store-corpus-fp32"
        ing = run_worker(
            "ingest",
            {"corpus": str(ROOT / "corpus"), "store": str(store32), "vectors": "real", "reingest_repeats": 1},
            device=args.device,
            extra_env={"TALENTBOT_EMBED_BF16": "false"},
        )
        q32 = run_worker(
            "query",
            {"store": str(store32), "fusion": "rrf", "eval": True, "rounds": 1},
            device=args.device,
            extra_env={"TALENTBOT_EMBED_BF16": "false"},
        )
        bf = results["sizes"]["corpus"]
        bf16_eval = next(
            (bf[k].get("eval") for k in ("query", "query_alt") if bf.get(k, {}).get("fusion") == "rrf"), None
        )
        results["fp32_quality"] = {
            "ingest_total_s": ing.get("total_s"),
            "embed_only": ing.get("embed_only"),
            "eval_rrf": q32.get("eval"),
            "eval_rrf_bf16": bf16_eval,
        }
        shutil.rmtree(store32, ignore_errors=True)
    results["complete"] = True
    save()
    from report import write_markdown

    write_markdown(results, md_path)
    log(f"done in {results['runtime_s']:.0f} s: wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
