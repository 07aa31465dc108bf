"""
Loss laws: the val loss of a schedule as a function of its LRs, fitted to a few runs (predict.py's numerics).

    from lab import laws
    fit = laws.fit_law("floor", [dict(cfg=cfg, steps=steps, losses=losses), ...], fit_from=300)
    laws.predict_losses(fit, cfg, [600, 1200])          # the val loss at those steps of the schedule in cfg

A run here is dict(cfg, steps, losses): train.py's resolved config and the val losses logged at `steps`. Update u
(u = 0, 1, ...) uses the LR eta_u = schedules.learning_rate(cfg, u), and the val loss logged at step s is that of
the weights after updates 0 .. s-1. eta_p is the peak LR (cfg lr) and m_u = eta_u / eta_p the multiplier.

floor (this project's law, the default; docs/predict.md says what measurements it rests on):
    L(s)   = A tau(s)^-alpha + F (r_1(s) + (eta_p / eta_c)^2 r_3(s))
    tau(s) = sum_{u<s} m_u^q                                progress: each step weighted by its relative LR
    r_k(s) = 1 - sum_{u<s} (m_{u-1}^k - m_u^k) (1 - exp(-(R(s) - R(u)) / x0)),   R(s) = sum_{v<s} m_v
  A pure power law of progress (no irreducible L0: runs of a few thousand steps do not determine it, and fits that
  free it extrapolate worse), where a step at a fraction m of the peak LR counts m^q steps (q 0.15-0.4: a cosine's
  long tail at low LR makes less progress than a wsd run's plateau, whatever the peak LR); plus a noise floor, F at
  a constant LR below eta_c, that relaxes over x0 steps at the peak LR towards its value at the current LR eta:
  F m (1 + (eta / eta_c)^2), m = eta / eta_p. The growth above eta_c follows the current LR (r_3 relaxes towards m^3),
  not the peak: a cosine ending at a tenth of a high peak keeps a thousandth of that growth, not a tenth.
  (m_{W-1} := 1 at the end of the warmup W.)
mpl (Luo et al. 2025, arXiv 2503.12811), with S1(s) = sum_{u<s} eta_u the area under the LR, warmup included:
    L(s) = L0 + A S1(s)^-alpha - B sum_{u>=W} (eta_{u-1} - eta_u) (1 - (C eta_u^-gamma S_u(s) + 1)^-beta),
    S_u(s) = sum_{v=u..s-1} eta_v,  eta_{W-1} := eta_p
tissue (Tissue et al. 2024, arXiv 2408.11029): L(s) = L0 + A S1(s)^-alpha - C S2(s), S2(s) = sum_{u>=W} (eta_{u-1} -
    eta_u) (1 - lam^(s-u)) / (1 - lam), lam = 0.999
Only val losses at steps >= fit_from (and after the warmup) are fitted: none of the laws describes the warmup, and
the floor law not the first few hundred steps either (docs/predict.md).
"""

import math
from itertools import product

import numpy as np
from scipy.optimize import minimize

from lab.scaling import huber
from schedules import learning_rates

TISSUE_DECAY = 0.999  # lambda, the momentum of LR decrements; Tissue et al. fix it near 0.999 rather than fit it
FLOOR_UNBOUNDED_ETA_C = 1e6  # eta_c when one peak LR cannot determine it: the floor does not grow with the peak


def schedule_lrs(cfg, updates):
    """The LR of updates 0 .. updates-1 of the schedule in train.py config `cfg`."""
    return np.array(learning_rates(cfg, range(int(updates))), dtype=float)


def changes_after_warmup(lrs, warmup_steps, peak_lr):
    """(updates u >= W whose LR differs from the one before, eta_{u-1}, eta_u), eta_{W-1} := the peak."""
    after = lrs[warmup_steps:]
    before = np.concatenate([[peak_lr], after])[:-1]
    changed = np.flatnonzero(before != after)
    return warmup_steps + changed, before[changed], after[changed]


