"""Shared test set-up: offline tokenizer files and the repository on sys.path."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# tiktoken cannot download the GPT-2 files here; the workspace ships them beside the repository.
_cache = REPO.parent / "shared" / "tiktoken_cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _cache.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache)


import importlib.util  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# A model small enough that a few dozen steps take seconds on two cores. float32, not auto: at these tiny shapes
# a CPU's bf16 and fp32 matmul probes come within the auto rule's margin of each other, and under load auto could
# pick one precision for a run and the other for the run it is compared with (tests of auto inject the probe).
TINY_MODEL = ["--device=cpu", "--model=cpu_tiny", "--n_layer=2", "--n_embd=64", "--n_head=2", "--ffw_size=128",
              "--batch_size=8", "--seq_len=64", "--eval_tokens=2048", "--eval_batch_size=16", "--warmup_steps=4",
              "--dtype=float32"]


def write_bytes_dataset(folder, text, val_tokens=4096):
    """A one-shard-per-split dataset in prepare_data.py's format, from `text` (bytes tokenizer, EOT 256)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)
    splits = {"val": tokens[:val_tokens], "train": tokens[val_tokens:]}
    for split, array in splits.items():
        array.tofile(folder / f"{split}_0000.bin")
    meta = {"format": "uint16-shards-v1", "tokenizer": "bytes", "vocab_size": 257, "eot_token": 256,
            "dtype": "uint16", "shards": {s: [{"file": f"{s}_0000.bin", "tokens": len(a)}] for s, a in splits.items()}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def module_source(name):
    """The source of the standard library's module `name`, wherever this Python keeps it (a file in one version,
    a package's __init__.py in another: pathlib in 3.13, zipfile in 3.12)."""
    return Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """~300 KB of real Python source from the standard library, as a bytes-tokenized dataset."""
    text = "".join(module_source(name) for name in ("argparse", "dataclasses", "functools", "pathlib", "typing"))
    return write_bytes_dataset(tmp_path_factory.mktemp("data") / "tiny-bytes", text)
