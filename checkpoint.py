"""
Checkpoint files of a run: `<out_dir>/ckpt_<step>.pt`, written atomically, found, loaded safely, pruned.

A checkpoint is a dict of tensors and plain Python values (model, optimizer, step, config, RNG, ...), so it
loads with `torch.load(weights_only=True)`: opening a checkpoint never runs code from it.
"""

import os
import re
from pathlib import Path

import torch

from config import write_atomically

_NAME = re.compile(r"^ckpt_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit this run; one line for the user."""


def path_for(out_dir, step):
    return Path(out_dir) / f"ckpt_{step:07d}.pt"


def list_checkpoints(out_dir):
    """(step, path) of every finished checkpoint in out_dir, oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), out_dir / name) for name in os.listdir(out_dir) if (m := _NAME.match(name))]
    return sorted(found)


def save_file(state, path):
    """torch.save under a temporary name, then rename: a kill mid-write never leaves a half-written file."""
    return write_atomically(path, lambda tmp: torch.save(state, tmp))


def save(state, out_dir, step):
    return save_file(state, path_for(out_dir, step))


def load(path, previous_hint="", required=("model", "step")):
    """Load a checkpoint file safely; a missing or corrupt file, or one without the `required` entries, is a
    CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, pickled code...: all mean "unusable file"
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}){previous_hint}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of this repository (no model or step){previous_hint}")
    missing = [key for key in required if key not in state]
    if missing:  # e.g. swa.pt or ema.pt: weights only, no optimizer state to continue training from
        raise CheckpointError(f"{path} holds no {', '.join(missing)}: a weight file, not a training checkpoint"
                              f"{previous_hint}")
    return state


def latest(out_dir):
    """(path, hint) of out_dir's newest checkpoint; the hint names the previous one, should this one be corrupt."""
    found = list_checkpoints(out_dir)
    if not found:
        raise CheckpointError(f"{out_dir} holds no checkpoint (ckpt_*.pt)")  # train.py (resume) and sample.py
    hint = f"; the previous one is {found[-2][1]}, use init_from={found[-2][1]}" if len(found) > 1 else ""
    return found[-1][1], hint


def load_latest(out_dir, required=("model", "step")):
    """The newest checkpoint of out_dir; if it is corrupt, say which older one is still good."""
    path, hint = latest(out_dir)
    return load(path, hint, required)


def prune(out_dir, keep_last, keep_steps=()):
    """Delete rolling checkpoints beyond the newest `keep_last`; steps in `keep_steps` are permanent."""
    rolling = [(step, path) for step, path in list_checkpoints(out_dir) if step not in set(keep_steps)]
    for _, path in rolling[:-keep_last] if keep_last > 0 else []:
        path.unlink()
