"""
Token batches from the shards that prepare_data.py writes (or a plain nanoGPT train.bin/val.bin pair).

    data = Dataset("data/stdlib-bytes")
    rows = data.train_batch(step=12, seed=1337, batch_size=32, seq_len=256)   # (32, 257) token ids
    x, y = rows[:, :-1], rows[:, 1:]                                            # inputs and targets

The batch of a step is a pure function of (seed, step): a resumed run, a cooldown branched off a checkpoint,
and a run on any number of processes all see exactly the same sequences, so no loader state is saved but the
step. The validation set is the first `eval_tokens` tokens of the val split, cut into fixed windows, so every
evaluation of every run scores the same text.
"""

import json
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """A dataset that is missing or does not match its meta.json; the message is one line for the user."""


def _open_shard(path, tokens=None):
    """A read-only uint16 view of `path`; `tokens` is its length in meta.json (None for a nanoGPT .bin)."""
    if not path.is_file():
        raise DataError(f"shard {path} listed in meta.json is missing")
    size = path.stat().st_size
    if tokens is not None and size != 2 * tokens:
        raise DataError(f"shard {path} has {size} bytes but meta.json says {tokens} tokens ({2 * tokens} bytes)")
    if size == 0 or size % 2:  # np.memmap cannot map either
        raise DataError(f"shard {path} is empty" if size == 0 else
                        f"shard {path} has {size} bytes, an odd number: not a file of uint16 tokens")
    return np.memmap(path, dtype=np.uint16, mode="r")


class Dataset:
    def __init__(self, data_dir):
        data_dir = Path(data_dir)
        meta_path = data_dir / "meta.json"
        if meta_path.is_file():
            try:
                self.meta = json.loads(meta_path.read_text())
                shards = {split: [(data_dir / s["file"], int(s["tokens"])) for s in self.meta["shards"][split]]
                          for split in ("train", "val")}
                self.vocab_size = int(self.meta["vocab_size"])
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{meta_path} is not a valid dataset description "
                                f"({type(e).__name__}: {e})") from None
            if self.meta.get("dtype", "uint16") != "uint16":
                raise DataError(f"{meta_path}: dtype {self.meta['dtype']!r} is not supported, only uint16")
            self.train = [_open_shard(path, tokens) for path, tokens in shards["train"]]
            self.val = [_open_shard(path, tokens) for path, tokens in shards["val"]]
        elif (data_dir / "train.bin").is_file() and (data_dir / "val.bin").is_file():
            # nanoGPT's layout: GPT-2 tokens, no meta. Its files are our one-shard format byte for byte.
            self.meta = {"tokenizer": "gpt2", "vocab_size": 50257, "eot_token": 50256}
            self.vocab_size = 50257
            self.train, self.val = [_open_shard(data_dir / "train.bin")], [_open_shard(data_dir / "val.bin")]
        else:
            raise DataError(f"no prepared dataset in {data_dir} (no meta.json): run "
                            f"`python prepare_data.py --dataset=stdlib --tokenizer=bytes` or point data_dir at one")
        if not self.train or not self.val:
            raise DataError(f"dataset {data_dir} has an empty train or val split")
        self._windows = {}  # seq_len -> (first, end) window index per train shard
        self.train_tokens = sum(len(s) for s in self.train)
        self.val_tokens = sum(len(s) for s in self.val)

    def train_batch(self, step, seed, batch_size, seq_len, rank=0, world_size=1, pin_memory=False):
        """This rank's rows of the global batch of `batch_size` sequences for `step`, each seq_len + 1 tokens: the
        inputs are rows[:, :-1], the targets rows[:, 1:].

        One contiguous tensor, so that with pin_memory (for a CUDA device) a single copy to the GPU runs
        asynchronously with non_blocking=True; slice inputs, targets and micro-batches on the device (slices of
        a pinned tensor that are not contiguous would be copied through pageable memory).
        """
        window_starts, window_ends = self._shard_windows(seq_len)
        rng = np.random.default_rng([seed, step])
        position = rng.integers(0, window_ends[-1], size=batch_size)
        shard_index = np.searchsorted(window_ends, position, side="right")
        offset = position - window_starts[shard_index]
        rows = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        # one int64 buffer filled straight from the memmaps: no intermediate uint16 batch
        chunk = torch.empty((rows.stop - rows.start, seq_len + 1), dtype=torch.int64, pin_memory=pin_memory)
        out = chunk.numpy()
        for row, (i, o) in enumerate(zip(shard_index[rows], offset[rows])):
            out[row] = self.train[i][o:o + seq_len + 1]
        return chunk

    def _shard_windows(self, seq_len):
        """Index of the first and one past the last window of each train shard, computed once per seq_len.

        Windows never straddle two shards; a shard is drawn in proportion to how many windows it holds,
        so sampling is uniform over all windows of the corpus.
        """
        if seq_len not in self._windows:
            windows = np.array([max(len(s) - seq_len, 0) for s in self.train], dtype=np.int64)
            if windows.sum() == 0:
                raise DataError(f"no train shard holds seq_len + 1 = {seq_len + 1} tokens")
            ends = np.cumsum(windows)
            self._windows[seq_len] = (ends - windows, ends)
        return self._windows[seq_len]

    def val_windows(self, eval_tokens, seq_len):
        """The fixed validation set: `eval_tokens // seq_len` consecutive windows from the start of val."""
        count = eval_tokens // seq_len
        if count < 1:
            raise DataError(f"eval_tokens={eval_tokens} is less than one sequence of seq_len={seq_len}")
        # val shards are read as one stream; only the first eval_tokens + 1 tokens are ever needed.
        needed = count * seq_len + 1
        if self.val_tokens < needed:
            raise DataError(f"eval_tokens={eval_tokens} needs {needed} validation tokens but the dataset has "
                            f"{self.val_tokens}: lower eval_tokens or prepare a larger validation split")
        stream = np.concatenate([np.asarray(s[:needed]) for s in self.val])[:needed].astype(np.int64)
        starts = np.arange(count) * seq_len
        chunk = torch.from_numpy(np.stack([stream[s:s + seq_len + 1] for s in starts]))
        return chunk[:, :-1], chunk[:, 1:]
