"""
Experiment suites, one per claim of the paper (C1-C8 of ../shared/PAPER.md): run them one after the other,
resumable, and gather each finished run's logs under results/ for plot.py.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes   # once: the data of the cpu and quick scales
    python sweep.py all --plan                                   # every run with its steps, tokens, estimated time
    python sweep.py c4_cooldown_shapes                           # one suite at the cpu scale
    python sweep.py all                                          # every suite at the cpu scale (1 h 04 min on 2 cores)
    python sweep.py all --scale=quick                            # fewer, shorter runs (45, 14 min): a smoke test
    python sweep.py c8_scaling --scale=paper --plan              # the paper's own runs, for GPUs
    python sweep.py all --gflops=180                             # estimate with a given rate instead of timing

Suites: c1_cosine_lengths, c2_c3_lr_sweep, c4_cooldown_shapes, c5_cooldown_lengths, c6_swa, c7_schedulefree,
c8_scaling, c9_merge (checkpoint merging, WSM), or all. A run trains in-process with train.train into
<out_root>/<suite>/<run>/; when it finishes, its config.json and metrics.jsonl are copied to
<results>/<suite>/<run>/ (no checkpoints; the copy appears in one rename, so a result that exists is complete). A
run whose result exists is skipped, and one that was stopped (Ctrl-C, SIGTERM, a crash) resumes from its latest
checkpoint: re-running the command completes the suite. A run whose loss became non-finite (too high an LR in the C3
grid) is kept as a result with an error.txt. Branches (cooldowns) start from a checkpoint of their trunk, exactly
like branch.py: the trunk, listed first, keeps its checkpoints at the branch points (keep_ckpt_steps).
Defaults: --results=results and --out_root=out/sweeps at the cpu scale, results_<scale> and out/sweeps_<scale>
at the others, so that the scales never mix. A result or out_dir made with other settings is an error.

The estimated time: FLOPs (model.flops_per_token, Chinchilla's count, times the training tokens, plus the
evaluations as forward passes) divided by a rate in FLOP/s, measured at plan time for each model of the plan (the
fastest of 3 training steps), or given with --gflops. It leaves out logging and checkpoints, and a busy machine
makes the measured rate low and the estimate long.

The cpu scale (bytes tokenizer, stdlib corpus, data/stdlib-bytes): models of 0.13M-1M parameters, batch 16 x 256
tokens (4096 tokens/step: far more steps per token than batch 32, and tokens/step per parameter closer to the
paper's 0.1M tokens for ~100M parameters), warmup 30 steps, evaluation on 32768 fixed tokens every 50 steps.
Lengths 300 / 600 / 1200 steps (1.2M-4.9M tokens; cpu_tiny's val loss is ~2.3 nats after a 100-step cosine and
still falling fast, so these lengths leave the schedules room to differ; 20 % cooldowns are 60-240 steps, 2.5 % of
600 is still 15). Peak LRs: cosine 6e-3, constant 3e-3 (the paper's 2:1; its 33M models, 3x wider than cpu_tiny,
use 2e-3 / 1e-3; c2_c3_lr_sweep checks both around them, a factor 2 apart).
Cooldowns are 20 % 1-sqrt unless the suite varies them; C2 uses 20 % linear as the paper. The whole cpu scale
took 1 h 04 min on the 2 idle cores of the development machine (70 runs).
  c1_cosine_lengths   cosine_{300,600,1200}; cosine_cycle300_600 runs past its cycle (LR stays at 10 %).
                      A cosine stopped before its cycle ends is cosine_1200 read at steps 300 and 600.
  c2_c3_lr_sweep      cosine and wsd (20 % linear cooldown) at 600 steps, LR 1.5e-3 ... 1.2e-2 (x2 apart).
  c4_cooldown_shapes  one constant trunk; 20 % cooldowns to 300 and to 1200 steps with the shapes linear,
                      1-sqrt (= 1-x^0.5), cosine, square (= 1-x^2), 1-x^0.3 and 1-x^0.7.
  c5_cooldown_lengths one constant trunk; cooldowns of 2.5, 5, 10, 20, 40 % to 600 and to 1200 steps.
  c6_swa              a constant run with SWA (windows of 100 steps) and its 20 % cooldown; a cosine with SWA.
                      The shorter cosines to compare with are c1's (same LR and data).
  c7_schedulefree     schedule-free AdamW at LR 6e-3 with betas (0.9, 0.95) and (0.95, 0.99) vs wsd, 600 steps.
  c8_scaling          cpu_130k, cpu_250k, cpu_500k, cpu_tiny: cosine at 300/600/1200 steps, and one constant
                      trunk with SWA (to 960) with 20 % cooldowns to 300, 600 and 1200.
  c9_merge            a constant trunk with SWA to 1200 keeping checkpoints every 20 steps over 240-300, 480-600 and
                      960-1200, its 20 % linear and 1-sqrt cooldowns; then (no training) merges of those windows'
                      checkpoints, uniform, linear and 1-sqrt (swa.py --merge), as results/c9_merge/merge-<shape>/.
The quick scale keeps the cpu settings with 100 / 200 / 400 steps, 2 LRs, 2 shapes, 2 fractions, 3 sizes
(45 runs in 13 min 47 s end to end, then plot.py on its results in 5 s).
The paper scale uses configs/paper.py (SlimPajama, seq 512, batch 200, warmup 300), the 124M model for c1-c7,
and for c8 the eight sizes 33M-360M with their token budgets and LRs from PAPER.md.
"""

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

