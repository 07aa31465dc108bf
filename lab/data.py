"""
Token batches from the shards that prepare_data.py writes (or nanoGPT's train.bin/val.bin), read and checked by
lab/shards.py.

    data = Dataset("data/stdlib-bytes")
    rows = data.train_batch(step=12, seed=1337, batch_size=32, seq_len=256)   # (32, 257) token ids
    x, y = inputs_and_targets(rows)                                             # inputs, targets: (32, 256)

Training data without replacement: the train shards are cut into non-overlapping windows of seq_len + 1 tokens
(inputs and their next-token targets), and each epoch visits every window once, in an order permuted by
(seed, epoch). Step s takes the global samples s*batch_size ... (s+1)*batch_size - 1 of that sequence, so the
batch of a step is a pure function of (seed, step): a resumed run, a cooldown branched off a checkpoint, and a run
on any number of processes all see exactly the same sequences, and no loader state is saved but the step.

The validation set: eval_tokens // seq_len non-overlapping windows spread over the whole val split, chosen with a
fixed seed (VAL_SEED, not the run's), in the split's order. Every evaluation of every run with the same
eval_tokens and seq_len scores the same text, and it is a sample of every part of the split, not its first files.
"""

from functools import lru_cache

import numpy as np
import torch

from lab import shards
from lab.shards import DataError

VAL_SEED = 2357  # the validation windows' own seed, the same for every run (prepare_data.py's split seed)


class Dataset:
    """The shards of data_dir (lab/shards.py: prepare_data.py's folder or nanoGPT's), checked: meta (tokenizer,
    vocab_size, fingerprint, ...), and the train and val shards as uint16 memmaps."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.meta, self.train, self.val = shards.read_folder(data_dir)
        self.vocab_size, self.fingerprint = self.meta["vocab_size"], self.meta["fingerprint"]
        self._windows = {}  # seq_len -> index of the first window of each train shard, and the total
        self.train_tokens = sum(len(s) for s in self.train)
        self.val_tokens = sum(len(s) for s in self.val)

    def record(self):
        """What a run's config.json records of this data (shards.run_record)."""
        return shards.run_record(self.meta, self.data_dir, self.train_tokens, self.val_tokens)

    def train_batch(self, step, seed, batch_size, seq_len, rank=0, world_size=1, pin_memory=False):
        """This rank's rows of the global batch of `batch_size` sequences for `step`, each seq_len + 1 tokens: the
        inputs are rows[:, :-1], the targets rows[:, 1:].

        One contiguous tensor, so that with pin_memory (for a CUDA device) a single copy to the GPU runs
        asynchronously with non_blocking=True; slice inputs, targets and micro-batches on the device (slices of
        a pinned tensor that are not contiguous would be copied through pageable memory).
        """
        rows = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        windows = self.train_windows(step, seed, batch_size, seq_len)[rows]
        firsts, total = self._shard_windows(seq_len)
        shard_index = np.searchsorted(firsts, windows, side="right") - 1
        offsets = (windows - firsts[shard_index]) * seq_len
        # one int64 buffer filled straight from the memmaps: no intermediate uint16 batch
        chunk = torch.empty((len(windows), seq_len + 1), dtype=torch.int64, pin_memory=pin_memory)
        out = chunk.numpy()
        for row, (i, o) in enumerate(zip(shard_index, offsets)):
            out[row] = self.train[i][o:o + seq_len + 1]
        return chunk

    def train_windows(self, step, seed, batch_size, seq_len):
        """Global window indices of the batch of `step`: samples step*batch_size ... of the epochs' permutations."""
        total = self._shard_windows(seq_len)[1]
        samples = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
        epochs, positions = np.divmod(samples, total)
        windows = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):  # a batch can straddle two epochs
            chosen = epochs == epoch
            windows[chosen] = epoch_order(seed, int(epoch), total)[positions[chosen]]
        return windows

    def epochs(self, steps, batch_size, seq_len):
        """How many passes over the training windows `steps` steps make."""
        return steps * batch_size / self._shard_windows(seq_len)[1]

    def _shard_windows(self, seq_len):
        """(global index of each train shard's first window, number of windows), computed once per seq_len.

        A shard of n tokens holds (n - 1) // seq_len non-overlapping windows (each seq_len + 1 tokens: the last
        token of one is the first of the next); windows never straddle two shards.
        """
        if seq_len not in self._windows:
            windows = np.array([max(len(s) - 1, 0) // seq_len for s in self.train], dtype=np.int64)
            if windows.sum() == 0:
                raise DataError(f"no train shard holds seq_len + 1 = {seq_len + 1} tokens")
            self._windows[seq_len] = (np.cumsum(windows) - windows, int(windows.sum()))
        return self._windows[seq_len]

    def val_windows(self, eval_tokens, seq_len):
        """The fixed validation set: `eval_tokens // seq_len` of the val split's non-overlapping windows, chosen
        by VAL_SEED from all of them and kept in the split's order. (inputs, targets)."""
        count = eval_tokens // seq_len
        if count < 1:
            raise DataError(f"eval_tokens={eval_tokens} is less than one sequence of seq_len={seq_len}")
        available = (self.val_tokens - 1) // seq_len  # val shards are read as one stream
        if available < count:
            raise DataError(f"eval_tokens={eval_tokens} needs {count} windows of seq_len + 1 = {seq_len + 1} "
                            f"validation tokens but the dataset has {self.val_tokens} tokens ({available} windows): "
                            f"lower eval_tokens or prepare a larger validation split")
        starts = np.sort(np.random.default_rng(VAL_SEED).choice(available, size=count, replace=False)) * seq_len
        stream = np.concatenate([np.asarray(s) for s in self.val])  # uint16: 2 bytes a token while choosing
        chunk = torch.from_numpy(np.stack([stream[s:s + seq_len + 1] for s in starts]).astype(np.int64))
        return inputs_and_targets(chunk)


def inputs_and_targets(rows):
    """(inputs, targets) of token rows of seq_len + 1: rows[:, :-1] and rows[:, 1:], each copied to a contiguous
    tensor (a few kB). Not for eager PyTorch, which reads the strided views as well: torch.compile's C++ code for
    AVX2 CPUs (inductor, PyTorch 2.13) reads such strided token ids wrongly, a wrong loss then NaN (measured with
    ATEN_CPU_CAPABILITY=avx2; contiguous inputs give eager's loss), so every model input is made contiguous here."""
    return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


def _permutation(seed, epoch, windows):
    return np.random.default_rng([seed, epoch]).permutation(windows)


# The order in which epoch `epoch` visits the `windows` training windows: a permutation seeded by (seed, epoch),
# computed once (a few ms per million windows) and kept for the steps of that epoch. Cached apart from the function:
# the mutation run (mutmut) mutates undecorated functions only.
epoch_order = lru_cache(maxsize=4)(_permutation)
