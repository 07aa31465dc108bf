"""
What a finished run is, read from its logs (scaling.load_runs gives them), for plot.py and lab/summary.py: its method,
its final perplexity, and which runs are the same settings at other seeds, with their mean and spread.

    from lab import runs, scaling
    c4 = scaling.load_runs("results")["c4_cooldown_shapes"]
    for group in runs.seed_groups(c4):           # the same settings, one run per seed (or data order)
        print(runs.method(group[0]), runs.spread(group))   # wsd/1-sqrt Spread(mean=2.71, std=0.01, n=3)

The spread of a group is the mean and the sample standard deviation (n - 1) of the final perplexities of its
seeds; `paired_gap` compares two settings seed by seed (the same trunk, the same data), which removes most of
the seed-to-seed spread from a difference, and `verdict` says whether the mean paired gap is outside its 95 %
confidence interval.
"""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from scipy.stats import t as student_t

from lab import scaling
from lab.config import ConfigError
from lab.shards import short
from schedules import COOLDOWN_SHAPES, resolve_cooldown_steps

# Settings that do not change what a run trains: where it lives, how it was launched, its bookkeeping (sweep.py
# copies a result of equal settings instead of training it again).
NOT_WHAT_IT_TRAINS = ("out_dir", "data_dir", "init_from", "overwrite", "device", "compile", "keep_ckpt_steps",
                      "ckpt_interval", "keep_last_ckpts", "log_interval", "dist_timeout_s", "dry_run", "peak_tflops",
                      "wandb_log", "wandb_project", "wandb_run_name")
# ... nor make it another experiment: the seeds too (the runs of one setting at several seeds are its samples)
NOT_THE_SETTING = (*NOT_WHAT_IT_TRAINS, "seed", "data_seed")
# Settings train.py gained after runs were committed, at the value that does what train.py did before it had them
# (their defaults when they came): a config.json without one was trained with that value, so it is the same setting
# as a config that has it at that value (the GPU levers of 2026-12-04: 171 of the committed runs lack them).
ADDED_LATER = dict(attention="auto", compile_mode="default", float8=False, fused_loss="none", fused_optimizer=True,
                   liger_kernels=False)


def cfg(run):
    return run["info"]["config"]


def data_fingerprint(info):
    """The fingerprint of the data a run's config.json (`info`) says it read (lab/shards.py), or None: a run from
    before fingerprints were recorded, its data unknown."""
    return (info.get("data") or {}).get("fingerprint") if isinstance(info, dict) else None


def one_data(runs):
    """A line saying which data the runs read; a ConfigError naming two runs that read different data. Runs that
    record no fingerprint are counted apart: unknown, so they can neither be told apart nor refused."""
    by_data = defaultdict(list)
    for run in runs:
        by_data[data_fingerprint(run["info"])].append(run)
    unknown = by_data.pop(None, [])
    if len(by_data) > 1:
        (first, a), (second, b) = list(by_data.items())[:2]
        raise ConfigError(f"the runs read different data: {a[0]['dir']} read {short(first)}, {b[0]['dir']} read "
                          f"{short(second)}; give each data's results apart (their own folders)")
    known = [f"data {short(fingerprint)} ({len(found)} runs)" for fingerprint, found in by_data.items()]
    return ", ".join(known + ([f"{len(unknown)} runs of unknown data (no fingerprint recorded)"] if unknown else []))


def method(run):
    """'cosine', 'constant', 'linear', 'wsd/<cooldown shape>' or 'schedule-free'."""
    if cfg(run)["optimizer"] == "adamw_schedulefree":
        return "schedule-free"
    return f"wsd/{cfg(run)['cooldown_shape']}" if cfg(run)["schedule"] == "wsd" else cfg(run)["schedule"]


def optimizer_label(run):
    """method(run), with the betas for schedule-free: 'schedule-free (0.9, 0.95)'."""
    return (f"schedule-free ({cfg(run)['beta1']}, {cfg(run)['beta2']})" if method(run) == "schedule-free"
            else method(run))


def cycle(run):
    return cfg(run)["cycle_steps"] or cfg(run)["max_steps"]


def cooldown_frac(run):
    c = cfg(run)
    return resolve_cooldown_steps(c["max_steps"], c["cooldown_frac"], c["cooldown_steps"]) / c["max_steps"]