import checkpoint
import train
from branch import launch_settings, plan_branches
from config import ConfigError, parse_args, read_json
from data import Dataset
from evaluation import autocast_for
from model import GPT, flops_per_token
import parallel
import swa
from parallel import setup_device

REPO = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Run:
    """One training run of a suite: its name, its settings over the scale's common ones, and for a branch, the
    trunk run it starts from and the trunk's step there."""
    name: str
    overrides: dict
    trunk: str | None = None
    branch_step: int | None = None


@dataclass(frozen=True)
class Scale:
    common: dict  # settings shared by every run of the scale
    vocab_size: int  # the tokenizer's, for the FLOPs of the plan before any data is read
    model: str  # the model of c1-c7
    lengths: tuple  # short, mid, long run lengths in steps
    lr_cosine: float
    lr_constant: float
    lr_grid_cosine: tuple  # c2_c3_lr_sweep's peak LRs of each schedule: the optimum inside, sqrt(2) apart near it
    lr_grid_wsd: tuple
    shapes: tuple  # c4's cooldown shapes
    cooldown_fracs: tuple  # c5's cooldown fractions
    sizes: tuple  # c8: (model preset, (3 lengths in steps), ((cosine LR, constant LR), ...)) per size
    seeds: tuple = (1337,)  # the seeds of every run that decides a claim (c2_c3, c4, c7)
    noise_seeds: tuple = ()  # c4's extra (seed, data_seed) trunks with 1-sqrt cooldowns only: the seed-to-seed spread
    c4_lengths: tuple | None = None  # c4's lengths (None: the short and the long one)
    c4_shapes: tuple | None = None  # None: `shapes`
    schedulefree: tuple = ()  # c7: ((beta1, beta2), (its LRs)) per pair of betas
    c7_wsd_lrs: tuple = ()  # c7: the cooldown runs' peak LRs
    c7_length: int | None = None  # None: the mid length
    suites: tuple | None = None  # the suites of `all` (None: every suite)
    gflops: float | None = None  # assumed rate; None: measure it
    cooldown_shape: str = "1-sqrt"


CPU_COMMON = dict(data_dir="data/stdlib-bytes", dtype="bfloat16", batch_size=16, seq_len=256, warmup_steps=30,
                  eval_interval=50, eval_tokens=32768, eval_batch_size=32, log_interval=10, ckpt_interval=100,
                  keep_last_ckpts=1, swa_interval=5, swa_window=100)
CPU_SIZES = ("cpu_130k", "cpu_250k", "cpu_500k", "cpu_tiny")
SHAPES = ("linear", "1-sqrt", "cosine", "square", "1-x^0.3", "1-x^0.7")
# PAPER.md: token budgets (billions) per size, and peak LRs (cosine, constant): 2e-3/1e-3 up to 93M, then halved
PAPER_BUDGETS = {"33m": (0.3, 0.7, 1.0), "53m": (0.4, 0.8, 1.2), "60m": (0.8, 1.3, 1.8), "93m": (1.0, 1.8, 2.6),
                 "124m": (1.5, 2.6, 3.6), "151m": (2.6, 3.8, 5.1), "210m": (3.8, 5.1, 6.4), "360m": (5.1, 7.7, 10.2)}
PAPER_COMMON = parse_args([str(REPO / "configs" / "paper.py")], train.DEFAULTS, train.TYPES)


