"""Embedding-stage throughput on a lent GPU: the encode call of talentbot.embeddings.Embedder.

Run on the GPU machine from the repo root after `benchmarks/gpu/prepare.py` (carry .gpu/);
writes $OUT/gpu_embed.json. Only torch and sentence-transformers are needed there.
"""

import contextlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    t0 = time.perf_counter()
    model = SentenceTransformer(".gpu/model", device="cuda").float()  # weights travel as float16
    torch.cuda.synchronize()
    out["load_s"] = time.perf_counter() - t0
    texts = json.loads(Path(".gpu/texts.json").read_text())
    ref = np.load(".gpu/cpu_fp32.npy")
    big = (texts * 20)[:10000]

    def encode(batch: int, bf16: bool, data: list[str]) -> np.ndarray:
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            return model.encode(
                data,
                batch_size=batch,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    encode(64, False, texts[:256])
    encode(64, True, texts[:256])
    runs = []
    for batch in (64, 256, 512):
        for bf16 in (False, True):
            times = []
            for _ in range(3):
                torch.cuda.synchronize()
                t = time.perf_counter()
                encode(batch, bf16, big)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            median = statistics.median(times)
            cos = (encode(batch, bf16, texts) * ref).sum(1)
            runs.append(
                {
                    "batch": batch,
                    "bf16": bf16,
                    "chunks": len(big),
                    "median_s": round(median, 3),
                    "chunks_per_s": round(len(big) / median, 1),
                    "cos_vs_cpu_fp32_min": float(cos.min()),
                    "cos_vs_cpu_fp32_mean": float(cos.mean()),
                }
            )
            print(runs[-1], flush=True)
    out["runs"] = runs
    with open(os.path.join(os.environ.get("OUT", "."), "gpu_embed.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
