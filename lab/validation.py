"""
Runs for the loss laws (predict.py): reading them, what two runs share, and the validation protocol.

    from lab import validation
    runs = validation.load_runs(["results", "results_long"])      # every finished LR-schedule run, copies dropped
    validation.relation(run, fitted_runs)                         # 'held out', 'same stream', 'shares a trunk', ...

Two runs are on the same *stream* when they share the randomness of training (seed and data order) and everything
else that makes two trajectories the same (model, data, batch, optimizer). On one stream, two runs share their
weights up to the first update whose LR differs: a cooldown branch shares its trunk, and so does a wsd run trained
from scratch with the same seed. A test run is *held out* from a fit only when it is on none of the fitted runs'
streams: it then shares no weights, no logged point, no initialization and no batch with them. Runs of one stream
that share most of their updates are on one *trunk*: the seed noise counts each pair of trunks once.

The protocol (`validate`): the recommended fit set is fitted once per seed; every run is predicted by the mean of
two fits of *other* seeds, with a band from their spread and the seed noise of the fitted runs (the band every
prediction of predict.py prints). Per cell (schedule family x run length x peak LR) it reports the final loss's
error, the curve's error, the cell's seed noise, the spread between the two fits and the share of runs inside
their band. A setting whose seeds disagree by more than UNSTABLE is reported as unstable, not scored.
"""

import math
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from lab import laws
from lab.config import ConfigError, read_json
from lab.runs import data_fingerprint, setting_of
from lab.shards import short
from schedules import learning_rates, resolve_cooldown_steps

# What fixes a trajectory apart from its LRs: the same values (and seeds) on the same data give the same weights.
SETUP_KEYS = ("model", "n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings", "data_dir",
              "batch_size", "seq_len")
TRAJECTORY_KEYS = (*SETUP_KEYS, "optimizer", "beta1", "beta2", "weight_decay", "grad_clip", "dtype", "warmup_steps")
AVERAGES = ("swa", "swa_interval", "swa_window", "ema", "ema_decay", "ema_interval")  # SWA's and EMA's settings
UNSTABLE = 0.10  # a setting whose seeds' final losses differ by more than this is unstable (not a prediction)
BAND_LEVEL = 0.95  # the band is a two-sided 90 % prediction interval: Student's t at 0.95
MEAN_ABS_DIFF_PER_SIGMA = 2 / math.sqrt(math.pi)  # E|X - Y| = 1.128 sigma for two Gaussian draws


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
    cfg = run["cfg"]
    return cfg["seed"], cfg["seed"] if cfg.get("data_seed") is None else cfg["data_seed"]


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


# ---------------------------------------------------------------------------------------------------------
# fits per seed, and predictions with their band


def undetermined(law, runs):
    """({parameter: fixed value}, [warnings]) for what the fit set cannot determine; ConfigError where a fit would
    return arbitrary values. Checked before any fit."""
    if not any(len(laws.changes_after_warmup(r["lrs"], r["cfg"]["warmup_steps"], r["cfg"]["lr"])[0]) for r in runs):
        raise ConfigError(f"the fit runs never lower the LR after the warmup (constant LR only): the {law} law's "
                          f"cooldown terms are not determined; add a run that cools down (a wsd or cosine run)")
    peaks = sorted({r["cfg"]["lr"] for r in runs})
    if law == "floor" and len(peaks) == 1:
        return {"eta_c": laws.FLOOR_UNBOUNDED_ETA_C}, [
            f"warning: every fit run has peak LR {peaks[0]:g}: eta_c (how the floor grows with the peak LR) is not "
            f"determined, fixed at infinity; predictions at other peak LRs are extrapolations"]
    return {}, []


def by_seed(runs):
    """{(seed, data seed): [runs]} in order of first appearance."""
    groups = {}
    for run in runs:
        groups.setdefault(seeds(run), []).append(run)
    return groups


