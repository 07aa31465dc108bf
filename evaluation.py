"""
Validation loss on the fixed validation windows, shared by train.py (every eval_interval), swa.py (averaged
checkpoints) and bench.py, so that every number is measured the same way.

    val_x, val_y = Dataset(data_dir).val_windows(eval_tokens, seq_len)
    loss = evaluate(model, val_x, val_y, eval_batch_size, autocast_for(device, torch.bfloat16))
"""

from contextlib import nullcontext

import torch

import parallel


def autocast_for(device, ptdtype):
    """Mixed precision for the forward pass; weights stay float32."""
    return nullcontext() if ptdtype == torch.float32 else torch.autocast(device_type=device.type, dtype=ptdtype)


@torch.no_grad()
def evaluate(model, val_x, val_y, eval_batch_size, autocast, rank=0, world_size=1):
    """Mean loss over the validation windows, shared out across processes in batches of eval_batch_size.

    `model` must run no collective in its forward (the module without DDP, see parallel.wrap): a process may get
    fewer batches than another, or none, and only the final sum is a collective, reached by every process.
    """
    model.eval()
    total = torch.zeros(2, device=val_x.device, dtype=torch.float64)
    with autocast:  # one region for all batches: autocast casts each weight to bf16 once, not once per batch
        for start in range(rank * eval_batch_size, len(val_x), world_size * eval_batch_size):
            x, y = val_x[start:start + eval_batch_size], val_y[start:start + eval_batch_size]
            _, loss = model(x, y)
            total[0] += loss.double() * y.numel()
            total[1] += y.numel()
    if world_size > 1:
        parallel.sum_over_processes(total)
    model.train()
    return (total[0] / total[1]).item()
