"""
Compute accounting and a Chinchilla-style scaling-law fit for runs logged by train.py (claim C8).

    from lab import scaling
    runs = scaling.load_runs("results")["c8_scaling"]
    rows = scaling.compute_savings(runs)        # per model size: cosine at each length vs one trunk + its cooldowns
    N, D, L = scaling.fit_points(runs, scaling.is_full_cosine)  # final losses of the cosine runs
    fit = scaling.fit_loss_law(N, D, L)         # L(N, D) = E + A / N^alpha + B / D^beta
    scaling.compute_optimal(fit, [1e15, 1e16])  # the N and D that minimise the fitted L at C = 6 N D
    print("\n".join(scaling.report(runs)))      # all of it, as plot.py's summary prints it

A run is a dict with `name` (its folder), `info` (its config.json: config, origin, params, flops_per_token,
model_config, ...) and `metrics` (the records of its metrics.jsonl). Conventions, used throughout:
- N is the NON-EMBEDDING parameter count, flops_per_token['six_n'] / 6 (model.py's count: transformer blocks
  and norms). With it, the 6 N D of the compute-optimal formula is exactly the `six_n` FLOPs below, and the
  embedding, which is most of the paper's smallest models but little of our bytes-vocabulary ones, does not
  distort the size axis.
- D is the number of tokens the final weights have seen, a branch's trunk part included.
- Compute is what a run itself trained: tokens from its first to its last logged step (a branch starts at its
  origin step, so the trunk's shared part is counted once, in the trunk) times model.py's FLOPs per token,
  both conventions (six_n and chinchilla), as recorded in config.json.
"""

import math
import os
from collections import defaultdict
from itertools import product
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from lab.config import ConfigError, read_json

HUBER_DELTA = 1e-3  # Chinchilla's: residuals of log-loss above 0.1 % count linearly, so outliers weigh little
# Starting points as in Chinchilla (Hoffmann et al. 2022, appendix D.2) in (log A, log B, log E, alpha, beta).
# The optimiser runs from the FIT_STARTS best of them (ranked by the objective), which finds the same optimum
# as running from all 4500 in a fraction of the time (tests/test_scaling.py checks it recovers known laws).
INIT_GRID = dict(log_A=np.arange(0, 30, 5.0), log_B=np.arange(0, 30, 5.0), log_E=np.arange(-1, 1.5, 0.5),
                 alpha=np.arange(0, 2.5, 0.5), beta=np.arange(0, 2.5, 0.5))
FIT_STARTS = 16
REQUIRED_KEYS = ("config", "origin", "model_config", "flops_per_token", "params")


# ---------------------------------------------------------------------------------------------------------
# runs: reading them, and what they are, from their config.json and metrics.jsonl


def load_runs(results_dir):
    """{suite: [run]} from <results_dir>/<suite>/<run>/{config.json, metrics.jsonl}. A folder without both files
    (a run still going) or with an empty log is skipped with a note, a <run>.partial folder (sweep.py's copy
    in progress) silently; unreadable files raise ConfigError."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(f"results directory '{root}' does not exist")
    suites = defaultdict(list)
    for run_dir in sorted(root.glob("*/*/")):
        if run_dir.name.endswith(".partial"):
            continue
        paths = run_dir / "config.json", run_dir / "metrics.jsonl"
        if not all(p.is_file() for p in paths):
            print(f"note: {run_dir} has no config.json and metrics.jsonl: skipped")
            continue
        info, metrics = read_json(paths[0]), read_json(paths[1], lines=True)
        missing = [k for k in REQUIRED_KEYS if k not in info]
        if missing:
            raise ConfigError(f"{paths[0]} is not a train.py config.json (no {', '.join(missing)})")
        if not metrics:
            print(f"note: {paths[1]} is empty: skipped")
            continue
        suites[run_dir.parent.name].append(dict(name=run_dir.name, info=info, metrics=metrics, dir=str(run_dir)))
    return suites


def is_branch(run):
    return run["info"].get("origin") is not None


def size_key(run):
    """Runs of the same model shape share this key (the sequence length does not change the model)."""
    return tuple(sorted((k, v) for k, v in run["info"]["model_config"].items() if k != "block_size"))


def by_size(runs):
    """The runs grouped by model shape (size_key), smallest non-embedding parameter count first."""
    groups = defaultdict(list)
    for run in runs:
        groups[size_key(run)].append(run)
    return sorted(groups.values(), key=lambda group: non_embedding_params(group[0]))


def size_label(run):
    """The model's name in figures and tables: all its parameters, as the paper names its sizes."""
    return f"{run['info']['params'] / 1e6:.3g}M"


