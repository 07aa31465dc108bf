"""train.py with faults on some processes, for tests/lab/test_parallel.py: FAULT=kind:rank:step[:round], several
separated by commas.

    FAULT=sigterm:2:5 torchrun --nproc_per_node=3 tests/torchrun_fault.py <train.py arguments>
    FAULT=kill:1:4:0,kill:2:10:1 torchrun --nproc_per_node=3 --max-restarts=2 tests/torchrun_fault.py <arguments>

kinds, each when that rank asks for the batch of that step (or, for blind, when it looks for the checkpoint):
sigterm (the process sends itself SIGTERM), error (a DataError), hang (it sleeps for an hour), kill (SIGKILL: gone
without a word), stop (SIGSTOP: hung, its connections open), blind (it cannot see checkpoint files, as a node without
the shared filesystem); kill_saving: rank 0 killed while it writes the checkpoint of that step, every shard
written, the folder not yet published; and slow_line (any step): the process prints its error line 2 s late, as one
descheduled at that moment (torchrun would end it before it printed, once another process has exited). round: the
fault strikes only in that round of torchrun's restarts (TORCHELASTIC_RESTART_COUNT), in every round without it.
"""
import os
import pathlib
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import train  # noqa: E402
from lab import checkpoint, data, parallel, settings  # noqa: E402


def faults_here():
    """{step: kind} of the faults of this process in this round."""
    rank, round_ = os.environ.get("RANK", "0"), os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    found = {}
    for fault in os.environ["FAULT"].split(","):
        kind, fault_rank, step, *when = fault.split(":")
        if fault_rank == rank and when in ([], [round_]):
            found[int(step)] = kind
    return found


def strike(kind, step):
    if kind == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif kind == "error":
        raise data.DataError(f"injected fault at step {step}")
    elif kind == "hang":
        time.sleep(3600)
    elif kind in ("kill", "kill_saving"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)


faults = faults_here()
if "blind" in faults.values():
    is_file = pathlib.Path.is_file
    # neither an old single file nor a folder's state.pt: this process sees no checkpoint
    pathlib.Path.is_file = lambda path: "ckpt_" not in str(path) and is_file(path)
if "slow_line" in faults.values():
    leave = parallel.leave
    parallel.leave = lambda *args: (time.sleep(2), leave(*args))
batch, save_file = data.Dataset.train_batch, checkpoint.save_file


def faulty_batch(self, step, *args, **kwargs):
    if faults.get(step) not in (None, "blind", "kill_saving", "slow_line"):
        strike(faults[step], step)
    return batch(self, step, *args, **kwargs)


def faulty_save_file(state, path):  # rank 0 writes a checkpoint's state.pt last, once every shard is written
    if faults.get(state.get("step")) == "kill_saving" and path.name == checkpoint.STATE_FILE:
        strike("kill_saving", state["step"])
    return save_file(state, path)


data.Dataset.train_batch, checkpoint.save_file = faulty_batch, faulty_save_file
settings.run_script(train.main, sys.argv[1:])
