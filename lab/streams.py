"""
The runs a loss law is fitted to and checked on (predict.py, lab/validation.py): reading them, what two runs share,
which runs are one setting at several seeds, and the seed noise.

    from lab import streams
    runs = streams.load_runs(["results", "results_long"])      # every finished LR-schedule run, copies dropped
    streams.relation(run, fitted_runs)                         # 'held out', 'same stream', 'shares a trunk', ...
    noise, unstable = streams.seed_noise(runs)                 # per (family, run length): (noise, trunk pairs)

Two runs are on the same *stream* when they share the randomness of training (seed and data order) and everything
else that makes two trajectories the same (model, data, batch, optimizer). On one stream, two runs share their
weights up to the first update whose LR differs: a cooldown branch shares its trunk, and so does a wsd run trained
from scratch with the same seed. A test run is *held out* from a fit only when it is on none of the fitted runs'
streams: it then shares no weights, no logged point, no initialization and no batch with them. Runs of one stream
that share most of their updates are on one *trunk*: the seed noise counts each pair of trunks once.
"""

import math
from itertools import combinations
from pathlib import Path

import numpy as np

from lab import laws
from lab.config import ConfigError, read_json
from lab.runs import data_fingerprint, seeds_of, setting_of
from lab.shards import short
from schedules import learning_rates, resolve_cooldown_steps

# What fixes a trajectory apart from its LRs: the same values (and seeds) on the same data give the same weights.
SETUP_KEYS = ("model", "n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings", "data_dir",
              "batch_size", "seq_len")
TRAJECTORY_KEYS = (*SETUP_KEYS, "optimizer", "beta1", "beta2", "weight_decay", "grad_clip", "dtype", "warmup_steps")
AVERAGES = ("swa", "swa_interval", "swa_window", "ema", "ema_decay", "ema_interval")  # SWA's and EMA's settings
UNSTABLE = 0.10  # a setting whose seeds' final losses differ by more than this is unstable (not a prediction)


# ---------------------------------------------------------------------------------------------------------
# reading runs


def find_run_dirs(folder):
    """`folder` itself if it is a run folder, otherwise every run folder below it (sweep.py's .partial skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"'{folder}' is not a folder")
    if (root / "config.json").is_file():
        return [root]
    found = sorted(p.parent for p in root.rglob("config.json") if not p.parent.name.endswith(".partial"))
    if not found:
        raise ConfigError(f"'{folder}' holds no run folder (config.json + metrics.jsonl)")
    return found


def load_run(folder):
    """dict(name, cfg, steps, losses, trained): the val losses at steps after the warmup, train.py's config."""
    info = read_json(folder / "config.json")
    if not isinstance(info, dict) or "config" not in info:
        raise ConfigError(f"{folder / 'config.json'} is not a train.py config.json (no 'config')")
    cfg, records = info["config"], read_json(folder / "metrics.jsonl", lines=True)
    points = sorted({r["step"]: r["val_loss"] for r in records if r.get("val_loss") is not None
                     and r["step"] >= max(cfg["warmup_steps"], 1)}.items())
    logged = [(r["step"], r["lr"]) for r in records if r.get("lr") is not None]
    if cfg["optimizer"] == "adamw" and logged:  # a logged lr is its step's last update's: the config's schedule?
        for (step, lr), expected in zip(logged, learning_rates(cfg, [step - 1 for step, _ in logged])):
            if not math.isclose(lr, expected, rel_tol=1e-6):
                raise ConfigError(f"run {folder}: its logged lr at step {step} is not its config's schedule")
    return dict(name=str(folder), cfg=cfg, steps=np.array([s for s, _ in points], dtype=int),
                losses=np.array([v for _, v in points], dtype=float), trained=any("lr" in r for r in records),
                data=data_fingerprint(info))


def unusable(run):
    """Why a law cannot be fitted to or checked against this run, or None."""
    if run["cfg"]["optimizer"] != "adamw":
        return f"its optimizer {run['cfg']['optimizer']} sets its own LR"
    if not run["trained"]:  # e.g. a log of averaged or merged weights: not the curve of a training run
        return "its log has no training steps (no lr)"
    return None if len(run["steps"]) else "it has no val_loss after the warmup"


