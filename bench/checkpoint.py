"""
Checkpoint save and resume under FSDP2, today's format (DCP: each process writes and reads its own shards) against
the single file of earlier versions (full tensors gathered to rank 0, torch.save; every process torch.loads the
whole file): wall time and peak host memory (RSS) of each process, on the CPU with gloo.

    torchrun --standalone --nproc_per_node=3 -m bench.checkpoint                     # 124M, GPT-2 vocabulary, fp32
    torchrun --standalone --nproc_per_node=3 -m bench.checkpoint --model=33m --dir=/scratch   # on that disk

Each phase starts with the process's peak RSS reset (Linux: /proc/self/clear_refs), so `peak +GiB` is what the phase
itself added above the memory it started with (the model's and AdamW's own shards). Phases: `dcp save`,
`dcp async save` (the pause until dcp.async_save returns, then the whole write), `dcp resume`, `file save`,
`file resume`. Rank 0 prints one table. The checkpoints go to a new folder of the bench's own inside --dir
(a folder every process sees), which is deleted at the end; nothing else in --dir is touched.
"""

import ctypes
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

from lab import checkpoint, parallel, rundir, settings
from lab.config import ConfigError, Setting, parse_args
from model import GPT, PRESETS, GPTConfig, padded_vocab_size

SETTINGS = dict(
    model=Setting("124m", "a preset of model.PRESETS", tuple(PRESETS)),
    vocab_size=Setting(50257, "the vocabulary (padded as train.py pads it)", ">= 1"),
    dir=Setting(tempfile.gettempdir(), "the bench writes a folder of its own inside this one, and deletes it"),
)
GB = 1024 ** 3  # GiB
LIBC = ctypes.CDLL("libc.so.6")


def memory_gb(field):
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, in GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / GB
    return float("nan")


def measured(phase):
    """(result of phase(), seconds, RSS at the start in GiB, peak RSS during it above the start in GiB)."""
    gc.collect()
    LIBC.malloc_trim(0)  # what earlier phases freed goes back to the system, not into this phase's start RSS
    parallel.barrier()
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS (VmHWM) restarts from the current RSS
    start_rss = memory_gb("VmRSS")
    start = time.perf_counter()
    result = phase()
    parallel.barrier()  # a save or resume ends when every process has finished it
    return result, time.perf_counter() - start, start_rss, memory_gb("VmHWM") - start_rss


def training_state(model, optimizer):
    return dict(model=get_model_state_dict(model), optimizer=optimizer.state_dict(), step=1)


def resume(path, model, optimizer):
    """What rundir.restore_training_state does with the tensors: read (or cut) this process's shards, load them."""
    state = checkpoint.load(path, required=("model", "optimizer"), tensors=False)
    state = checkpoint.read_tensors(state, path, rundir.run_layout(model, optimizer))
    set_model_state_dict(model, state["model"])
    optimizer.load_state_dict(state["optimizer"])


def save_file(model, optimizer, path):
    """The earlier format: every shard gathered into full tensors, which rank 0 writes as one file."""
    full = parallel.gathered(training_state(model, optimizer))
    if dist.get_rank() == 0:
        checkpoint.save_file(full, path)


def async_save(model, optimizer, path):
    """dcp.async_save: (seconds until it returns, i.e. the training pause), then waits for the write itself."""
    tensors, _ = checkpoint.split_tensors(training_state(model, optimizer))
    start = time.perf_counter()
    future = dcp.async_save(tensors, storage_writer=dcp.FileSystemWriter(path))
    pause = time.perf_counter() - start
    future.result()
    return pause


def main(argv):
    cfg = parse_args(argv, SETTINGS)
    if "RANK" not in os.environ:
        raise ConfigError("run under torchrun (see the docstring)")
    if not Path(cfg["dir"]).is_dir():
        raise ConfigError(f"--dir={cfg['dir']} is not a folder")
    procs = parallel.Processes.from_env()
    parallel.init(procs, torch.device("cpu"), 1800)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=padded_vocab_size(cfg["vocab_size"]), block_size=64, **PRESETS[cfg["model"]]))
    parallel.wrap(model, procs, torch.device("cpu"), compile=False, parallelism="fsdp")
    optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=1e-4)
    for p in model.parameters():  # one step on zero gradients: AdamW's moments exist, as in a real checkpoint
        p.grad = torch.zeros_like(p)
    optimizer.step()
    # a new folder inside --dir, made by rank 0 for every process: the only thing the bench deletes
    out = Path(parallel.decided_by_master(lambda: tempfile.mkdtemp(prefix="bench_checkpoint_", dir=cfg["dir"]), procs))
    state_gb = sum(t.numel() * t.element_size() for t in checkpoint.split_tensors(  # a DTensor's numel is global
        dict(model=model.state_dict(), optimizer=optimizer.state_dict()))[0].values()) / GB
    phases = {
        "dcp save": lambda: checkpoint.save(training_state(model, optimizer), out, 1),
        "dcp async save": lambda: async_save(model, optimizer, out / "async"),
        "dcp resume": lambda: resume(checkpoint.path_for(out, 1), model, optimizer),
        "file save": lambda: save_file(model, optimizer, out / "ckpt_0000002.pt"),
        "file resume": lambda: resume(out / "ckpt_0000002.pt", model, optimizer),
    }
    rows = {name: measured(phase) for name, phase in phases.items()}
    rows = parallel.gather({name: dict(s=s, start_gb=rss, peak_gb=peak, pause_s=result if name == "dcp async save"
                                       else None) for name, (result, s, rss, peak) in rows.items()})
    if procs.master:
        params = sum(p.numel() for p in model.parameters())
        print(f"{cfg['model']}: {params / 1e6:.0f}M parameters, model + AdamW state {state_gb:.2f} GiB in fp32 "
              f"(~{state_gb / procs.world_size:.2f} GiB per process), {procs.world_size} processes, gloo, "
              f"torch {torch.__version__}")
        print(f"{'phase':16} {'seconds':>8}   " + "   ".join(f"rank {r}: start, peak +GiB" for r in range(len(rows))))
        for name in phases:
            cells = [f"{ranks[name]['start_gb']:6.2f}, {ranks[name]['peak_gb']:+6.2f}     " for ranks in rows]
            pause = rows[0][name]["pause_s"]
            extra = f"  (pause {pause:.2f} s)" if pause is not None else ""
            print(f"{name:16} {rows[0][name]['s']:8.2f}   " + "   ".join(cells) + extra)
        shutil.rmtree(out, ignore_errors=True)
    parallel.shutdown(True)


if __name__ == "__main__":  # one line for bad input; under torchrun each process exits at once when done (FSDP2)
    settings.run_script(main, sys.argv[1:], (ConfigError, checkpoint.CheckpointError))
