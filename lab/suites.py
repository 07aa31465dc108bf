"""
The experiment suites, one per claim of the paper (C1-C9: docs/results.md), as plans: functions of a scale
returning their runs (name, settings, and for a cooldown branch its trunk and branch step), trunks first.
sweep.py runs them; `python sweep.py all --plan` prints them with their estimated time.

    from lab import suites
    runs = suites.SUITES["c4_cooldown_shapes"](suites.SCALES["cpu"])   # [Run(name, overrides, trunk, branch_step)]

Runs that decide a claim (c2_c3, c4, c7) are run at every seed of the scale and named with it
(`_seed1338`; `_seed1337_data1338` when only the data order differs, data_seed in train.py).

The cpu scale (bytes tokenizer, stdlib corpus, data/stdlib-bytes): models of 0.13M-1M parameters, batch 16 x 256
tokens (4096 tokens/step: far more steps per token than batch 32, and tokens/step per parameter closer to the
paper's 0.1M tokens for ~100M parameters), warmup 30 steps, evaluation every 50 steps on 32768 tokens: 128
windows spread over the whole 269k-token val split. Lengths 300 / 600 / 1200 steps (1.2M-4.9M tokens, 0.04-0.16
epochs of the 31.3M-token training split: no training window is seen twice, the long scale's 4800 steps
included). Peak LRs: cosine 6e-3, constant 3e-3 (the paper's 2:1). Cooldowns are 20 % 1-sqrt unless the suite
varies them; C2 uses 20 % linear as the paper. Seeds 1337 and 1338.
  c1_cosine_lengths   cosine_{300,600,1200}; cosine_cycle300_600 runs past its cycle (LR stays at 10 %).
                      A cosine stopped before its cycle ends is cosine_1200 read at steps 300 and 600.
  c2_c3_lr_sweep      cosine (1.5e-3 ... 8.49e-3) and wsd with a 20 % linear cooldown (7.5e-4 ... 3e-3) at 600
                      steps, each grid sqrt(2) apart around the previous pipeline's optimum, at both seeds.
  c4_cooldown_shapes  per seed, one constant trunk and 20 % cooldowns to 300 and to 1200 steps with the shapes
                      linear, 1-sqrt (= 1-x^0.5), cosine, square (= 1-x^2), 1-x^0.3 and 1-x^0.7; then the noise
                      study: 1-sqrt cooldowns from the trunks of a third seed (1339) and of seed 1337 with the
                      data orders 1338 and 1339.
  c5_cooldown_lengths one constant trunk; cooldowns of 2.5, 5, 10, 20, 40 % to 600 and to 1200 steps.
  c6_swa              a cosine with SWA (windows of 100 steps); the constant run with SWA and its 20 % 1-sqrt
                      cooldown are c9_merge's trunk and cooldown to 1200; the shorter cosines are c1's.
  c7_schedulefree     schedule-free AdamW over its own LR grid (1.5e-3, 3e-3, 6e-3, 1.2e-2 with betas (0.9, 0.95);
                      1.5e-3, 3e-3, 6e-3 with (0.95, 0.99)) against wsd (20 % 1-sqrt, 3e-3), 600 steps, both seeds.
  c8_scaling          cpu_130k, cpu_250k, cpu_500k, cpu_tiny: cosine at 300/600/1200 steps, and one constant
                      trunk with SWA (to 960) with 20 % cooldowns to 300, 600 and 1200; the two smallest models
                      at the shared LRs (6e-3 / 3e-3) and at half of them (named _lr<cosine LR>), the others at
                      the shared ones (cpu_tiny's LR grid is c2_c3's); the summary keeps each size's best LRs.
  c9_merge            a constant trunk with SWA to 1200 keeping checkpoints every 20 steps over 240-300, 480-600 and
                      960-1200, its 20 % linear and 1-sqrt cooldowns; then (no training) merges of those windows'
                      checkpoints, uniform, linear and 1-sqrt (swa.py --merge), as results/c9_merge/merge-<shape>/.
The long scale: c4 and c7 only, at the cpu settings: c4 with one trunk per seed to 3840 steps and the cooldowns
linear, 1-sqrt and 1-x^0.3 to 600, 2400 and 4800 steps; c7 at 2400 steps, schedule-free (0.9, 0.95) at
1.5e-3 / 3e-3 / 6e-3 and (0.95, 0.99) at 3e-3 (both pairs' optimum at 600 steps), both seeds. Its cooldown is c4's
1-sqrt branch to 2400 of the same seed's trunk (3e-3, 20 %): the run c7's wsd would be, trained once
(summary.schedulefree_runs).
The quick scale keeps the cpu settings with 100 / 200 / 400 steps, 2 LRs, 2 shapes, 2 fractions, 3 sizes, one
seed (a smoke test of every suite).
The paper scale uses configs/paper.py (SlimPajama, seq 512, batch 200, warmup 300), the 124M model for c1-c7,
and for c8 the eight sizes 33M-360M with their token budgets and LRs from the paper.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from lab.config import config_file
from lab.rundir import plan_branches

REPO = Path(__file__).resolve().parent.parent


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
    suites: tuple | None = None  # the suites of `all` (None: every suite)
    gflops: float | None = None  # assumed rate; None: measure it
    cooldown_shape: str = "1-sqrt"


# dtype auto: sweep.results_precision makes it the precision of the results already in the folder, else the device's
CPU_COMMON = dict(data_dir="data/stdlib-bytes", dtype="auto", batch_size=16, seq_len=256, warmup_steps=30,
                  eval_interval=50, eval_tokens=32768, eval_batch_size=32, log_interval=10, ckpt_interval=100,
                  keep_last_ckpts=1, swa_interval=5, swa_window=100)
CPU_SIZES = ("cpu_130k", "cpu_250k", "cpu_500k", "cpu_tiny")
SHAPES = ("linear", "1-sqrt", "cosine", "square", "1-x^0.3", "1-x^0.7")
# the paper's token budgets (billions) per size, and peak LRs (cosine, constant): 2e-3/1e-3 up to 93M, then halved
PAPER_BUDGETS = {"33m": (0.3, 0.7, 1.0), "53m": (0.4, 0.8, 1.2), "60m": (0.8, 1.3, 1.8), "93m": (1.0, 1.8, 2.6),
                 "124m": (1.5, 2.6, 3.6), "151m": (2.6, 3.8, 5.1), "210m": (3.8, 5.1, 6.4), "360m": (5.1, 7.7, 10.2)}
PAPER_COMMON = config_file(REPO / "configs" / "paper.py")  # its settings over train.py's defaults (sweep.py)


def paper_steps(billions):
    return tuple(round(b * 1e9 / (PAPER_COMMON["batch_size"] * PAPER_COMMON["seq_len"])) for b in billions)


def paper_lrs(size):
    return (2e-3, 1e-3) if size in ("33m", "53m", "60m", "93m") else (1e-3, 5e-4)


CPU = Scale(common=CPU_COMMON, vocab_size=257, model="cpu_tiny", lengths=(300, 600, 1200),
            lr_cosine=6e-3, lr_constant=3e-3,
            # sqrt(2) apart around the previous pipeline's optima: cosine 6e-3, wsd 1.5e-3 (then its grid's lowest);
            # cosine's 1.5e-3 and 2.12e-3 were added when this pipeline put its optimum at the grid's lowest, 3e-3
            lr_grid_cosine=(1.5e-3, 2.12e-3, 3e-3, 4.24e-3, 6e-3, 8.49e-3),
            lr_grid_wsd=(7.5e-4, 1.06e-3, 1.5e-3, 2.12e-3, 3e-3),
            shapes=SHAPES, cooldown_fracs=(0.025, 0.05, 0.1, 0.2, 0.4),
            # the two smallest models (the previous pipeline's unstable 0.25M cosine) at the shared LRs and at half
            # of them; cpu_tiny's LR grid is c2_c3's
            sizes=tuple((m, (300, 600, 1200), ((6e-3, 3e-3), (3e-3, 1.5e-3)) if m in CPU_SIZES[:2] else ((6e-3, 3e-3),))
                        for m in CPU_SIZES),
            seeds=(1337, 1338), noise_seeds=((1339, None), (1337, 1338), (1337, 1339)),
            # schedule-free's 1.5e-3 added when its optimum came out at 3e-3, the grid's lowest point
            schedulefree=(((0.9, 0.95), (1.5e-3, 3e-3, 6e-3, 1.2e-2)), ((0.95, 0.99), (1.5e-3, 3e-3, 6e-3))),
            c7_wsd_lrs=(3e-3,))
SCALES = {
    "cpu": CPU,
    # c4 and c7 at 600-4800 steps: the long runs the cpu scale's 2 hours leave out (c4's 1-sqrt advantage is said
    # to grow with length, and schedule-free to need long runs)
    "long": replace(CPU, lengths=(600, 2400, 4800), c4_lengths=(600, 2400, 4800),
                    c4_shapes=("linear", "1-sqrt", "1-x^0.3"), noise_seeds=(),
                    schedulefree=(((0.9, 0.95), (1.5e-3, 3e-3, 6e-3)), ((0.95, 0.99), (3e-3,))), c7_wsd_lrs=(),
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
    """A cosine with SWA. The constant run with SWA and its 20 % 1-sqrt cooldown that C6 compares it with are
    c9_merge's trunk and its cooldown to the long length: the same runs, trained once."""
    long = s.lengths[2]
    return [Run(f"cosine_swa_{long}", cosine(long, s.lr_cosine, model=s.model, swa=True))]


def c7_schedulefree(s):
    """Schedule-free AdamW over its own LR grid for each pair of betas, and wsd (20 % 1-sqrt) at its LRs, at the
    same length and every seed."""
    length = s.lengths[1]
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
