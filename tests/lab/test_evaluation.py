"""lab/evaluation.py: the validation loss is the mean over every target token, whatever the batches (a short last
one), the processes (each its share, one sum) and FSDP's lockstep (extra forwards not counted); autocast."""
import warnings

import pytest
import torch

from lab import parallel
from lab.evaluation import autocast_for, evaluate


class TokenMean(torch.nn.Module):
    """A stand-in model whose loss is the mean of its targets' values, so that every loss is known by hand; it
    records the batches it was given and whether it was in eval mode."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, y):
        self.calls.append((x[:, 0].tolist(), self.training))
        return None, y.float().mean()


def windows(count, length=4):
    """`count` windows whose targets are all equal to the window's index."""
    y = torch.arange(count).repeat_interleave(length).view(count, length)
    return y.clone(), y


def test_the_loss_is_the_mean_over_tokens_not_over_batches():
    model = TokenMean()
    x, y = windows(7)
    # batches of 3, 3 and 1 windows: token mean (0 + 1 + ... + 6) / 7 = 3; the mean of batch means would be 10/3
    assert evaluate(model, x, y, 3, autocast_for(torch.device("cpu"), torch.float32)) == 3.0
    assert [batch for batch, _ in model.calls] == [[0, 1, 2], [3, 4, 5], [6]]
    assert not any(training for _, training in model.calls) and model.training  # eval mode, then back to train


def test_the_sums_are_float64():
    """Windows of loss 2**24 and of loss 1, 4 tokens each: float32 sums would round 2**26 + 4 to 2**26."""
    y = torch.tensor([[2**24] * 4, [1] * 4])
    assert evaluate(TokenMean(), y.clone(), y, 1, autocast_for(torch.device("cpu"), torch.float32)) == 2**23 + 0.5


@pytest.mark.gpu
def test_the_sums_stay_on_the_device_of_the_windows():
    x, y = windows(7)
    model = TokenMean().cuda()
    assert evaluate(model, x.cuda(), y.cuda(), 3, autocast_for(torch.device("cuda"), torch.float32)) == 3.0


def test_each_process_scores_its_share_and_one_sum_gives_the_mean(monkeypatch):
    """Rank 1 runs first and keeps its (loss x tokens, tokens); rank 0's collective adds them to its own."""
    x, y = windows(7)
    totals = {}

    def sum_over_processes(total):
        totals[len(totals)] = total.clone()
        if len(totals) == 2:  # rank 0's sum: rank 1's added in place, as the all-reduce does
            total += totals[0]

    monkeypatch.setattr(parallel, "sum_over_processes", sum_over_processes)
    shares, losses = {}, {}
    for rank in (1, 0):
        model = TokenMean()
        losses[rank] = evaluate(model, x, y, 3, autocast_for(torch.device("cpu"), torch.float32), rank, 2)
        shares[rank] = [batch for batch, _ in model.calls]
    assert shares == {1: [[3, 4, 5]], 0: [[0, 1, 2], [6]]}  # batches in turn: rank 0 gets 0-2 and 6, rank 1 3-5
    assert totals[0].tolist() == [4 * (3 + 4 + 5), 12] and totals[1].tolist() == [4 * (0 + 1 + 2 + 6), 16]
    assert losses[0] == 3.0 and losses[1] == 4.0  # rank 0: the mean over all 28 tokens; rank 1 its own here


def test_lockstep_runs_as_many_forwards_as_the_busiest_process_and_counts_only_its_own(monkeypatch):
    x, y = windows(7)
    monkeypatch.setattr(parallel, "sum_over_processes", lambda total: None)  # each process's own share
    model = TokenMean()
    loss = evaluate(model, x, y, 3, autocast_for(torch.device("cpu"), torch.float32), rank=1, world_size=2,
                    lockstep=True)
    assert [batch for batch, _ in model.calls] == [[3, 4, 5], [0, 1, 2]]  # a second forward, on its first windows
    assert loss == 4.0  # windows 3, 4 and 5 alone


def test_autocast_is_off_in_float32_and_in_the_precision_asked_otherwise():
    assert not torch.is_autocast_enabled("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.autocast in float32 would warn that it disables itself
        with autocast_for(torch.device("cpu"), torch.float32):
            assert not torch.is_autocast_enabled("cpu")
    for dtype in (torch.bfloat16, torch.float16):
        with autocast_for(torch.device("cpu"), dtype):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == dtype