def paper_steps(billions):
    return tuple(round(b * 1e9 / (PAPER_COMMON["batch_size"] * PAPER_COMMON["seq_len"])) for b in billions)


def paper_lrs(size):
    return (2e-3, 1e-3) if size in ("33m", "53m", "60m", "93m") else (1e-3, 5e-4)


CPU = Scale(common=CPU_COMMON, vocab_size=257, model="cpu_tiny", lengths=(300, 600, 1200),
            lr_cosine=6e-3, lr_constant=3e-3,
            # sqrt(2) apart around the previous pipeline's optima: cosine 6e-3, wsd 1.5e-3 (then its grid's lowest)
            lr_grid_cosine=(3e-3, 4.24e-3, 6e-3, 8.49e-3), lr_grid_wsd=(7.5e-4, 1.06e-3, 1.5e-3, 2.12e-3, 3e-3),
            shapes=SHAPES, cooldown_fracs=(0.025, 0.05, 0.1, 0.2, 0.4),
            # the three smaller models at the shared LRs and at half of them; cpu_tiny's grid is c2_c3's
            sizes=tuple((m, (300, 600, 1200), ((6e-3, 3e-3), (3e-3, 1.5e-3)) if m != "cpu_tiny" else ((6e-3, 3e-3),))
                        for m in CPU_SIZES),
            seeds=(1337, 1338), noise_seeds=((1339, None), (1337, 1338), (1337, 1339)),
            schedulefree=(((0.9, 0.95), (3e-3, 6e-3, 1.2e-2)), ((0.95, 0.99), (3e-3, 6e-3))),
            c7_wsd_lrs=(3e-3,))
SCALES = {
    "cpu": CPU,
    # c4 and c7 at 600-4800 steps: the long runs the cpu scale's 2 hours leave out (c4's 1-sqrt advantage is said
    # to grow with length, and schedule-free to need long runs)
    "long": replace(CPU, lengths=(600, 2400, 4800), c4_lengths=(600, 2400, 4800), c4_shapes=("linear", "1-sqrt", "1-x^0.3"),
                    noise_seeds=(), schedulefree=(((0.9, 0.95), (3e-3, 6e-3, 1.2e-2)),), c7_length=2400,
                    suites=("c4_cooldown_shapes", "c7_schedulefree")),
    "quick": Scale(common=CPU_COMMON, vocab_size=257, model="cpu_tiny", lengths=(100, 200, 400),
                   lr_cosine=6e-3, lr_constant=3e-3, lr_grid_cosine=(3e-3, 6e-3), lr_grid_wsd=(3e-3, 6e-3),
                   shapes=("linear", "1-sqrt"), cooldown_fracs=(0.05, 0.2),
                   sizes=tuple((m, (100, 200, 400), ((6e-3, 3e-3),)) for m in CPU_SIZES[:3]),
                   noise_seeds=((1337, 1338),), schedulefree=(((0.9, 0.95), (6e-3,)),), c7_wsd_lrs=(3e-3,)),
    "paper": Scale(common=PAPER_COMMON, vocab_size=50257, model="124m", lengths=paper_steps(PAPER_BUDGETS["124m"]),
                   lr_cosine=1e-3, lr_constant=5e-4, lr_grid_cosine=(2.5e-4, 5e-4, 1e-3, 2e-3),
                   lr_grid_wsd=(2.5e-4, 5e-4, 1e-3, 2e-3), shapes=SHAPES, cooldown_fracs=(0.025, 0.05, 0.1, 0.2, 0.4),
                   sizes=tuple((m, paper_steps(b), (paper_lrs(m),)) for m, b in PAPER_BUDGETS.items()),
                   schedulefree=(((0.9, 0.95), (1e-3,)), ((0.95, 0.99), (1e-3,))), c7_wsd_lrs=(5e-4,),
                   gflops=8 * 312e3 * 0.4),  # assumed: 8 A100s at 40 % MFU
}


# ---------------------------------------------------------------------------------------------------------
# the suites: functions of the scale returning their runs, trunks before their branches


def cosine(steps, lr, **extra):
    return dict(schedule="cosine", lr=lr, max_steps=steps, **extra)


def wsd(steps, lr, shape, **extra):
    return dict(schedule="wsd", lr=lr, max_steps=steps, cooldown_frac=0.2, cooldown_shape=shape, **extra)


