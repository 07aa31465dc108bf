"""
Convert a checkpoint between the two formats lab/checkpoint.py reads (one process, not under torchrun):

    python checkpoint.py --to_file=out/run/ckpt_0000200 --out=run_200.pt      # one torch.save file of full tensors
    python checkpoint.py --to_dcp=run_200.pt --out=out/run2/ckpt_0000200       # and back to a folder

A run writes folders (`ckpt_<step>/`: torch.distributed.checkpoint shards of every process, and state.pt); a single
file is what earlier versions wrote and what some tools want. Either loads in train.py, swa.py, sample.py and
export.py, under any number of processes.
"""

import os
import sys

from lab.checkpoint import CheckpointError, to_dcp, to_file
from lab.config import ConfigError, Setting, fail, parse_args

SETTINGS = dict(
    to_file=Setting("", "a folder checkpoint (ckpt_<step>) to write as one file"),
    to_dcp=Setting("", "a single-file checkpoint to write as a folder"),
    out=Setting("", "the file or folder to write; it must not exist"),
)


def main(argv):
    cfg = parse_args(argv, SETTINGS)
    if bool(cfg["to_file"]) == bool(cfg["to_dcp"]) or not cfg["out"]:
        raise ConfigError("give --to_file=FOLDER or --to_dcp=FILE, and --out=PATH")
    if "RANK" in os.environ:
        raise ConfigError("convert with one process (python checkpoint.py), not under torchrun")
    written = to_file(cfg["to_file"], cfg["out"]) if cfg["to_file"] else to_dcp(cfg["to_dcp"], cfg["out"])
    print(f"wrote {written}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ConfigError, CheckpointError) as e:
        fail(str(e))