# ---------------------------------------------------------------------------------------------------------
# the laws: each precomputes what does not depend on its parameters, once per run


def floor_features(lrs, warmup_steps, peak_lr, steps):
    updates, before, after = changes_after_warmup(lrs, warmup_steps, peak_lr)
    relative = lrs / peak_lr  # m_u
    relaxed_before = np.concatenate([[0.0], np.cumsum(relative)])  # R(s) for every s
    return dict(relative=relative, steps=steps, peak=peak_lr, drops=(before - after) / peak_lr,
                drops3=((before / peak_lr) ** 3 - (after / peak_lr) ** 3),
                since=np.maximum(relaxed_before[steps][:, None] - relaxed_before[updates][None, :], 0.0))


def floor_loss(p, f):
    progress = np.concatenate([[0.0], np.cumsum(f["relative"] ** p["q"])])[f["steps"]]
    relaxed = 1 - np.exp(-f["since"] / p["x0"])
    r, r3 = 1 - relaxed @ f["drops"], 1 - relaxed @ f["drops3"]
    return p["A"] * progress ** -p["alpha"] + p["F"] * (r + np.float64(f["peak"] / p["eta_c"]) ** 2 * r3)


def mpl_features(lrs, warmup_steps, peak_lr, steps, decay=TISSUE_DECAY):
    """Both published laws' terms: area = S_W + S1(s); per LR change after the warmup, drops, log_lr = log eta_u and
    since[s, u] = S_u(s) (0 once u >= s); s2 = Tissue's S2(s)."""
    updates, before, after = changes_after_warmup(lrs, warmup_steps, peak_lr)
    area_before = np.concatenate([[0.0], np.cumsum(lrs)])
    area = area_before[steps]
    remaining = np.maximum(steps[:, None] - updates[None, :], 0)
    return dict(area=area, drops=before - after, log_lr=np.log(np.maximum(after, 1e-30)),
                since=np.maximum(area[:, None] - area_before[updates][None, :], 0.0),
                s2=((1 - decay ** remaining) / (1 - decay)) @ (before - after))


def mpl_loss(p, f):
    # a drop no LR area has followed (u >= s, or a drop to an LR of 0) counts nothing: eta_u^-gamma may overflow
    # (an LR near 0, gamma large), and inf * 0 would make the loss nan
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.where(f["since"] > 0, np.exp(-p["gamma"] * f["log_lr"]) * f["since"], 0.0)
    loss_drop = p["B"] * ((1 - (p["C"] * x + 1) ** -p["beta"]) @ f["drops"])
    return p["L0"] + p["A"] * f["area"] ** -p["alpha"] - loss_drop


def tissue_loss(p, f):
    return p["L0"] + p["A"] * f["area"] ** -p["alpha"] - p["C"] * f["s2"]


# Each law: its parameters (all positive and fitted as logarithms, but L0, which is free), its terms and formula,
# a grid of starts for the BFGS fit (A comes from the data), how many of the best starts BFGS runs from (as
# lab/scaling.py's Chinchilla fit does) and its gradient tolerance, far below scipy's default: good fits' objective
# is ~1e-6 (a mean Huber loss per point), and a looser BFGS stops short. The MPL grid surrounds the paper's beta 0.6,
# gamma 0.65, and its ridges (B, C and beta trade off) need more starts and a tighter tolerance; the floor grid
# spans the cpu-scale runs' fits (docs/predict.md).
LAWS = dict(
    floor=dict(names=("A", "alpha", "F", "eta_c", "q", "x0"), features=floor_features, loss=floor_loss,
               grid=dict(alpha=(0.2, 0.4), F=(0.03, 0.1), eta_c=(3e-3, 1e-2), q=(0.1, 0.5), x0=(3.0, 30.0)),
               starts=3, gtol=1e-7),
    mpl=dict(names=("L0", "A", "alpha", "B", "C", "beta", "gamma"), features=mpl_features, loss=mpl_loss,
             grid=dict(alpha=(0.2, 0.5, 1.0), B=(10, 100, 1000), C=(0.1, 1, 10), beta=(0.3, 0.6, 1.2),
                       gamma=(0.3, 0.65, 1.0)), starts=8, gtol=1e-9),
    tissue=dict(names=("L0", "A", "alpha", "C"), features=mpl_features, loss=tissue_loss,
                grid=dict(alpha=(0.2, 0.5, 1.0), C=(0.01, 0.1, 1, 10)), starts=8, gtol=1e-9))


