"""train.py with one fault on one process, for tests/test_parallel.py: FAULT=kind:rank:step.

    FAULT=sigterm:2:5 torchrun --nproc_per_node=3 tests/torchrun_fault.py <train.py arguments>

kinds, each when that rank asks for the batch of that step (or, for blind, when it looks for the checkpoint):
sigterm (the process sends itself SIGTERM), error (a DataError), hang (it sleeps for an hour), blind (it cannot see
checkpoint files, as a node without the shared filesystem).
"""
import os
import pathlib
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import train  # noqa: E402
from lab import data, settings  # noqa: E402

kind, fault_rank, fault_step = os.environ["FAULT"].split(":")
if int(os.environ.get("RANK", 0)) == int(fault_rank):
    if kind == "blind":
        is_file = pathlib.Path.is_file
        # neither an old single file nor a folder's state.pt: this process sees no checkpoint
        pathlib.Path.is_file = lambda path: "ckpt_" not in str(path) and is_file(path)
    else:
        batch = data.Dataset.train_batch

        def faulty_batch(self, step, *args, **kwargs):
            if step == int(fault_step):
                if kind == "sigterm":
                    os.kill(os.getpid(), signal.SIGTERM)
                elif kind == "error":
                    raise data.DataError(f"injected fault at step {step}")
                elif kind == "hang":
                    time.sleep(3600)
            return batch(self, step, *args, **kwargs)

        data.Dataset.train_batch = faulty_batch

settings.run_script(train.main, sys.argv[1:])