def seed_tag(seed, data_seed=None):
    """The end of a seeded run's name: _seed1338, or _seed1337_data1338 when only the data order differs."""
    return f"_seed{seed}" + ("" if data_seed is None else f"_data{data_seed}")


def seeded(seed, data_seed=None):
    return dict(seed=seed) if data_seed is None else dict(seed=seed, data_seed=data_seed)


def trunk_and_branches(trunk, settings, lengths, cooldown_fracs, shapes, trunk_extra=None, trunk_steps=None,
                       name_shapes=None):
    """A constant-LR run `trunk` and its cooldown branches (branch.py's plan: a branch of N steps with a C-step
    cooldown leaves the trunk at step N - C), one per length, cooldown fraction and shape; the shape is named in
    the branch's name when there are several (or name_shapes says so). The trunk keeps its checkpoints at every
    branch point and runs to the last one, or to `trunk_steps`."""
    branches = []
    for length, cooldown, start, out_dir in plan_branches(trunk, lengths, cooldown_fracs, []):
        for shape in shapes:
            suffix = f"-{shape.replace('^', '')}" if (len(shapes) > 1 if name_shapes is None else name_shapes) else ""
            overrides = dict(settings, schedule="wsd", max_steps=length, cooldown_steps=cooldown, cooldown_shape=shape)
            branches.append(Run(out_dir.name + suffix, overrides, trunk=trunk, branch_step=start))
    points = sorted({b.branch_step for b in branches})
    trunk_run = Run(trunk, dict(settings, **(trunk_extra or {}), schedule="constant",
                                max_steps=trunk_steps or points[-1], keep_ckpt_steps=points))
    return [trunk_run, *branches]


def c1_cosine_lengths(s):
    short, mid, _ = s.lengths
    runs = [Run(f"cosine_{n}", cosine(n, s.lr_cosine, model=s.model)) for n in s.lengths]
    # past its cycle: the LR stays at the final 10 % (the cosine of `mid` steps stopped early is cosine_<long>)
    return runs + [Run(f"cosine_cycle{short}_{mid}", cosine(mid, s.lr_cosine, model=s.model, cycle_steps=short))]


def c2_c3_lr_sweep(s):
    """Cosine and wsd (20 % linear cooldown) at the mid length over each one's LR grid, at every seed."""
    mid = s.lengths[1]
    return ([Run(f"cosine_lr{lr:g}{seed_tag(seed)}", cosine(mid, lr, model=s.model, seed=seed))
             for lr in s.lr_grid_cosine for seed in s.seeds] +
            [Run(f"wsd_linear_lr{lr:g}{seed_tag(seed)}", wsd(mid, lr, "linear", model=s.model, seed=seed))
             for lr in s.lr_grid_wsd for seed in s.seeds])


def c4_cooldown_shapes(s):
    """One constant trunk per seed with cooldowns of every shape; then the noise study: trunks of more seeds, and
    of the first seed with only the data order changed, with 1-sqrt cooldowns (the same lengths)."""
    lengths = s.c4_lengths or (s.lengths[0], s.lengths[-1])
    runs = []
    for seed in s.seeds:
        runs += trunk_and_branches(f"constant{seed_tag(seed)}", dict(model=s.model, lr=s.lr_constant, seed=seed),
                                   lengths, [0.2], s.c4_shapes or s.shapes, name_shapes=True)
    for seed, data_seed in s.noise_seeds:
        runs += trunk_and_branches(f"constant{seed_tag(seed, data_seed)}",
                                   dict(model=s.model, lr=s.lr_constant, **seeded(seed, data_seed)),
                                   lengths, [0.2], [s.cooldown_shape], name_shapes=True)
    return runs


def c5_cooldown_lengths(s):
    _, mid, long = s.lengths
    return trunk_and_branches("constant", dict(model=s.model, lr=s.lr_constant), [mid, long], s.cooldown_fracs,
                              [s.cooldown_shape])


def c6_swa(s):
    long = s.lengths[2]
    constant = trunk_and_branches("constant_swa", dict(model=s.model, lr=s.lr_constant), [long], [0.2],
                                  [s.cooldown_shape], trunk_extra=dict(swa=True), trunk_steps=long)
    return constant + [Run(f"cosine_swa_{long}", cosine(long, s.lr_cosine, model=s.model, swa=True))]