def non_embedding_params(run):
    return run["info"]["flops_per_token"]["six_n"] / 6


def tokens_per_step(run):
    return run["info"]["config"]["batch_size"] * run["info"]["config"]["seq_len"]


def last_step(run):
    return max(r["step"] for r in run["metrics"])


def start_step(run):
    return run["info"]["origin"]["step"] if is_branch(run) else 0


def final_loss(run, key="val_loss"):
    """Validation loss (`key`: or val_loss_swa, val_loss_ema) at max_steps, or None if the run did not get there."""
    target = run["info"]["config"]["max_steps"]
    return next((r[key] for r in run["metrics"] if r["step"] == target and r.get(key) is not None), None)


def is_full_cosine(run):
    """A cosine run from scratch whose cycle ends where the run ends: the paper's baseline."""
    cfg = run["info"]["config"]
    return (cfg["schedule"] == "cosine" and cfg["optimizer"] == "adamw" and not is_branch(run)
            and cfg.get("cycle_steps") in (None, cfg["max_steps"]))


def is_cooldown(run):
    cfg = run["info"]["config"]
    return cfg["schedule"] == "wsd" and cfg["optimizer"] == "adamw"


def is_constant_family(run):
    """A constant-LR trunk or one of its cooldowns: they share their peak LR."""
    cfg = run["info"]["config"]
    return cfg["schedule"] in ("constant", "wsd") and cfg["optimizer"] == "adamw"


def best_lrs(runs):
    """The runs a tuned scaling study keeps when a size was run at several peak LRs: per size, the cosine runs
    of its best cosine LR and the trunk and cooldowns of its best constant LR, best by the mean final loss over
    the lengths (the LR that finished the most of them first). Sizes with one LR keep all their runs."""
    kept = []
    for group in by_size(runs):
        for family, scored in ((is_full_cosine, is_full_cosine), (is_constant_family, is_cooldown)):
            by_lr = defaultdict(list)
            for run in (r for r in group if family(r)):
                by_lr[run["info"]["config"]["lr"]].append(run)
            if not by_lr:
                continue

            def rank(lr):
                losses = [final_loss(r) for r in by_lr[lr] if scored(r) and final_loss(r) is not None]
                return -len(losses), float(np.mean(losses)) if losses else math.inf

            kept += by_lr[min(by_lr, key=rank)]
        kept += [r for r in group if not is_full_cosine(r) and not is_constant_family(r)]
    return kept


# ---------------------------------------------------------------------------------------------------------
# compute


def flops_of(run, tokens):
    """`tokens` trained with this run's model: dict(tokens, six_n, chinchilla) in FLOPs."""
    flops = run["info"]["flops_per_token"]
    return dict(tokens=tokens, six_n=tokens * flops["six_n"], chinchilla=tokens * flops["chinchilla"])


def run_compute(run):
    """Tokens and FLOPs of the steps this run trained itself: from its start (0, or a branch's origin step)
    to its last logged step."""
    return flops_of(run, (last_step(run) - start_step(run)) * tokens_per_step(run))


def _add(totals, compute):
    for key, value in compute.items():
        totals[key] = totals.get(key, 0) + value
    return totals


def compute_savings(runs):
    """Per model size (sorted by N): the compute of its full cosine runs against that of its constant-LR
    trunks plus their cooldown branches, and their ratio (chinchilla FLOPs; six_n gives the same ratio as long
    as a size's runs share seq_len). A trunk counts once, up to its last step; a branch counts its own steps.
    Returns [dict(size, label, params, cosine={runs, tokens, six_n, chinchilla}, cooldown={runs, trunks, tokens,
    six_n, chinchilla}, ratio, notes)] for the sizes that have both kinds of runs."""
    rows = []
    for group in by_size(runs):
        cosine = [r for r in group if is_full_cosine(r)]
        branches = [r for r in group if is_branch(r)]
        if not cosine or not branches:
            continue
        runs_by_dir = {os.path.normpath(r["info"]["config"]["out_dir"]): r for r in group if not is_branch(r)}
        by_trunk = defaultdict(list)  # trunk out_dir -> its branches
        for branch in branches:
            by_trunk[os.path.normpath(branch["info"]["origin"]["out_dir"])].append(branch)
        cooldown, notes = dict(runs=len(branches), trunks=len(by_trunk)), []
        for trunk_dir, its_branches in by_trunk.items():
            if trunk_dir in runs_by_dir:
                _add(cooldown, run_compute(runs_by_dir[trunk_dir]))
            else:  # the trunk trained at least up to its furthest branch point
                furthest = max(its_branches, key=start_step)
                notes.append(f"trunk {trunk_dir} is not among the runs: counted up to step {start_step(furthest)}")
                _add(cooldown, flops_of(furthest, start_step(furthest) * tokens_per_step(furthest)))
        for branch in branches:
            _add(cooldown, run_compute(branch))
        cosine_total = dict(runs=len(cosine))
        for run in cosine:
            _add(cosine_total, run_compute(run))
        rows.append(dict(size=size_key(group[0]), label=size_label(group[0]), params=non_embedding_params(group[0]),
                         cosine=cosine_total, cooldown=cooldown,
                         ratio=cooldown["chinchilla"] / cosine_total["chinchilla"], notes=notes))
    return rows


