"""
Checkpoints of a run: `<out_dir>/ckpt_<step>/`, a folder in torch.distributed.checkpoint's format (DCP) in which
every process writes, and reads back, only its own shards; found, loaded safely, pruned, converted (to_file, to_dcp:
the root's `python checkpoint.py --to_file=... | --to_dcp=...`).

A folder holds DCP's files (`.metadata`, `__<rank>_<n>.distcp`) with every tensor of the model, the optimizer and
the weight averages (FSDP's shards as they lie on each process), and `state.pt`, a small torch.save of the rest
(step, config, RNG, data position, origin, scaler, optimizer settings) in which each of those tensors is a
reference {"__dcp__": key, "shape", "dtype"}. It is written as `.ckpt_<step>.partial` and renamed by rank 0 once
every process has written its part: a kill never leaves a folder that looks finished. Single-file checkpoints
`ckpt_<step>.pt` of earlier versions load as before (every process reads the whole file).

    state, path, run_dir = checkpoint.read("out/run")        # the scripts: full tensors of a checkpoint or run
    state = checkpoint.load(path, tensors=False)             # train.py: settings first, then each process its shards
    state = checkpoint.read_tensors(state, path, rundir.run_layout(model, optimizer))

Opening a checkpoint never runs code from it: state.pt and the old files load with torch.load(weights_only=True),
DCP's tensor data too, and its `.metadata` (a pickle) with an unpickler that builds only DCP's metadata classes.
No value is stored as DCP "bytes", which DCP would unpickle with weights_only=False.
"""

import os
import pickle
import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter, metadata as dcp_metadata
from torch.distributed.checkpoint.api import CheckpointException  # a BaseException

from lab import parallel
from lab.config import write_atomically

_NAME = re.compile(r"^ckpt_(\d+)(\.pt)?$")
STATE_FILE = "state.pt"  # the non-tensor part of a folder checkpoint; its presence marks a finished folder
SHARDED = ("model", "optimizer", "swa", "ema")  # the parts whose tensors go to DCP (the RNG state stays rank 0's)
REF = "__dcp__"


@contextmanager
def _quiet_alone():
    """DCP warns that it assumes one process when no process group exists: that is meant here (scripts, tests)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit this run; one line for the user."""


def path_for(out_dir, step):
    return Path(out_dir) / f"ckpt_{step:07d}"


def _partial_path(final):
    return final.with_name(f".{final.name}.partial")


def is_finished(path):
    """A single-file checkpoint, or a folder whose writing completed."""
    path = Path(path)
    return path.is_file() or (path / STATE_FILE).is_file()