def run_features(law, cfg, steps):
    """The law's terms for the schedule in train.py config `cfg` at `steps` (all >= the warmup)."""
    steps = np.asarray(steps, dtype=int)
    return LAWS[law]["features"](schedule_lrs(cfg, steps.max()), cfg["warmup_steps"], cfg["lr"], steps)


def predict_losses(fit, cfg, steps):
    """The fitted law's val loss at `steps` of the schedule in train.py config `cfg`."""
    return LAWS[fit["law"]]["loss"](fit["params"], run_features(fit["law"], cfg, steps))


# ---------------------------------------------------------------------------------------------------------
# fitting


def free_names(law, fixed):
    return [n for n in LAWS[law]["names"] if n not in fixed]


def to_params(law, theta, fixed):
    """{name: value}: the fixed ones as given, L0 as theta says, the others exp(theta) (they are positive)."""
    values = dict(zip(free_names(law, fixed), theta))
    return {n: fixed[n] if n in fixed else values[n] if n == "L0" else math.exp(values[n])
            for n in LAWS[law]["names"]}


def objective(theta, law, curves, fixed):
    """The mean over runs of each run's mean Huber loss of log predicted - log measured: every run counts the
    same, however many val losses it logged (a trunk logs many points of one noisy trajectory)."""
    p = to_params(law, theta, fixed)
    with np.errstate(all="ignore"):  # wild parameters overflow: they get a huge objective instead
        total = np.mean([huber(np.log(np.maximum(LAWS[law]["loss"](p, f), 1e-9)) - np.log(losses))[0].mean()
                         for f, losses in curves])
    return total if np.isfinite(total) else 1e30


def starts(law, curves, fixed):
    """Thetas from the law's grid: L0 at fractions of the lowest loss, A so the power law meets the first point."""
    first = min((f["area"][0] if "area" in f else f["steps"][0], losses[0]) for f, losses in curves)
    lowest = min(losses.min() for _, losses in curves)
    grid = {k: v for k, v in LAWS[law]["grid"].items() if k not in fixed}
    levels = (0.3 * lowest, 0.6 * lowest, 0.9 * lowest) if "L0" in LAWS[law]["names"] else (0.0,)
    for L0, *rest in product(levels, *grid.values()):
        values = dict(zip(grid, rest), L0=L0, A=(first[1] - L0) * first[0] ** rest[0])
        yield np.array([values[n] if n == "L0" else math.log(values[n]) for n in free_names(law, fixed)])


def fit_law(law, runs, fit_from=0, fixed=None):
    """Fit `law` to the runs' val losses at steps >= fit_from; dict(law, params, objective, points, fit_from, fixed,
    converged: whether BFGS says it converged, away from its start, and its message)."""
    fixed = dict(fixed or {})
    curves = []
    for run in runs:
        keep = run["steps"] >= fit_from
        curves.append((run_features(law, run["cfg"], run["steps"][keep]), run["losses"][keep]))
    how = LAWS[law]
    ranked = sorted(starts(law, curves, fixed), key=lambda theta: objective(theta, law, curves, fixed))[:how["starts"]]
    best = min((minimize(objective, theta, args=(law, curves, fixed), method="BFGS", options=dict(gtol=how["gtol"]))
                for theta in ranked), key=lambda result: result.fun)
    return dict(law=law, params=to_params(law, best.x, fixed), objective=float(best.fun), fit_from=fit_from,
                points=sum(len(losses) for _, losses in curves), fixed=sorted(fixed),
                converged=bool(best.success and best.nit > 0), message=str(best.message))