def shape_order(name):
    """linear, 1-sqrt, cosine, ... in COOLDOWN_SHAPES' order; 1-x^A shapes last, by A."""
    shape = name.removeprefix("wsd/")
    if shape in COOLDOWN_SHAPES:
        return COOLDOWN_SHAPES.index(shape), 0.0
    return len(COOLDOWN_SHAPES), float(shape.removeprefix("1-x^")) if shape.startswith("1-x^") else math.inf


def final_ppl(run, key="val_loss"):
    """Perplexity at max_steps (of the model, or of its SWA/EMA average), or None if the run stopped early."""
    loss = scaling.final_loss(run, key)
    return None if loss is None else math.exp(loss)


def seeds_of(config):
    """(seed, data-order seed) of a run of train.py config `config`."""
    return config["seed"], config["seed"] if config.get("data_seed") is None else config["data_seed"]


def seed(run):
    """(seed, data-order seed) of a run."""
    return seeds_of(cfg(run))


def setting_of(config):
    """What a run of train.py config `config` is apart from its seeds, settings added later filled in (ADDED_LATER):
    runs with equal settings are samples of one experiment."""
    return tuple(sorted((k, repr(v)) for k, v in {**ADDED_LATER, **config}.items() if k not in NOT_THE_SETTING))


def setting(run):
    return setting_of(cfg(run))


def seed_groups(runs):
    """[[runs of one setting]] of the finished runs, in the order their settings first appear, each by seed."""
    groups = defaultdict(list)
    for run in runs:
        if final_ppl(run) is not None:
            groups[setting(run)].append(run)
    return [sorted(group, key=seed) for group in groups.values()]


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float | None  # None for a single seed
    n: int

    def __str__(self):
        return f"{self.mean:.3f}" + ("" if self.std is None else f" ± {self.std:.3f}")


def spread(values_or_runs, key="val_loss"):
    """Mean and sample standard deviation of final perplexities (of runs) or of numbers."""
    values = [v if isinstance(v, (int, float)) else final_ppl(v, key) for v in values_or_runs]
    return Spread(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


def best_per_method(runs, label=method):
    """{label: the seed group with the lowest mean final perplexity} (the best LR of each method, or of each
    `label`: optimizer_label tells schedule-free's betas apart)."""
    best = {}
    for group in seed_groups(runs):
        name = label(group[0])
        if name not in best or spread(group).mean < spread(best[name]).mean:
            best[name] = group
    return best


def finished_groups(runs, key, select=lambda run: True):
    """{key(run): [runs]} of the `select`ed runs that reached max_steps."""
    groups = defaultdict(list)
    for run in runs:
        if select(run) and final_ppl(run) is not None:
            groups[key(run)].append(run)
    return groups


def on_shared_seeds(groups):
    """The seed groups cut down to the seeds every one of them has: a comparison of settings on equal terms."""
    shared = set.intersection(*({seed(r) for r in g} for g in groups)) if groups else set()
    return [[r for r in g if seed(r) in shared] for g in groups]


def paired_gap(first, second):
    """The relative gaps first / second - 1 of final perplexities, seed by seed, over the seeds both have."""
    second_by_seed = {seed(r): final_ppl(r) for r in second}
    return [final_ppl(r) / second_by_seed[seed(r)] - 1 for r in first if seed(r) in second_by_seed]


def verdict(gaps, names=("the first", "the second")):
    """Which of two settings is better from their paired gaps (first / second - 1): better when the 95 %
    confidence interval of the mean gap (Student's t, n - 1 degrees of freedom) excludes zero, else within the
    noise; None with fewer than 2 pairs. With 2 seeds the interval is 12.7 standard errors wide each side."""
    if len(gaps) < 2:
        return None
    mean, error = statistics.fmean(gaps), statistics.stdev(gaps) / math.sqrt(len(gaps))
    half = student_t.ppf(0.975, len(gaps) - 1) * error
    interval = f"{mean:+.2%}, 95 % CI {mean - half:+.2%} to {mean + half:+.2%}, {len(gaps)} seeds"
    if abs(mean) <= half:
        return f"within noise ({interval})"
    return f"{names[0] if mean < 0 else names[1]} better ({interval})"
