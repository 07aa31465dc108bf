r"""
Cooldown branches off one constant-LR trunk: many training lengths (or cooldown lengths) from a single run.

    # 1. plan: where the branches leave the trunk, and the checkpoints the trunk must keep
    python branch.py configs/cpu_tiny.py --trunk=out/trunk --lengths=[300,600,900] --cooldown_fracs=[0.2] --plan
    # 2. the trunk: constant LR, permanent checkpoints at the branch points the plan printed
    python train.py configs/cpu_tiny.py --schedule=constant --max_steps=900 --keep_ckpt_steps=[240,480,720] \
        --out_dir=out/trunk
    # 3. the branches, one after the other: out/trunk-to300-cd60, out/trunk-to600-cd120, out/trunk-to900-cd180
    python branch.py configs/cpu_tiny.py --trunk=out/trunk --lengths=[300,600,900] --cooldown_fracs=[0.2]
    # a sweep of cooldown lengths for one training length
    python branch.py configs/cpu_tiny.py --trunk=out/trunk --lengths=[600] --cooldown_fracs=[0.05,0.1,0.2,0.4]

A branch of final length N with a cooldown of C steps starts from the trunk's checkpoint at step N - C, with the
trunk's weights, optimizer state and data position, and runs train.py with `schedule=wsd`, `max_steps=N`,
`cooldown_steps=C` into its own out_dir. Since the trunk's LR is constant up to there, the branch equals a single
wsd run of N steps, loss for loss. The trunk is never modified. Every other key (config files, --key=value) is
passed to train.py as usual, so a branch can take any `cooldown_shape` or `final_lr_frac`.
A branch that already finished is skipped, one that was interrupted is resumed, and one stopped before its first
checkpoint starts again: re-running the command after a crash completes the set.
"""

import sys

import train
from lab import checkpoint, parallel, settings
from lab.config import ConfigError, Setting, parse_args
from lab.rundir import plan_branches, start_or_resume
from schedules import schedule_args

BRANCH_SETTINGS = dict(
    trunk=Setting("", "the trunk run's out_dir; the branches go to <trunk>-to<N>-cd<C>/"),
    lengths=Setting([], "the branches' final lengths N", ">= 1", items=int),
    cooldown_fracs=Setting([0.2], "cooldowns as fractions of N (unless cooldown_steps_list is given)", "(0, 1]",
                           items=float),
    cooldown_steps_list=Setting([], "cooldowns in steps", ">= 1", items=int),
    plan=Setting(False, "print the branches and the checkpoints the trunk must keep, and train nothing"),
)


def main(argv):
    cfg = parse_args(argv, {**settings.SETTINGS, **BRANCH_SETTINGS})
    if not cfg["trunk"]:
        raise ConfigError("give the trunk run's out_dir: --trunk=out/trunk")
    branches = plan_branches(cfg["trunk"], cfg["lengths"], cfg["cooldown_fracs"], cfg["cooldown_steps_list"],
                             schedule_args(cfg))
    points = sorted({start for _, _, start, _ in branches})
    procs = parallel.Processes.from_env()
    say = print if procs.master else lambda *args, **kwargs: None
    say(f"{len(branches)} branches off {cfg['trunk']}; the trunk must keep checkpoints at "
        f"--keep_ckpt_steps=[{','.join(map(str, points))}] and run to step {max(points)} at least")
    for length, steps, start, out_dir in branches:
        say(f"  {out_dir}: steps {start} -> {length}, cooldown of {steps} steps ({steps / length:.0%})")
    if cfg["plan"]:
        return branches
    # under torchrun, one process group for all branches; rank 0 reads the folders and decides, the others follow
    owned = parallel.init(procs, parallel.setup_device(cfg["device"], procs), cfg["dist_timeout_s"])
    available = parallel.decided_by_master(lambda: branch_points(cfg["trunk"], points), procs)
    for length, steps, start, out_dir in branches:
        launch = parallel.decided_by_master(lambda: start_or_resume(out_dir, length, available[start]), procs)
        if launch is None:
            say(f"{out_dir} already finished, skipped")
            continue
        run_cfg = {key: cfg[key] for key in settings.DEFAULTS}
        run_cfg.update(schedule="wsd", max_steps=length, cooldown_steps=steps, out_dir=str(out_dir), **launch)
        say(f"{'resuming' if launch['init_from'] == 'resume' else 'starting'} {out_dir}", flush=True)
        if not train.train(run_cfg):
            break  # stopped by a signal: the remaining branches wait for the next invocation
    parallel.shutdown(owned)
    return branches


def branch_points(trunk, points):
    """{step: checkpoint path} of the trunk at every branch point, all checked before any branch runs: a long
    sequence should not fail half-way."""
    available = {step: path for step, path in checkpoint.list_checkpoints(trunk)}
    missing = [p for p in points if p not in available]
    if missing:
        raise ConfigError(f"{trunk} has no checkpoint at step(s) {missing} (it has {sorted(available) or 'none'}): "
                          f"run the trunk with --keep_ckpt_steps=[{','.join(map(str, points))}]")
    return available


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