def list_checkpoints(out_dir):
    """(step, path) of every finished checkpoint in out_dir (folders, and files of earlier versions), oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), out_dir / name) for name in os.listdir(out_dir) if (m := _NAME.match(name))]
    return sorted((step, path) for step, path in found if path.suffix == ".pt" or is_finished(path))


def remove(path):
    path = Path(path)
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def save_file(state, path):
    """torch.save under a temporary name, then rename: a kill mid-write never leaves a half-written file."""
    return write_atomically(path, lambda tmp: torch.save(state, tmp))


def split_tensors(state):
    """({key: tensor} of the SHARDED parts' tensors, `state` with each replaced by its reference). Tensors that
    share storage (the tied embedding and head) are stored once and read back as one tensor."""
    tensors, keys = {}, {}

    def split(value, where):
        if isinstance(value, dict):
            return {k: split(v, (*where, k)) for k, v in value.items()}
        if not torch.is_tensor(value):
            return value
        local = value.to_local() if hasattr(value, "to_local") else value
        storage = (local.data_ptr(), tuple(value.shape), local.stride()) if local.numel() else where
        key = keys.setdefault(storage, ".".join(map(str, where)))
        tensors[key] = value
        return {REF: key, "shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
    rest = {k: split(v, (k,)) if k in SHARDED else v for k, v in state.items()}
    return tensors, rest


def save(state, out_dir, step):
    """Every process calls it with its own `state` (FSDP's DTensor shards, or full tensors that DDP replicates:
    DCP writes each of those once). Rank 0 writes the non-tensor part and renames the folder when all have written.
    Returns the checkpoint's path."""
    final = path_for(out_dir, step)
    partial = _partial_path(final)
    master = not dist.is_initialized() or dist.get_rank() == 0
    if master and partial.exists():  # left by a run killed mid-write
        shutil.rmtree(partial)
    parallel.barrier()
    tensors, rest = split_tensors(state)
    with _quiet_alone():
        dcp.save(tensors, storage_writer=FileSystemWriter(partial))  # returns once every process's files are written
    if master:
        save_file(rest, partial / STATE_FILE)
        _publish(partial, final)
    parallel.barrier()  # no process goes on before the checkpoint exists
    return final


def _publish(partial, final):
    """The rename that makes a written folder a checkpoint (one step on POSIX filesystems)."""
    if final.exists():  # the same step saved again (a run restarted from an earlier checkpoint)
        remove(final)
    os.rename(partial, final)


_METADATA_MODULES = {"torch.distributed.checkpoint.metadata"}
_METADATA_GLOBALS = {("torch", "Size"), ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"),
                     ("pathlib", "PurePosixPath"), ("torch.distributed.checkpoint.filesystem", "_StorageInfo")}


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP's metadata classes, torch.Size, dtypes and paths, and nothing else: no code runs."""

    def find_class(self, module, name):
        found = super().find_class(module, name) if (
            module in _METADATA_MODULES or (module, name) in _METADATA_GLOBALS or module == "torch") else None
        if module == "torch" and not isinstance(found, torch.dtype) and name != "Size":
            found = None
        if found is None or (module in _METADATA_MODULES and not isinstance(found, type)):
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a DCP checkpoint's metadata")
        return found


class SafeReader(FileSystemReader):
    """DCP's file reader with the safe metadata unpickler; it records the bytes this process was planned to read."""
    bytes_read = 0  # of the last load on this process: the test that each process reads only its shards

    def read_metadata(self, *args, **kwargs):
        path = self._get_metadata_path(kwargs.get("rank"))
        with self.fs.create_stream(path, "rb") as f:
            metadata = _MetadataUnpickler(f).load()
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = dcp_metadata.StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata

    def read_data(self, plan, planner):
        SafeReader.bytes_read = sum(self.storage_data[item.storage_index].length for item in plan.items)
        return super().read_data(plan, planner)


def _references(state):
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            if REF in value:
                found.append((where, value))
            for k, v in value.items():
                walk(v, (*where, k))
    walk(state, ())
    return found


def _replace(state, where, value):
    if len(where) == 1:
        return {**state, where[0]: value}
    return {**state, where[0]: _replace(state[where[0]], where[1:], value)}


def full_tensor(where, shape, dtype):
    """The layout of a tensor read by one process alone: whole, on the CPU."""
    return torch.empty(shape, dtype=dtype)


def read_tensors(state, path, layout=full_tensor):
    """`state` (from load) with every tensor of its SHARDED parts laid out as layout(where, shape, dtype) says:
    where that is a DTensor, this process reads only the parts of its shard from the folder's DCP files (under
    torchrun every process calls it: DCP agrees on a plan), or cuts its shard from an old file's full tensor."""
    refs = _references(state)
    if not refs:  # an old single file: every process holds the full tensors
        if layout is full_tensor:
            return state
        return _map_tensors(state, lambda where, t: parallel.shard_as(t, layout(where, list(t.shape), t.dtype)))
    targets = {}
    for where, ref in refs:  # an alias (a tied weight) takes the tensor of the name it was saved under
        dtype = getattr(torch, str(ref.get("dtype")), None)
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"checkpoint {path} is corrupt or unreadable (a tensor of dtype {ref.get('dtype')!r})")
        if ref[REF] not in targets:
            targets[ref[REF]] = layout(where, ref["shape"], dtype)
    try:
        with _quiet_alone():
            dcp.load(targets, storage_reader=SafeReader(path))
    except (Exception, CheckpointException) as e:  # a missing or truncated shard file, foreign metadata...
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__})"
                              f"{previous_hint(path)}") from None
    for where, ref in refs:
        state = _replace(state, where, targets[ref[REF]])
    return state


def _map_tensors(state, change):
    """`state` with each tensor of its SHARDED parts replaced by change(where, tensor)."""
    def walk(value, where):
        if isinstance(value, dict):
            return {k: walk(v, (*where, k)) for k, v in value.items()}
        return change(where, value) if torch.is_tensor(value) else value
    return {k: walk(v, (k,)) if k in SHARDED else v for k, v in state.items()}