def setup_difference(run, other):
    """(what, this run's, the other's) for the first thing two runs' model, data or batch differ in, or None. The
    data is known by its fingerprint where both runs record one (lab/shards.py; then data_dir may differ: data
    moves), else by data_dir."""
    known = None not in (run["data"], other["data"])
    if known and run["data"] != other["data"]:
        return "data", short(run["data"]), short(other["data"])
    for key in SETUP_KEYS:
        if not (known and key == "data_dir") and run["cfg"].get(key) != other["cfg"].get(key):
            return key, run["cfg"].get(key), other["cfg"].get(key)
    return None


def load_runs(folders, like=None, notes=None):
    """The usable, finished runs below `folders` (of `like`'s setup when given), copies of one run dropped: sweeps
    copy a run into several suites, and a from-scratch twin of a branch is the same run. `notes` collects why a run
    was left out."""
    runs = []
    for folder in dict.fromkeys(d for f in folders for d in find_run_dirs(f)):
        run = load_run(folder)
        why = (unusable(run) or (like and setup_difference(run, like) and "another model, data or batch")
               or (run["steps"][-1] != run["cfg"]["max_steps"] and "it did not reach max_steps"))
        if why:
            if notes is not None:
                notes.append(f"skipped {run['name']}: {why}")
            continue
        runs.append(dict(run, lrs=laws.schedule_lrs(run["cfg"], run["cfg"]["max_steps"])))
    return drop_copies(runs)


def drop_copies(runs):
    """One run of each (stream, schedule): the one that logged the most of its curve (a branch logs only its own).
    The runs are of one data (load_runs' `like`, or predict.py's check)."""
    keys = [(stream(run), run["cfg"]["max_steps"], run["lrs"].tobytes()) for run in runs]
    best = {}
    for key, run in zip(keys, runs):
        if key not in best or len(run["steps"]) > len(best[key]["steps"]):
            best[key] = run
    return [run for key, run in zip(keys, runs) if best[key] is run]


# ---------------------------------------------------------------------------------------------------------
# what runs share


def seeds(run):
    """(seed, data-order seed)."""
    return seeds_of(run["cfg"])


def stream(run):
    """What makes two runs' trajectories the same apart from their LRs and their data (same_data): the seeds, model,
    batch, optimizer, precision and warmup."""
    return (*seeds(run), *(repr(run["cfg"].get(k)) for k in TRAJECTORY_KEYS if k != "data_dir"))


def same_data(run, other):
    """Whether two runs may have read the same data: only two different fingerprints say they did not. A run that
    records none (the committed runs) may have read any: taken as the same, so that it is never held out from a run
    it may share a trunk with."""
    return None in (run["data"], other["data"]) or run["data"] == other["data"]


def same_stream(run, other):
    return stream(run) == stream(other) and same_data(run, other)


def shared_updates(run, other):
    """How many first updates two runs share: 0 on different streams, else up to the first LR they differ in."""
    if not same_stream(run, other):
        return 0
    n = min(len(run["lrs"]), len(other["lrs"]))
    differ = np.flatnonzero(run["lrs"][:n] != other["lrs"][:n])
    return int(differ[0]) if len(differ) else n


def relation(run, fitted):
    """'fitted' (a fitted run), 'shares a trunk' (its weights equal a fitted run's after some update: its trunk,
    its logged points up to there), 'same stream' (a fitted run's seed and data order, but not one update in
    common: another LR) or 'held out'."""
    if any(same_stream(run, f) and np.array_equal(run["lrs"], f["lrs"]) for f in fitted):
        return "fitted"
    if any(shared_updates(run, f) > 0 for f in fitted):
        return "shares a trunk"
    return "same stream" if any(same_stream(run, f) for f in fitted) else "held out"


# ---------------------------------------------------------------------------------------------------------
# settings, cells and seed noise


