"""sweep.py with a miniature suite ('mini': a cosine, a constant trunk and its cooldown) at a tiny scale ('tiny'),
for tests/test_sweep.py, in-process or as a script (also under torchrun):

    torchrun --standalone --nproc_per_node=2 tests/sweep_mini.py mini --scale=tiny --data_dir=... --gflops=10
"""
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sweep  # noqa: E402
from helpers import TINY_MODEL  # noqa: E402
from lab import settings, suites  # noqa: E402
from lab.config import parse_args  # noqa: E402


def mini_suite(scale):
    return [suites.Run("cosine_16", dict(schedule="cosine", max_steps=16)),
            *suites.trunk_and_branches("constant", {}, [16], [0.25], ["linear"])]


def tiny_scale():
    common = parse_args([*TINY_MODEL, "--eval_interval=8", "--log_interval=4", "--ckpt_interval=8",
                         "--keep_last_ckpts=1", "--dtype=float32"], settings.DEFAULTS, settings.TYPES)
    return replace(sweep.SCALES["quick"], common=common)


if __name__ == "__main__":
    sweep.SUITES["mini"], sweep.SCALES["tiny"] = mini_suite, tiny_scale()
    settings.run_script(sweep.main, sys.argv[1:], (*settings.USER_ERRORS, sweep.Interrupted))