def load(path, previous_hint="", required=("model", "step"), tensors=True):
    """Load a checkpoint (folder or old single file) safely; a missing or corrupt one, or one without the
    `required` entries, is a CheckpointError naming it. tensors=False leaves a folder's tensors as references, for
    read_tensors to read in a run's own layout (train.py); the scripts that read weights take the default."""
    path = Path(path)
    if not is_finished(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path / STATE_FILE if path.is_dir() else path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, pickled code...: all mean "unusable file"
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}){previous_hint}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of this repository (no model or step){previous_hint}")
    missing = [key for key in required if key not in state]
    if missing:  # e.g. swa.pt or ema.pt: weights only, no optimizer state to continue training from
        raise CheckpointError(f"{path} holds no {', '.join(missing)}: a weight file, not a training checkpoint"
                              f"{previous_hint}")
    return read_tensors(state, path) if tensors and path.is_dir() else state


def latest(out_dir):
    """(path, hint) of out_dir's newest checkpoint; the hint names the previous one, should this one be corrupt."""
    found = list_checkpoints(out_dir)
    if not found:
        raise CheckpointError(f"{out_dir} holds no checkpoint (ckpt_*)")  # train.py (resume) and sample.py
    return found[-1][1], previous_hint(found[-1][1])


def previous_hint(path):
    """'; the previous one is ...' naming the checkpoint saved before `path` in its folder, or ''."""
    path = Path(path)
    found = list_checkpoints(path.parent)
    older = [p for step, p in found if p != path and (m := _NAME.match(path.name)) and step < int(m.group(1))]
    return f"; the previous one is {older[-1]}, use init_from={older[-1]}" if older else ""


def read(path, required=("model", "step")):
    """What every script that reads weights calls (sample.py, export.py, swa.py, train.py through load): (state
    with full tensors, the checkpoint it came from, the run folder around it) for a checkpoint (folder or old
    file), a weight file (swa.pt, ema.pt) or a run's out_dir (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir() and not is_finished(path):
        found, hint = latest(path)
        return load(found, hint, required), found, path
    return load(path, previous_hint(path), required), path, path.parent


def load_latest(out_dir, required=("model", "step")):
    """The newest checkpoint of out_dir; if it is corrupt, say which older one is still good."""
    path, hint = latest(out_dir)
    return load(path, hint, required)


def prune(out_dir, keep_last, keep_steps=()):
    """Delete rolling checkpoints beyond the newest `keep_last` (None: none deleted; at least 1, the newest, which a
    resume needs), and folders a killed write left; steps in `keep_steps` are permanent. Rank 0 calls it between
    saves, when no folder is being written."""
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last={keep_last}: a resume needs the newest checkpoint (None keeps every one)")
    rolling = [(step, path) for step, path in list_checkpoints(out_dir) if step not in set(keep_steps)]
    for _, path in rolling[:-keep_last] if keep_last else []:
        remove(path)
    for partial in Path(out_dir).glob(".ckpt_*.partial"):
        shutil.rmtree(partial, ignore_errors=True)


# ---- conversion (the root's checkpoint.py): one file of full tensors <-> a folder ----

def _new_path(out, what):
    """`out` as a Path, refused if something is there already: a conversion never replaces a file or folder."""
    out = Path(out)
    if out.exists():
        raise CheckpointError(f"--out={out} exists: give a new {what}")
    return out


def to_file(folder, out):
    """A folder checkpoint as one torch.save file of full tensors (what earlier versions wrote)."""
    out = _new_path(out, "file")
    return save_file(load(folder, required=("step",)), out)


def to_dcp(file, out):
    """A single-file checkpoint as a folder (full tensors, written by this one process)."""
    out = _new_path(out, "folder")
    if not _NAME.match(out.name) or out.suffix:
        raise CheckpointError(f"--out={out}: a folder checkpoint is named ckpt_<step> (e.g. ckpt_0000200)")
    state = load(file, required=("step",))
    tensors, rest = split_tensors(state)
    partial = _partial_path(out)
    shutil.rmtree(partial, ignore_errors=True)
    with _quiet_alone():
        dcp.save(tensors, storage_writer=FileSystemWriter(partial))
    save_file(rest, partial / STATE_FILE)
    _publish(partial, out)
    return out
