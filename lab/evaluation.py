"""
Validation loss on the fixed validation windows, shared by train.py (every eval_interval), swa.py (averaged
checkpoints) and bench/speed.py, so that every number is measured the same way.

    val_x, val_y = Dataset(data_dir).val_windows(eval_tokens, seq_len)
    loss = evaluate(model, val_x, val_y, eval_batch_size, autocast_for(device, torch.bfloat16))
"""

import math
from contextlib import nullcontext

import torch

from lab import parallel


def autocast_for(device, ptdtype):
    """Mixed precision for the forward pass; weights stay float32."""
    return nullcontext() if ptdtype == torch.float32 else torch.autocast(device_type=device.type, dtype=ptdtype)


def evaluate(model, val_x, val_y, eval_batch_size, autocast, rank=0, world_size=1, lockstep=False):
    """Mean loss over the validation windows, shared out across processes in batches of eval_batch_size.

    A process may get fewer batches than another, or none; only the final sum is a collective, reached by every
    process. So `model`'s forward must run no collective (the module without DDP, see parallel.wrap), unless
    `lockstep`: an FSDP model all-gathers its weights in every forward, so each process runs as many forwards as
    the busiest one, the extra ones on its first windows and not counted.
    """
    with torch.no_grad():  # a block, not a decorator: the mutation run (mutmut) mutates undecorated functions
        model.eval()
        total = torch.zeros(2, device=val_x.device, dtype=torch.float64)
        starts = list(range(rank * eval_batch_size, len(val_x), world_size * eval_batch_size))
        rounds = math.ceil(len(val_x) / (world_size * eval_batch_size)) if lockstep else len(starts)
        with autocast:  # one region for all batches: autocast casts each weight to bf16 once, not once per batch
            for start in starts + [None] * (rounds - len(starts)):
                first = 0 if start is None else start
                x, y = val_x[first:first + eval_batch_size], val_y[first:first + eval_batch_size]
                loss = model(x, y)[1]
                if start is not None:
                    total[0] += loss.double() * y.numel()
                    total[1] += y.numel()
        if world_size > 1:
            parallel.sum_over_processes(total)
        model.train()
        return (total[0] / total[1]).item()