def c7_schedulefree(s):
    """Schedule-free AdamW over its own LR grid for each pair of betas, and wsd (20 % 1-sqrt) at its LRs, at the
    same length and every seed."""
    length = s.c7_length or s.lengths[1]
    runs = [Run(f"schedulefree_b{b1:g}_{b2:g}_lr{lr:g}{seed_tag(seed)}",
                dict(model=s.model, optimizer="adamw_schedulefree", schedule="constant", lr=lr, max_steps=length,
                     beta1=b1, beta2=b2, seed=seed))
            for (b1, b2), lrs in s.schedulefree for lr in lrs for seed in s.seeds]
    return runs + [Run(f"wsd_{length}_lr{lr:g}{seed_tag(seed)}", wsd(length, lr, s.cooldown_shape, model=s.model,
                                                                     seed=seed))
                   for lr in s.c7_wsd_lrs for seed in s.seeds]


def c9_merge(s):
    """Checkpoint merging instead of a cooldown (WSM, arXiv 2507.17634): a constant trunk with SWA that keeps its
    checkpoints every third of the shortest cooldown over the window of each 20 % cooldown, merged afterwards by
    merge_trunk, and the real linear and 1-sqrt cooldowns from the windows' starts."""
    runs = trunk_and_branches("constant_swa", dict(model=s.model, lr=s.lr_constant), s.lengths, [0.2],
                              ["linear", "1-sqrt"], trunk_extra=dict(swa=True), trunk_steps=s.lengths[-1])
    every = max(1, round(runs[1].overrides["cooldown_steps"] / 3))  # cpu: 20 steps, 4-13 checkpoints per window
    keep = sorted({step for start, end in merge_windows(runs) for step in (*range(start, end, every), end)})
    return [replace(runs[0], overrides=dict(runs[0].overrides, keep_ckpt_steps=keep)), *runs[1:]]


def merge_windows(runs):
    """[(first step, last step)] of the branches' cooldowns: the trunk's checkpoints a merge replaces them with."""
    return sorted({(run.branch_step, run.overrides["max_steps"]) for run in runs if run.trunk})


def c8_scaling(s):
    """Per size, at each of its (cosine LR, constant LR) pairs: cosine runs at its 3 lengths, and one constant
    trunk with SWA and 20 % cooldowns to them. A size with several pairs names the LR in its runs' names."""
    runs = []
    for model, lengths, lr_pairs in s.sizes:
        for lr_cosine, lr_constant in lr_pairs:
            tag = f"_lr{lr_cosine:g}" if len(lr_pairs) > 1 else ""
            runs += [Run(f"{model}_cosine_{n}{tag}", cosine(n, lr_cosine, model=model)) for n in lengths]
            runs += trunk_and_branches(f"{model}_constant{tag}", dict(model=model, lr=lr_constant), lengths, [0.2],
                                       [s.cooldown_shape], trunk_extra=dict(swa=True))
    return runs


SUITES = {f.__name__: f for f in (c1_cosine_lengths, c2_c3_lr_sweep, c4_cooldown_shapes, c5_cooldown_lengths,
                                  c6_swa, c7_schedulefree, c8_scaling, c9_merge)}


# ---------------------------------------------------------------------------------------------------------
# the plan: every run's full config and its estimated time

# Keys that say where a run lives or how it started, not what it trains: they may differ between attempts.
WHERE = ("out_dir", "data_dir", "init_from", "overwrite", "device", "compile")


def run_config(scale, suite, run, out_root, data_dir):
    cfg = {**train.DEFAULTS, **scale.common, **run.overrides, "out_dir": str(Path(out_root) / suite / run.name)}
    cfg["data_dir"] = data_dir or cfg["data_dir"]
    return cfg


def estimate_flops(cfg, vocab_size, start=0):
    """Training FLOPs from `start` to max_steps, plus the evaluations (forward passes: a third of a training
    step's FLOPs per token; every eval_interval steps, at the start and at the cooldown's start; twice with SWA)."""
    mconf = train.model_config(cfg, vocab_size)
    per_token = flops_per_token(mconf, cfg["seq_len"])["chinchilla"]
    steps = cfg["max_steps"] - start
    evals = cfg["max_steps"] // cfg["eval_interval"] - start // cfg["eval_interval"] + 2
    eval_tokens = evals * cfg["eval_tokens"] * (1 + cfg["swa"] + cfg["ema"])
    return per_token * (steps * cfg["batch_size"] * cfg["seq_len"] + eval_tokens / 3)


