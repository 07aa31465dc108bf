"""What the tests share: the repository's path, the tiny model's settings, datasets written on the fly, and torchrun
launched on this machine. (conftest.py puts the repository and this folder on sys.path.)"""
import hashlib
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

# A model small enough that a few dozen steps take seconds on two cores, on the CPU whatever GPUs the machine has (the
# GPU path has tests of its own, marked gpu). float32, not auto: at these tiny shapes a CPU's bf16 and fp32 matmul
# probes come within the auto rule's margin of each other, and under load auto could pick one precision for a run and
# the other for the run it is compared with (tests of auto inject the probe).
TINY_MODEL = ["--device=cpu", "--model=cpu_tiny", "--n_layer=2", "--n_embd=64", "--n_head=2", "--ffw_size=128",
              "--batch_size=8", "--seq_len=64", "--eval_tokens=2048", "--eval_batch_size=16", "--warmup_steps=4",
              "--dtype=float32"]
# torchrun's processes share the test worker's cores: one thread each
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def module_source(name):
    """The source of the standard library's module `name`, wherever this Python keeps it (a file in one version,
    a package's __init__.py in another: pathlib in 3.13, zipfile in 3.12)."""
    return Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")


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


def write_shards(folder, train, val, **meta):
    """A dataset of the given shards (lists of token lists) in prepare_data.py's format: meta.json with vocab_size
    257 and the shards, and `meta`; no recorded fingerprint (a start then reads every shard)."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = {}
    for split, arrays in (("train", train), ("val", val)):
        shards[split] = []
        for i, tokens in enumerate(arrays):
            np.array(tokens, dtype="<u2").tofile(folder / f"{split}_{i:04d}.bin")
            shards[split].append({"file": f"{split}_{i:04d}.bin", "tokens": len(tokens)})
    (folder / "meta.json").write_text(json.dumps({"vocab_size": 257, "shards": shards, **meta}))
    return folder


def edit_meta(folder, change):
    """meta.json of `folder` rewritten as change(meta)."""
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(change(meta)))


def write_char_folder(folder, text):
    """A nanoGPT char-level folder as its shakespeare_char/prepare.py writes one: the sorted characters of the text
    are the vocabulary, train.bin and val.bin the text's 90/10 split, meta.pkl vocab_size, itos and stoi."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(text))
    stoi, itos = {ch: i for i, ch in enumerate(chars)}, dict(enumerate(chars))
    cut = int(len(text) * 0.9)
    np.array([stoi[c] for c in text[:cut]], dtype=np.uint16).tofile(folder / "train.bin")
    np.array([stoi[c] for c in text[cut:]], dtype=np.uint16).tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    return chars


def fingerprint_of(folder):
    """The data's fingerprint as docs/data.md defines it, computed here from the files: sha256 over the splits
    (train, val) and their shards in order, each as 'split:tokens\n' then its bytes (meta.json's shards, or
    nanoGPT's train.bin and val.bin)."""
    folder = Path(folder)
    if (folder / "meta.json").is_file():
        listed = json.loads((folder / "meta.json").read_text())["shards"]
        files = [(split, folder / shard["file"]) for split in ("train", "val") for shard in listed[split]]
    else:
        files = [("train", folder / "train.bin"), ("val", folder / "val.bin")]
    digest = hashlib.sha256()
    for split, path in files:
        raw = path.read_bytes()
        digest.update(f"{split}:{len(raw) // 2}\n".encode() + raw)
    return digest.hexdigest()


def metrics(out):
    """The records of out_dir's metrics.jsonl."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def free_port():
    """A TCP port that nothing on this machine listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc, *args, script=str(REPO / "train.py"), env=None, timeout=240, restarts=0):
    """torchrun --standalone on this machine, restarting the processes up to `restarts` times when one fails; the
    finished process. A hang fails the test, it does not block it: past `timeout`, torchrun is sent SIGTERM, on
    which it ends its processes (each in a session of its own: killing torchrun alone would leave them behind)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               f"--max-restarts={restarts}", script, *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or ENV) as job:
        try:
            stdout, stderr = job.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            job.terminate()  # torchrun: SIGTERM to its processes, SIGKILL 30 s later to those still there
            job.communicate(timeout=120)
            raise
    return subprocess.CompletedProcess(command, job.returncode, stdout, stderr)


def close(mine, theirs, keys=("train_loss", "val_loss", "val_loss_swa", "val_loss_ema"), rel=1e-4):
    """The same logged steps, and each of `keys` within `rel` of the other run's."""
    assert [r["step"] for r in mine] == [r["step"] for r in theirs]
    for a, b in zip(mine, theirs):
        for key in keys:
            if key in b:
                assert a[key] == pytest.approx(b[key], rel=rel, abs=0), (a["step"], key)


def fake_clock(monkeypatch, step_seconds):
    """time.perf_counter on a clock that moves only when train.py takes a step (step_seconds each) or when the
    caller moves it (the list returned: now[0] += seconds). The CPU's matmul probe, timed on that clock too, is
    replaced by fixed speeds: 1e11 FLOP/s in fp32, 4e11 in bf16."""
    import time

    import train
    from lab import perf
    now, step = [0.0], train.train_step

    def timed_step(*args):
        now[0] += step_seconds
        return step(*args)

    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: {"float32": 1e11, "bfloat16": 4e11})
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(train, "train_step", timed_step)
    return now
