"""
The validation protocol of the loss laws (predict.py): each seed fitted alone, predictions with their band, and every
run predicted by fits of other seeds, per cell. lab/streams.py says what runs share and what their seed noise is.

    from lab import streams, validation
    runs = streams.load_runs(["results", "results_long"])
    fits, warnings = validation.fit_each_seed("floor", fit_runs, fit_from=300)   # {seed: (fit, its runs)}
    point, low, high = validation.predict_with_band(list(fits.values()), cfg, [600, 1200])
    rows, cells = validation.validate(runs, fits, preferred=list(fits)[:2], fit_from=300)

The protocol (`validate`): the recommended fit set is fitted once per seed; every run is predicted by the mean of
two fits of *other* seeds, with a band from their spread, the seed noise of the fitted runs and the law's misfit of
their final losses (the band every prediction of predict.py prints). Per cell (schedule family x run length x peak
LR) it reports the final loss's error, the curve's error, the cell's seed noise, the spread between the two fits and
the share of runs inside their band. A setting whose seeds disagree by more than streams.UNSTABLE is reported as
unstable, not scored.
"""

import math

import numpy as np
from scipy.stats import t as student_t

from lab import laws
from lab.config import ConfigError
from lab.streams import by_seed, cell, pooled_noise, relation, seed_groups, seed_noise, seeds, setting, trunks

BAND_LEVEL = 0.95  # the band is a two-sided 90 % prediction interval: Student's t at 0.95
MEAN_ABS_DIFF_PER_SIGMA = 2 / math.sqrt(math.pi)  # E|X - Y| = 1.128 sigma for two Gaussian draws
MEAN_BAR, MAX_BAR = 1.5, 3  # a cell is within the seed noise: mean |error| <= 1.5x the noise, max <= 3x


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
        fit["misfit"] = final_misfit(fit, group)
        if not fit["converged"]:  # never a fit that silently returns where it started, or where it gave up
            warnings.append(f"warning: the {law} fit of seed {key[0]} did not converge ({fit['message']}): its "
                            f"parameters may be far from the best")
        fits[key] = (fit, group)
    return fits, warnings


def final_errors(fit, runs):
    """The fit's relative error on each run's final loss: predicted / measured - 1."""
    return [float(laws.predict_losses(fit, run["cfg"], run["steps"][-1:])[0] / run["losses"][-1] - 1) for run in runs]


def final_misfit(fit, runs):
    """The law's own error where it was fitted: the root mean square of its relative errors on the fitted runs' final
    losses (what a prediction is asked for). A seed's fit to its own runs holds no seed noise: this is the part of
    a run's loss that the law cannot draw, however its parameters are set."""
    return float(np.sqrt(np.mean(np.square(final_errors(fit, runs)))))


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
    """(point, low, high) from the fits' `predictions`: their mean, and its 90 % prediction interval from three
    errors, each estimated: the fits' (half their spread, the standard error of their mean; one degree of freedom
    with two fits), the seed noise of the fitted runs (a measured run is one seed's draw; a degree of freedom per
    pair of trunks) and the law's own (final_misfit, its mean square over the fits; a degree of freedom per fitted
    run). With estimated variances the interval is Student's t at the Welch-Satterthwaite degrees of freedom: wide
    where two fits disagree, about +-1.8-2.1 sigma where the other two dominate."""
    point = predictions.mean(axis=0)
    fit_var = ((predictions.max(axis=0) - predictions.min(axis=0)) / 2 / point) ** 2  # 0 for one fit
    noise, pairs = fitted_noise(fitted)
    law_var, residuals = np.mean([fit["misfit"] ** 2 for fit, _ in fitted]), sum(len(runs) for _, runs in fitted)
    total = fit_var + noise**2 + law_var
    dof = total**2 / np.maximum(fit_var**2 / max(len(fitted) - 1, 1) + noise**4 / max(pairs, 1)
                                + law_var**2 / max(residuals, 1), 1e-300)
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
            within = within_noise(errors, cell_noise)
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


def within_noise(errors, noise):
    """Whether the |errors| are within the seed noise `noise`: their mean <= MEAN_BAR x, their max <= MAX_BAR x."""
    return bool(np.mean(errors) <= MEAN_BAR * noise and np.max(errors) <= MAX_BAR * noise)


def cell_rows(rows, cell):
    """The rows of a cell of the table: its relation, stability and (family, run length, peak LR)."""
    return [r for r in rows if (r["relation"], r["unstable"], tuple(r["cell"]))
            == (cell["relation"], cell["unstable"], (cell["family"], cell["length"], cell["lr"]))]


def headline(rows, cells):
    """(cells within the noise, cells scored, runs inside their band, runs scored): the protocol's summary, over
    the held-out runs of stable settings."""
    scored = [c["within_noise"] for c in cells if c["within_noise"] is not None]
    inside = [r["inside"] for r in rows if r["relation"] == "held out" and not r["unstable"]]
    return sum(scored), len(scored), sum(inside), len(inside)