def fit_each_seed(law, runs, fit_from):
    """{seed: (fit, its runs)}: the law fitted to each seed's runs alone; and the warnings of undetermined."""
    fits, warnings = {}, []
    for key, group in by_seed(runs).items():
        fixed, said = undetermined(law, group)
        warnings += [w for w in said if w not in warnings]
        counts = [int((run["steps"] >= fit_from).sum()) for run in group]
        for run, count in zip(group, counts):  # a run with nothing to fit would only be dropped silently by the fit
            if not count:
                raise ConfigError(f"{run['name']} logs no val loss at steps >= fit_from={fit_from} (its last: step "
                                  f"{run['steps'][-1]}): lower --fit_from or leave the run out")
        points = sum(counts)
        if points < len(laws.LAWS[law]["names"]) - len(fixed):
            raise ConfigError(f"the runs of seed {key[0]} have {points} val losses at steps >= fit_from={fit_from}, "
                              f"fewer than the {law} law's parameters")
        fit = laws.fit_law(law, group, fit_from, fixed)
        if not fit["converged"]:  # never a fit that silently returns where it started, or where it gave up
            warnings.append(f"warning: the {law} fit of seed {key[0]} did not converge ({fit['message']}): its "
                            f"parameters may be far from the best")
        fits[key] = (fit, group)
    return fits, warnings


def fitted_noise(fitted):
    """(sigma, trunk pairs): the seed noise (a relative standard deviation) of the fitted runs, pooled_noise over
    every setting fitted at several seeds, / 1.128; (0, 0) when no setting was fitted at two seeds."""
    runs = [run for _, group in fitted for run in group]
    noise, pairs = pooled_noise(seed_groups(runs), trunks(runs))
    return noise / MEAN_ABS_DIFF_PER_SIGMA, pairs


def fit_predictions(fitted, cfg, steps):
    """Each fit's val loss at `steps` of the schedule in `cfg`: a row per fit."""
    return np.array([laws.predict_losses(fit, cfg, steps) for fit, _ in fitted])


def predict_with_band(fitted, cfg, steps):
    """(point, low, high) at `steps` of the schedule in `cfg` (band)."""
    return band(fit_predictions(fitted, cfg, steps), fitted)


def band(predictions, fitted):
    """(point, low, high) from the fits' `predictions`: their mean, and its 90 % prediction interval from two
    independent errors, both estimated: the fits' (half their spread, the standard error of their mean; one degree
    of freedom with two fits) and the seed noise of the fitted runs (a measured run is one seed's draw; a degree of
    freedom per pair of trunks). With estimated variances the interval is Student's t at the Welch-Satterthwaite
    degrees of freedom: wide where two fits disagree, about +-2.1 sigma where the seed noise dominates."""
    point = predictions.mean(axis=0)
    fit_var = ((predictions.max(axis=0) - predictions.min(axis=0)) / 2 / point) ** 2  # 0 for one fit
    noise, pairs = fitted_noise(fitted)
    total = fit_var + noise**2
    dof = total**2 / np.maximum(fit_var**2 / max(len(fitted) - 1, 1) + noise**4 / max(pairs, 1), 1e-300)
    half = student_t.ppf(BAND_LEVEL, np.maximum(dof, 1.0)) * np.sqrt(total) * point
    return point, point - half, point + half


# ---------------------------------------------------------------------------------------------------------
# the protocol


def fits_for(run, fitted, preferred):
    """(relation, [seeds]): the two fits (of `preferred` first) that `run` is held out from; with none, every fit
    and run's closest relation to them (reported apart, never as held out)."""
    held = [k for k, (_, runs) in fitted.items() if relation(run, runs) == "held out"]
    if held:
        return "held out", sorted(held, key=lambda k: (k not in preferred, list(fitted).index(k)))[:2]
    order = ("fitted", "shares a trunk", "same stream")
    closest = min((relation(run, runs) for _, runs in fitted.values()), key=order.index)
    return closest, list(fitted)