# ---------------------------------------------------------------------------------------------------------
# the loss law L(N, D) = E + A / N^alpha + B / D^beta


def fit_points(runs, select):
    """Arrays N (non-embedding params), D (tokens seen), L (final val loss) of the finished runs `select`ed."""
    points = [(non_embedding_params(r), last_step(r) * tokens_per_step(r), final_loss(r))
              for r in runs if select(r) and final_loss(r) is not None]
    return tuple(np.array(column, dtype=float) for column in zip(*points)) if points else (np.array([]),) * 3


def _terms(theta, log_N, log_D):
    """log(A / N^alpha), log(B / D^beta), log E for each point (axis -1), for one theta (5,) or many (k, 5):
    the law is log L_hat = logsumexp of these three, which keeps it finite for any parameters."""
    log_A, log_B, log_E, alpha, beta = (p[..., None] for p in np.moveaxis(np.asarray(theta, dtype=float), -1, 0))
    return np.stack(np.broadcast_arrays(log_A - alpha * log_N, log_B - beta * log_D, log_E), axis=-2)


def huber(residual):
    """The Huber loss of residuals of log-loss and its derivative (laws.py's fits use it too)."""
    small = np.abs(residual) <= HUBER_DELTA
    return (np.where(small, 0.5 * residual**2, HUBER_DELTA * (np.abs(residual) - 0.5 * HUBER_DELTA)),
            np.where(small, residual, HUBER_DELTA * np.sign(residual)))  # the loss and its derivative


def _objective(theta, log_N, log_D, log_L):
    """Summed Huber loss of log L_hat - log L, and its gradient in theta = (log A, log B, log E, alpha, beta)."""
    terms = _terms(theta, log_N, log_D)
    loss, slope = huber(logsumexp(terms, axis=0) - log_L)
    weights = softmax(terms, axis=0) * slope  # d log L_hat / d term, times d Huber / d residual
    grad = np.array([weights[0].sum(), weights[1].sum(), weights[2].sum(),
                     -(weights[0] * log_N).sum(), -(weights[1] * log_D).sum()])
    return loss.sum(), grad


def fit_loss_law(N, D, L):
    """Fit L(N, D) = E + A / N^alpha + B / D^beta by minimising the Huber loss (delta 1e-3) of the log-loss
    residuals, as Chinchilla did. Returns dict(E, A, B, alpha, beta, objective, rms_log_residual, points), or
    None with fewer than 5 points or fewer than 2 distinct values of N or of D.

    Chinchilla used L-BFGS; with 5 parameters its limited memory saves nothing, so this is full BFGS (the
    same optimum), because scipy's L-BFGS-B calls multithreaded BLAS at every step, which made the fit 10-30x
    slower on a busy CPU."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    if len(L) < 5 or len(set(N)) < 2 or len(set(D)) < 2:
        return None
    data = (np.log(N), np.log(D), np.log(L))
    grid = np.array(list(product(*INIT_GRID.values())))
    grid_losses = huber(logsumexp(_terms(grid, *data[:2]), axis=-2) - data[2])[0].sum(axis=-1)
    best = None
    for theta in grid[np.argsort(grid_losses)[:FIT_STARTS]]:
        result = minimize(_objective, theta, args=data, jac=True, method="BFGS", options=dict(maxiter=2000, gtol=1e-10))
        if best is None or result.fun < best.fun:
            best = result
    log_A, log_B, log_E, alpha, beta = best.x
    fit = dict(E=math.exp(log_E), A=math.exp(log_A), B=math.exp(log_B), alpha=float(alpha), beta=float(beta),
               objective=float(best.fun), points=len(L))
    fit["rms_log_residual"] = float(np.sqrt(np.mean((np.log(predict(fit, N, D)) - data[2]) ** 2)))
    return fit


def predict(fit, N, D):
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return fit["E"] + fit["A"] / N ** fit["alpha"] + fit["B"] / D ** fit["beta"]


def compute_optimal(fit, budgets):
    """For each budget C (FLOPs, C = 6 N D): the N and D minimising the fitted loss, in closed form
    N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6) / N_opt, G = (alpha A / (beta B))^(1/(alpha+beta)),
    and the loss predicted there. Returns [dict(flops, N, D, loss)]."""
    a, b = fit["alpha"], fit["beta"]
    if a <= 0 or b <= 0:  # the loss falls with N or D without limit: no finite optimum
        return [dict(flops=flops, N=math.nan, D=math.nan, loss=math.nan) for flops in budgets]
    G = (a * fit["A"] / (b * fit["B"])) ** (1 / (a + b))
    rows = []
    for flops in budgets:
        N = G * (flops / 6) ** (b / (a + b))
        D = flops / 6 / N
        rows.append(dict(flops=flops, N=N, D=D, loss=float(predict(fit, N, D))))
    return rows


def default_budgets(N, D, beyond=2):
    """Powers of ten spanning the runs' 6 N D, and `beyond` decades past the largest: what the fits predict."""
    compute = 6 * np.asarray(N) * np.asarray(D)
    low, high = math.ceil(math.log10(compute.min())), math.floor(math.log10(compute.max())) + beyond
    return [10.0**k for k in range(min(low, high), high + 1)]