def measure_flops_per_s(cfg, vocab_size, steps=3):
    """FLOP/s of the fastest of `steps` training steps (after an untimed one) of cfg's model on random tokens: the
    fastest, because another process can slow any one step down."""
    device = setup_device(cfg["device"], 0)
    mconf = train.model_config(cfg, vocab_size)
    model = GPT(mconf).to(device)
    optimizer = train.make_optimizer(dict(cfg, optimizer="adamw"), model, device)  # the model's rate, any optimizer
    tokens = torch.randint(0, vocab_size, (cfg["batch_size"], cfg["seq_len"] + 1), device=device)
    autocast = autocast_for(device, getattr(torch, cfg["dtype"]))

    def step():
        with autocast:
            _, loss = model(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()  # waits for the device

    step()
    best = math.inf
    for _ in range(steps):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return cfg["batch_size"] * cfg["seq_len"] * flops_per_token(mconf, cfg["seq_len"])["chinchilla"] / best


def duration(seconds):
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{seconds / 60:.1f}m"


def print_plan(entries, scale, rates, source, done=()):
    """entries: (suite, run, cfg); rates: FLOP/s per model; done: the (suite, run name) whose results exist, left
    out of the totals. Prints each run and the totals; returns the estimated seconds."""
    print(f"FLOPs: model.flops_per_token (Chinchilla) x tokens, evaluations included; rates ({source}): " +
          ", ".join(f"{model} {rate / 1e9:,.0f} GFLOP/s" for model, rate in rates.items()))
    total_seconds, total_tokens, suite = 0.0, 0, None
    for name, run, cfg in entries:
        if name != suite:
            suite = name
            print(f"{suite}:")
        start = run.branch_step or 0
        tokens = (cfg["max_steps"] - start) * cfg["batch_size"] * cfg["seq_len"]
        seconds = estimate_flops(cfg, scale.vocab_size, start) / rates[cfg["model"]]
        finished = (name, run.name) in done
        if not finished:
            total_seconds, total_tokens = total_seconds + seconds, total_tokens + tokens
        origin = (f"  (from {run.trunk})" if run.trunk else "") + ("  done" if finished else "")
        print(f"  {run.name:<34} {cfg['model']:>9} steps {start:>6} -> {cfg['max_steps']:<6} "
              f"{tokens / 1e6:9.1f}M tokens {duration(seconds):>8}{origin}")
    print(f"total: {len(entries) - len(done)} runs to do ({len(done)} done), {total_tokens / 1e6:,.1f}M tokens, "
          f"estimated {duration(total_seconds)}")
    return total_seconds


# ---------------------------------------------------------------------------------------------------------
# running: skip what is done, resume what was stopped, publish what finished


class Interrupted(RuntimeError):
    """A run stopped before its last step (a signal): re-running the same command resumes it."""


def differences(planned, recorded):
    return [f"{k}={recorded[k]!r} (planned {planned[k]!r})" for k in planned
            if k not in WHERE and k in recorded and recorded[k] != planned[k]]


def check_same_settings(cfg, config_json):
    """A result or out_dir made with other settings (an older suite definition, another scale) must not pass for
    this run: say so rather than skip or resume it."""
    if config_json.exists():
        info = read_json(config_json)
        if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
            raise ConfigError(f"{config_json} is not a train.py config.json: delete it, or use another --results / "
                              f"--out_root")
        differ = differences(cfg, info["config"])
        if differ:
            raise ConfigError(f"{config_json.parent} holds a run with other settings ({', '.join(differ)}): "
                              f"delete it, or use another --results / --out_root")


def publish(out_dir, result_dir, error=None, same_as=None):
    """Copy the logs to result_dir in one rename: a result directory that exists is always complete. `same_as`:
    the logs are another suite's result of the same run (out_dir is that result), named in same_as.txt."""
    partial = result_dir.with_name(result_dir.name + ".partial")  # beside it: a rename within one file system
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy2(out_dir / name, partial / name)
    if error:
        (partial / "error.txt").write_text(error + "\n")
    if same_as:
        (partial / "same_as.txt").write_text(f"{same_as}: the same settings, trained once\n")
    os.replace(partial, result_dir)


# A run with exactly these settings trains the same numbers whatever its suite: one kept as a result elsewhere
# is copied instead of trained again (c8's cpu_tiny cosines are c1's, c1's cosine_600 is in c2_c3's grid).
NOT_WHAT_IT_TRAINS = (*WHERE, "keep_ckpt_steps", "ckpt_interval", "keep_last_ckpts", "log_interval")


def same_result(cfg, results):
    """The finished result (not a diverged one) under `results` of a from-scratch run with cfg's settings, or None."""
    for config_json in sorted(Path(results).glob("*/*/config.json")):
        info = read_json(config_json)
        recorded = info.get("config", {})
        if (not (config_json.parent / "error.txt").exists() and info.get("origin") is None  # not a branch
                and "merge" not in info and all(k in recorded and recorded[k] == v for k, v in cfg.items() if k not in NOT_WHAT_IT_TRAINS)):
            return config_json.parent
    return None


def decide(suite, run, cfg, results, out_root):
    """What to do with one run: 'skip' (its result exists), None (finished: publish it), {'same_as': result} (a
    result of the same run exists in another suite: copy it) or the settings that launch it (resume it, or start
    it, from its trunk for a branch). ConfigError if the folders hold another run."""
    result_dir, out_dir = Path(results) / suite / run.name, Path(cfg["out_dir"])
    check_same_settings(cfg, result_dir / "config.json")
    if result_dir.exists():
        return "skip"
    check_same_settings(cfg, out_dir / "config.json")
    if not run.trunk and not out_dir.exists() and (same := same_result(cfg, results)):
        return dict(same_as=str(same))
    source = checkpoint.path_for(Path(out_root) / suite / run.trunk, run.branch_step) if run.trunk else "scratch"
    launch = launch_settings(out_dir, cfg["max_steps"], source)
    if launch and launch["init_from"] != "resume" and run.trunk and not source.exists():
        raise ConfigError(f"{suite}/{run.name} branches off {run.trunk} at step {run.branch_step}, but "
                          f"{source} does not exist: delete {Path(results) / suite / run.trunk} to re-run the trunk")
    return launch


def execute(suite, run, cfg, results, out_root, procs):
    """Run (or resume, or skip) one run and publish it. Returns its error message if its loss diverged."""
    say = print if procs.master else lambda *args, **kwargs: None
    launch = parallel.decided_by_master(lambda: decide(suite, run, cfg, results, out_root), procs)
    if launch == "skip":
        say(f"{suite}/{run.name}: done, skipped")
        return None
    result_dir, out_dir = Path(results) / suite / run.name, Path(cfg["out_dir"])
    error = None
    if launch and "same_as" in launch:
        say(f"{suite}/{run.name}: the same run as {launch['same_as']}, copied")
        if procs.master:
            publish(Path(launch["same_as"]), result_dir, same_as=launch["same_as"])
        parallel.barrier()
        return None
    if launch:
        cfg = dict(cfg, **launch)
        if procs.master:
            saved = checkpoint.list_checkpoints(out_dir)
            print(f"{suite}/{run.name}: " + (f"resuming from step {saved[-1][0]}" if saved else "starting"), flush=True)
        try:
            if not train.train(cfg):  # a signal stopped it, after a checkpoint
                raise Interrupted(f"{suite}/{run.name} stopped before step {cfg['max_steps']}: run the same command "
                                  f"again to resume")
        except FloatingPointError as e:  # e.g. too high an LR: a finding of the LR sweep, kept as a result
            error = str(e)  # every process finds it at the same step: the losses are averaged before the check
            say(f"{suite}/{run.name}: {error}", flush=True)
    if procs.master:
        publish(out_dir, result_dir, error)
    parallel.barrier()  # the result exists before any process looks at the next run
    return error


MERGES = ("uniform", "linear", "1-sqrt")  # c9_merge's merges: the plain mean (SWA of checkpoints) and two WSM shapes


def merge_trunk(suite, runs, results, out_root, device):
    """After the runs of c9_merge: merge its trunk's checkpoints over each cooldown's window (swa.py --merge) with
    each of MERGES into <results>/<suite>/merge-<shape>/ (skipped when it exists; the merged weights stay in
    <out_root>/<suite>/merge-<shape>/merged_<N>.pt). Its config.json is the trunk's plus `merge` (shape, trunk,
    windows); its metrics.jsonl has one record per window, at the window's last step N: step, tokens, val_loss and
    val_ppl of the merged weights, val_loss_last of the trunk's checkpoint at N, merged_steps and coefficients."""
    trunk_dir = Path(out_root) / suite / runs[0].name
    info = read_json(trunk_dir / "config.json")
    tokens_per_step = info["config"]["batch_size"] * info["config"]["seq_len"]
    for merge in MERGES:
        name = f"merge-{merge}"
        result_dir, out_dir = Path(results) / suite / name, Path(out_root) / suite / name
        if result_dir.exists():
            print(f"{suite}/{name}: done, skipped")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        records = []
        for start, end in merge_windows(runs):
            merged = swa.main([f"--run={trunk_dir}", f"--merge={merge}", f"--start_step={start}", f"--end_step={end}",
                               f"--out={out_dir / f'merged_{end}.pt'}", f"--device={device}"])
            records.append(dict(step=end, tokens=end * tokens_per_step, val_loss=merged["average"],
                                val_ppl=math.exp(merged["average"]), val_loss_last=merged["last"],
                                merged_steps=merged["steps"], coefficients=merged["coefficients"]))
        merge_info = dict(shape=merge, trunk=str(trunk_dir), windows=merge_windows(runs))
        (out_dir / "config.json").write_text(json.dumps(dict(info, merge=merge_info), indent=2))
        (out_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        publish(out_dir, result_dir)


def plan_rates(entries, scale, given_gflops):
    """({model: FLOP/s} for the plan's estimate, where the rates come from)."""
    gflops = given_gflops or scale.gflops
    if gflops:
        return ({cfg["model"]: gflops * 1e9 for _, _, cfg in entries},
                "given" if given_gflops else "assumed for this scale; set --gflops")
    rates = {}  # small models reach fewer FLOP/s than large ones: time each model of the plan once
    for _, _, cfg in entries:
        rates[cfg["model"]] = rates.get(cfg["model"]) or measure_flops_per_s(cfg, scale.vocab_size)
    return rates, "timed just now, per model, the best of 3 training steps; a busy machine makes the estimate pessimistic"


SWEEP_DEFAULTS = dict(scale="cpu", plan=False, results=None, out_root=None, data_dir=None, gflops=None)
SWEEP_TYPES = dict(results=(str, type(None)), out_root=(str, type(None)), data_dir=(str, type(None)),
                   gflops=(float, type(None)))


def main(argv):
    names = [a for a in argv if not a.startswith("-")]  # options: --key=value, and -h
    opts = parse_args([a for a in argv if a.startswith("-")], SWEEP_DEFAULTS, SWEEP_TYPES)
    if len(names) != 1 or names[0] not in [*SUITES, "all"]:
        raise ConfigError(f"name one suite: {', '.join(SUITES)} or all")
    if opts["scale"] not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}, got '{opts['scale']}'")
    scale = SCALES[opts["scale"]]
    suffix = "" if opts["scale"] == "cpu" else f"_{opts['scale']}"  # the scales never share a folder
    results = opts["results"] or f"results{suffix}"
    out_root = opts["out_root"] or f"out/sweeps{suffix}"
    suites = list(scale.suites or SUITES) if names[0] == "all" else names
    entries = [(suite, run, run_config(scale, suite, run, out_root, opts["data_dir"]))
               for suite in suites for run in SUITES[suite](scale)]

    procs = parallel.Processes.from_env()
    done = {(suite, run.name) for suite, run, _ in entries if (Path(results) / suite / run.name).exists()}
    if procs.master:  # the other processes neither time nor print the plan
        print(f"scale {opts['scale']}: {results}/<suite>/<run>/ from {out_root}/<suite>/<run>/")
        print_plan(entries, scale, *plan_rates(entries, scale, opts["gflops"]), done)
    if opts["plan"]:
        return entries

    Dataset(entries[0][2]["data_dir"])  # a missing dataset fails now, not after the first runs
    # under torchrun, one process group for the whole suite: each run's train.train joins it
    owned = parallel.init(procs, parallel.setup_device(entries[0][2]["device"], procs.local_rank),
                          entries[0][2]["dist_timeout_s"])
    started = time.perf_counter()
    diverged = [f"{suite}/{run.name}" for suite, run, cfg in entries
                if execute(suite, run, cfg, results, out_root, procs)]
    parallel.shutdown(owned)
    if procs.master and "c9_merge" in suites:  # merging needs the trunk's checkpoints only, no training
        merge_trunk("c9_merge", SUITES["c9_merge"](scale), results, out_root, entries[0][2]["device"])
    if procs.master:
        print(f"all {len(entries)} runs done in {duration(time.perf_counter() - started)}; results in {results}/"
              + (f"; diverged (kept with error.txt): {', '.join(diverged)}" if diverged else ""))
    return entries


if __name__ == "__main__":
    train.run_script(main, sys.argv[1:], (*train.USER_ERRORS, Interrupted))