def score(run, fitted, keys, fit_from):
    """One run's row: its final loss measured and predicted with the band, and its curve's errors."""
    chosen = [fitted[k] for k in keys]
    predictions = fit_predictions(chosen, run["cfg"], run["steps"])
    point, low, high = band(predictions, chosen)
    finals = predictions[:, -1]
    errors = np.abs(point / run["losses"] - 1)
    domain = errors[run["steps"] >= fit_from]
    measured = float(run["losses"][-1])
    return dict(run=run["name"], seeds=[k[0] if k[0] == k[1] else list(k) for k in keys], measured=measured,
                predicted=float(point[-1]), low=float(low[-1]), high=float(high[-1]),
                error=float(point[-1] / measured - 1), inside=bool(low[-1] <= measured <= high[-1]),
                spread=float((max(finals) - min(finals)) / np.mean(finals)),
                curve=float(domain.mean()) if len(domain) else None, curve_max=float(domain.max()) if len(domain) else None,
                curve_from_warmup=float(errors.mean()))


def validate(runs, fitted, preferred, fit_from):
    """(rows, cells): every run predicted by two fits it is held out from (`preferred` seeds first), and the
    table of cells (relation, unstable or not, family, run length, peak LR)."""
    noise, unstable = seed_noise(runs)
    fitted_lrs = {r["cfg"]["lr"] for _, group in fitted.values() for r in group}
    finals = {(setting(run), seeds(run)): float(run["losses"][-1]) for run in runs}
    rows = []
    for run in runs:
        kind, keys = fits_for(run, fitted, preferred)
        rows.append(dict(score(run, fitted, keys, fit_from), relation=kind, cell=cell(run),
                         unstable=setting(run) in unstable, lr_fitted=run["cfg"]["lr"] in fitted_lrs,
                         stand_in=stand_in(run, keys, finals)))
    return rows, cells(rows, noise)


def stand_in(run, keys, finals):
    """The error of what no law fitted to the seeds `keys` can beat: the measured final loss of the run's own
    setting at those seeds (their mean), as a prediction of the run's; None where none of them trained it."""
    known = [finals[setting(run), key] for key in keys if (setting(run), key) in finals]
    return float(np.mean(known) / run["losses"][-1] - 1) if known else None


def cells(rows, noise):
    """Per cell: runs, final and curve errors, the pooled seed noise, the fits' spread, the band's coverage, and
    whether the errors are within the noise (mean <= 1.5x, max <= 3x, with at least two runs)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["relation"], row["unstable"], *row["cell"]), []).append(row)
    table = []
    for (kind, unstable, fam, length, lr), group in sorted(groups.items(), key=lambda kv: (
            kv[0][0] != "held out", kv[0][1], kv[0][4], kv[0][2], kv[0][3])):
        errors = np.abs([r["error"] for r in group])
        cell_noise, pairs = noise.get((fam, length), (None, 0))
        within = None
        if kind == "held out" and not unstable and len(group) >= 2 and cell_noise:
            within = bool(errors.mean() <= 1.5 * cell_noise and errors.max() <= 3 * cell_noise)
        curves = [r["curve"] for r in group if r["curve"] is not None]
        stand_ins = [abs(r["stand_in"]) for r in group if r["stand_in"] is not None]
        table.append(dict(relation=kind, unstable=unstable, family=fam, length=length, lr=lr,
                          lr_fitted=group[0]["lr_fitted"], runs=len(group), final_mean=float(errors.mean()),
                          final_max=float(errors.max()), curve_mean=float(np.mean(curves)) if curves else None,
                          curve_max=float(max(r["curve_max"] for r in group if r["curve"] is not None)) if curves else None,
                          curve_from_warmup=float(np.mean([r["curve_from_warmup"] for r in group])),
                          noise=cell_noise, noise_pairs=pairs, spread=float(np.mean([r["spread"] for r in group])),
                          coverage=float(np.mean([r["inside"] for r in group])), within_noise=within,
                          stand_in=float(np.mean(stand_ins)) if stand_ins else None, stand_in_runs=len(stand_ins)))
    return table