def compare_fits(fits, budgets):
    """Compute-optimal allocations of each named fit in `fits` ({name: fit}) at every budget, and the ratio of
    the last fit's N_opt to the first's (1 = they agree). Returns [dict(flops, <name>=row, N_ratio, D_ratio)]."""
    names = list(fits)
    tables = {name: compute_optimal(fits[name], budgets) for name in names}
    rows = []
    for i, flops in enumerate(budgets):
        first, last = tables[names[0]][i], tables[names[-1]][i]
        rows.append(dict(flops=flops, **{name: tables[name][i] for name in names},
                         N_ratio=last["N"] / first["N"], D_ratio=last["D"] / first["D"]))
    return rows


# ---------------------------------------------------------------------------------------------------------
# the C8 numbers of docs/results.md


def report(runs):
    """Lines of text: each size's best LRs (when it has several), compute ratio, the two fits, and their
    compute-optimal allocations, of each size's runs at its best LRs (best_lrs)."""
    lines, tuned = [], best_lrs(runs)
    families = (("cosine", is_full_cosine), ("constant", is_constant_family))
    for group, kept in zip(by_size(runs), by_size(tuned)):
        lrs = {name: sorted({r["info"]["config"]["lr"] for r in group if select(r)}) for name, select in families}
        if any(len(values) > 1 for values in lrs.values()):
            chosen = {name: sorted({r["info"]["config"]["lr"] for r in kept if select(r)}) for name, select in families}
            lines.append(f"{size_label(group[0])}: best LRs " + ", ".join(
                f"{name} {chosen[name][0]:g} (of {', '.join(f'{lr:g}' for lr in lrs[name])})"
                for name in lrs if chosen[name]))
    runs = tuned
    for row in compute_savings(runs):
        lines.append(f"{row['label']}: trunk + {row['cooldown']['runs']} cooldowns cost {row['ratio']:.3f} of "
                     f"{row['cosine']['runs']} cosine runs ({row['cooldown']['chinchilla']:.3g} vs "
                     f"{row['cosine']['chinchilla']:.3g} FLOPs)" + "".join(f"; {note}" for note in row["notes"]))
    fits = {name: fit_loss_law(*fit_points(runs, select))
            for name, select in (("cosine", is_full_cosine), ("cooldown", is_cooldown))}
    for name, fit in fits.items():
        lines.append(f"fit to {name} runs: " + ("too few runs (needs 5, of 2 sizes and 2 lengths)" if fit is None else
                     f"L = {fit['E']:.3f} + {fit['A']:.3g}/N^{fit['alpha']:.3f} + {fit['B']:.3g}/D^{fit['beta']:.3f} "
                     f"({fit['points']} runs, rms log residual {fit['rms_log_residual']:.4f})"))
    if all(fits.values()):
        N, D, _ = fit_points(runs, lambda run: is_full_cosine(run) or is_cooldown(run))
        for row in compare_fits(fits, default_budgets(N, D)):
            lines.append(f"C = {row['flops']:.0e} FLOPs: N_opt {row['cosine']['N']:.3g} (cosine fit) vs "
                         f"{row['cooldown']['N']:.3g} (cooldown fit), ratio {row['N_ratio']:.2f}; D_opt "
                         f"{row['cosine']['D']:.3g} vs {row['cooldown']['D']:.3g}, ratio {row['D_ratio']:.2f}")
    return lines
