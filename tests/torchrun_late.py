"""Runs of train.py and sweep.py, one after the other in one process group, with every process but rank 0 arriving
LATE_S seconds late where a run prepares its out_dir, for tests/test_parallel.py. Rank 0 writes config.json moments
after that point: a process that looked at out_dir for itself would find this very run's config.json and refuse to
start. Rank 0 prints `finished: <index>` after each run.

    LATE_S=0.5 torchrun --standalone --nproc_per_node=3 tests/torchrun_late.py RUNS.json

RUNS.json: a list of [script, arguments]; script `train` (train.py's arguments) or `sweep` (sweep.py's, with the
suite `late`: a constant trunk of 6 steps and its cooldown branch to 8, at batch_size 6, which 3 processes split).
"""
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import sweep  # noqa: E402
import train  # noqa: E402
from lab import parallel, rundir, settings, suites  # noqa: E402
from sweep_mini import tiny_scale  # noqa: E402

if int(os.environ.get("RANK", 0)) != 0:
    prepare_out_dir = rundir.prepare_out_dir

    def late_prepare_out_dir(*args, **kwargs):
        time.sleep(float(os.environ.get("LATE_S", "0.5")))
        return prepare_out_dir(*args, **kwargs)

    rundir.prepare_out_dir = late_prepare_out_dir

sweep.SUITES["late"] = lambda scale: suites.trunk_and_branches("constant", {}, [8], [0.25], ["linear"])
sweep.SCALES["tiny"] = replace(tiny_scale(), common=dict(tiny_scale().common, batch_size=6, peak_tflops=1.0))
ENTRY_POINTS = dict(train=train.main, sweep=sweep.main)


def main(argv):
    procs = parallel.Processes.from_env()
    owned = parallel.init(procs, torch.device("cpu"), timeout_s=60)  # one group for every run, as sweep.py has
    for index, (script, args) in enumerate(json.loads(Path(argv[0]).read_text())):
        ENTRY_POINTS[script](args)
        if procs.master:
            print(f"finished: {index}", flush=True)
    parallel.shutdown(owned)


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:], (*settings.USER_ERRORS, sweep.Interrupted))
