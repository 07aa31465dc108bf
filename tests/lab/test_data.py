"""lab/data.py's Dataset: a batch's layout, the epochs' order, the validation windows (the folder's checks:
tests/lab/test_shards.py)."""
import numpy as np
import pytest
import torch

from helpers import TINY_MODEL, module_source, write_bytes_dataset
from lab.data import Dataset


def test_a_batch_is_one_contiguous_tensor_of_inputs_and_targets(tiny_data):
    """One copy to the device per step: the rows come as one contiguous (rows, seq_len + 1) tensor, inputs and
    targets are its overlapping slices, and the ranks' rows tile the global batch."""
    data = Dataset(tiny_data)
    rows = data.train_batch(step=3, seed=1, batch_size=6, seq_len=16)
    assert rows.shape == (6, 17) and rows.is_contiguous() and rows.dtype == torch.int64
    assert torch.equal(torch.cat([data.train_batch(3, 1, 6, 16, rank, 3) for rank in range(3)]), rows)
    corpus = np.asarray(data.train[0]).tobytes()
    for row in rows.numpy():  # every row is a window of the corpus, at a whole token
        assert corpus.find(row.astype(np.uint16).tobytes()) % 2 == 0


def test_validation_windows_are_fixed_spread_over_the_split_and_from_it(tiny_data):
    data = Dataset(tiny_data)
    x, y = data.val_windows(eval_tokens=640, seq_len=64)  # 10 of the split's 63 windows
    again_x, _ = Dataset(tiny_data).val_windows(640, 64)
    assert torch.equal(x, again_x) and x.shape == (10, 64)  # the same set for every evaluation and every run
    assert torch.equal(x[:, 1:], y[:, :-1])
    stream = torch.from_numpy(np.asarray(data.val[0]).astype(np.int64))
    starts = [next(s for s in range(0, len(stream) - 64, 64) if torch.equal(stream[s:s + 64], row)) for row in x]
    assert starts == sorted(set(starts))  # distinct windows of the val split, in its order, at whole windows
    assert starts[0] < len(stream) / 3 and starts[-1] > 2 * len(stream) / 3  # not only its first files
    assert torch.equal(data.val_windows(64 * 63, 64)[0][-1], stream[62 * 64:63 * 64])  # all of them: the last too


def test_an_epoch_visits_every_training_window_once_in_a_seeded_order(tiny_data):
    data = Dataset(tiny_data)
    total = (len(data.train[0]) - 1) // 64
    batch = 16
    steps = total // batch + 2  # past one epoch: the last batches straddle into the next
    seen = np.concatenate([data.train_windows(step, 5, batch, 64) for step in range(steps)])
    first_epoch, rest = seen[:total], seen[total:]
    assert np.array_equal(np.sort(first_epoch), np.arange(total))  # each window once, none repeated
    assert not np.array_equal(first_epoch, np.arange(total))  # in a permuted order
    assert len(set(rest)) == len(rest) and not np.array_equal(rest, first_epoch[:len(rest)])  # a new order
    assert np.array_equal(data.train_windows(3, 5, batch, 64), Dataset(tiny_data).train_windows(3, 5, batch, 64))
    assert not np.array_equal(data.train_windows(3, 6, batch, 64), data.train_windows(3, 5, batch, 64))
    rows = data.train_batch(3, 5, batch, 64)  # each row is its window of the train shard, targets included
    corpus = torch.from_numpy(np.asarray(data.train[0]).astype(np.int64))
    for row, window in zip(rows, data.train_windows(3, 5, batch, 64)):
        assert torch.equal(row, corpus[window * 64:window * 64 + 65])
    assert data.epochs(steps, batch, 64) == pytest.approx(steps * batch / total)


def test_the_spread_validation_set_scores_a_trained_model_as_the_whole_split_does(tmp_path):
    """The issue's measurement in small: a val split of 16 different stdlib modules (128 windows of 64), a model
    trained briefly, and a validation set of an eighth of the split (the cpu scale's 32,768 of 269k tokens)."""
    from lab import checkpoint
    import swa
    import train
    from model import GPT, GPTConfig
    names = ("argparse", "ast", "calendar", "csv", "difflib", "ftplib", "gzip", "heapq", "inspect", "locale",
             "mailbox", "optparse", "pickle", "random", "shutil", "tarfile", "typing", "zipfile", "dataclasses")
    text = "".join(module_source(name)[:4096] for name in names[:16])
    text += "".join(module_source(name) for name in names[16:])
    folder = write_bytes_dataset(tmp_path / "data", text, val_tokens=16 * 4096)
    out = tmp_path / "run"
    train.main([*TINY_MODEL, f"--data_dir={folder}", f"--out_dir={out}", "--max_steps=60", "--eval_interval=60",
                "--ckpt_interval=60"])
    scored = {tokens: swa.main([f"--run={out}", "--start_step=60", "--end_step=60", f"--eval_tokens={tokens}",
                       "--device=cpu"])["last"]
              for tokens in (8192, 16 * 4096 - 64)}
    assert abs(scored[8192] / scored[16 * 4096 - 64] - 1) < 0.02
    # the former set, the split's first 8192 tokens (its first 2 modules), is more than 2 % off
    state = checkpoint.load(checkpoint.path_for(out, 60))
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    first = torch.from_numpy(np.asarray(Dataset(folder).val[0][:8192 + 1]).astype(np.int64))
    with torch.no_grad():
        _, loss = model(first[:-1].view(-1, 64), first[1:].view(-1, 64))
    assert abs(loss.item() / scored[16 * 4096 - 64] - 1) > 0.02


def test_model_inputs_are_contiguous_copies_of_the_rows():
    """torch.compile's AVX2 code (PyTorch 2.13) misreads strided token ids: every input the model gets is contiguous."""
    from lab.data import inputs_and_targets
    rows = torch.arange(3 * 9).view(3, 9)
    x, y = inputs_and_targets(rows)
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x, rows[:, :-1]) and torch.equal(y, rows[:, 1:])