def family(cfg):
    """The schedule family of a cell: constant, wsd (any cooldown shape), cosine, 'cosine cycle' (a cosine whose
    cycle ends before the run), linear."""
    cycle = cfg.get("cycle_steps")
    return f"{cfg['schedule']} cycle" if cycle and cycle != cfg["max_steps"] else cfg["schedule"]


def cell(run):
    """(family, run length, peak LR)."""
    return family(run["cfg"]), run["cfg"]["max_steps"], run["cfg"]["lr"]


def setting(run):
    """What a run's val losses are of apart from its seeds: lab.runs' rule, less the averages' settings (they change
    val_loss_swa and val_loss_ema, not the trained weights' val_loss)."""
    return setting_of({k: v for k, v in run["cfg"].items() if k not in AVERAGES})


def seed_groups(runs):
    groups = {}
    for run in runs:
        groups.setdefault(setting(run), []).append(run)
    return [g for g in groups.values() if len(g) > 1]


def mean_abs_difference(runs):
    """Mean |relative difference| of the final losses over every pair of the runs."""
    return float(np.mean([abs(a["losses"][-1] / b["losses"][-1] - 1) for a, b in combinations(runs, 2)]))


def trunks(runs):
    """{run name: its trunk's name}: runs on one stream that share at least half of the shorter one's updates (a
    branch and its trunk, wsd runs of several lengths at one peak LR) are on one trunk, so that their seeds'
    differences are one sample of the seed noise, not one per branch."""
    trunk = {run["name"]: run["name"] for run in runs}
    for a, b in combinations(runs, 2):
        if 2 * shared_updates(a, b) >= min(len(a["lrs"]), len(b["lrs"])):  # b's trunk joins a's
            joined, into = trunk[b["name"]], trunk[a["name"]]
            trunk = {name: into if label == joined else label for name, label in trunk.items()}
    return trunk


def pooled_noise(groups, trunk):
    """(noise, trunk pairs): the mean |relative difference| of the final losses of two seeds of one setting, each
    pair of trunks counted once (the mean of its settings' differences) however many of its branches were
    measured: the branches of two trunks differ by about the same amount."""
    by_pair = {}
    for group in groups:
        for a, b in combinations(group, 2):
            key = tuple(sorted((trunk[a["name"]], trunk[b["name"]])))
            by_pair.setdefault(key, []).append(abs(a["losses"][-1] / b["losses"][-1] - 1))
    return float(np.mean([np.mean(d) for d in by_pair.values()])) if by_pair else 0.0, len(by_pair)


def seed_noise(runs):
    """{(family, length): (noise, trunk pairs)}: pooled_noise over the stable settings of that family and length
    (every LR and cooldown shape: one pair's difference is too rough an estimate of a cell's noise); and the set
    of unstable settings."""
    by_cell, unstable = {}, set()
    for group in seed_groups(runs):
        if mean_abs_difference(group) > UNSTABLE:
            unstable.add(setting(group[0]))
        else:
            by_cell.setdefault(cell(group[0])[:2], []).append(group)
    trunk = trunks(runs)
    return {key: pooled_noise(groups, trunk) for key, groups in by_cell.items()}, unstable


def matching(runs, entry, seed):
    """The run on stream (seed, seed) whose config has the values of `entry` (cooldown_steps resolved)."""
    for run in runs:
        cfg = dict(run["cfg"], cooldown_steps=resolve_cooldown_steps(run["cfg"]["max_steps"],
                                                                      run["cfg"]["cooldown_frac"],
                                                                      run["cfg"]["cooldown_steps"]))
        if seeds(run) == (seed, seed) and all(cfg.get(k) == v for k, v in entry.items()):
            return run
    raise ConfigError(f"no run of seed {seed} with {entry} among the runs read: the recipe needs one")


def by_seed(runs):
    """{(seed, data seed): [runs]} in order of first appearance."""
    groups = {}
    for run in runs:
        groups.setdefault(seeds(run), []).append(run)
    return groups
