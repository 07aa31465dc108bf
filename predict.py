"""
The val-loss curve of any LR schedule, predicted from a few runs: the multi-power law (Luo et al. 2025,
arXiv 2503.12811) and, as a baseline, the law of Tissue et al. 2024 (arXiv 2408.11029), fitted to runs train.py wrote.

    T=results/c5_cooldown_lengths; FIT="--fit=$T/constant --fit=$T/constant-to1200-cd240"
    python predict.py $FIT                                    # the fitted law, and how well it explains each run
    python predict.py $FIT --max_steps=1200 --cooldown_shape=linear --cooldown_frac=0.1   # any train.py schedule
    python predict.py $FIT --law=tissue --schedule=cosine --max_steps=600
    python predict.py $FIT --max_steps=1200 --optimize        # the best wsd cooldown (length, shape 1-x^A)
    python predict.py $FIT --check=results --figure=figures/predict_validation.png   # predict every other run

A --fit or --check DIR is a run folder (config.json + metrics.jsonl) or any folder above some; both may be
repeated; --fit_from=STEP fits only the val losses from that step on. The fitted runs must share model, data and
batch (SETUP_KEYS). Schedule keys not given are train.py's defaults, except lr, warmup_steps and eval_interval:
the first fitted run's. --check fits the laws named by --law (default: both) and predicts every run there of
the fitted runs' setup.

Indices. train.py numbers updates u = 0, 1, ...; update u uses eta(u) = schedules.learning_rate(cfg, u), and the
val loss logged at step s is that of the weights after updates 0 .. s-1. (A branch's config describes its trunk's
steps too when, as for branch.py's cooldowns of a constant trunk, both schedules agree before the branch point.)
The papers' step tau = 1, 2, ... is the update u = W + tau - 1 after the W warmup updates, and their eta_0 is the
peak LR (cfg lr, reached where the warmup ends). So at a step s >= W:
    S_W + S1(s) = sum_{u<s} eta(u)          the area under the LR, warmup included
    S_k(s)      = sum_{v=u..s-1} eta(v)      for the update u of the papers' step k
    LD(s)       = B sum_{u=W..s-1} (eta(u-1) - eta(u)) G(eta(u)^-gamma S_k(s)),  with eta(W-1) := the peak
    G(x)        = 1 - (C x + 1)^-beta
    MPL:    L(s) = L0 + A (S_W + S1(s))^-alpha - LD(s)
    Tissue: L(s) = L0 + A (S_W + S1(s))^-alpha - C S2(s),  S2(s) = sum_{u=W..s-1} m(u),
            m(u) = lam m(u-1) + eta(u-1) - eta(u),  i.e. S2(s) = sum_u (eta(u-1) - eta(u)) (1 - lam^(s-u)) / (1 - lam)
Only val losses at steps >= W (and > 0) are fitted or predicted: neither law describes the warmup.
"""

import math
import sys
from itertools import product
from pathlib import Path

import numpy as np
from scipy.optimize import brute, fmin, minimize

from lab import settings
from lab.config import ConfigError, Setting, parse_args, read_json, write_atomically
from lab.runs import data_fingerprint
from lab.scaling import HUBER_DELTA
from lab.shards import short
from schedules import SCHEDULE_KEYS, ScheduleError, learning_rate, resolve_cooldown_steps, validate_schedule

TISSUE_DECAY = 0.999  # lambda, the momentum of LR decrements; Tissue et al. fix it near 0.999 rather than fit it
SETUP_KEYS = ("model", "n_layer", "n_head", "n_embd", "ffw_size", "data_dir", "batch_size", "seq_len")
FIT_STARTS = 8  # BFGS runs from the best of a grid of starts, as lab/scaling.py's Chinchilla fit does
SHAPE_EXPONENTS = (0.1, 10.0)  # --optimize searches cooldown shapes 1-x^A with A in this range
REPEATED = ("fit", "check")  # keys that may be given several times, collected before parse_args
SETTINGS = dict(
    {k: settings.SETTINGS[k] for k in SCHEDULE_KEYS},
    lr=Setting(None, "the asked schedule's peak LR (None: the first fitted run's)", "> 0", (float, type(None))),
    warmup_steps=Setting(None, "its warmup (None: the first fitted run's)", ">= 0", (int, type(None))),
    eval_interval=Setting(None, "the steps predicted (None: the first fitted run's)", ">= 1", (int, type(None))),
    law=Setting(None, "mpl or tissue (None: mpl, and both with --check)", types=(str, type(None))),
    fit=Setting([], "a run folder, or a folder above some, to fit (repeatable)"),
    check=Setting([], "a folder of runs to predict with the fitted laws (repeatable)"),
    figure=Setting(None, "with --check: a figure of the predictions (.png, and its .pdf)", types=(str, type(None))),
    optimize=Setting(False, "the best wsd cooldown (length, shape 1-x^A) for max_steps"),
    fit_from=Setting(0, "fit only the val losses from this step on", ">= 0"),
)


# ---------------------------------------------------------------------------------------------------------
# runs: their val losses and the LR of every step


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
    """dict(name, cfg, steps, losses): the val losses at steps >= the warmup, and train.py's resolved config."""
    info = read_json(folder / "config.json")
    if not isinstance(info, dict) or "config" not in info:
        raise ConfigError(f"{folder / 'config.json'} is not a train.py config.json (no 'config')")
    cfg, records = info["config"], read_json(folder / "metrics.jsonl", lines=True)
    points = sorted({r["step"]: r["val_loss"] for r in records if r.get("val_loss") is not None
                     and r["step"] >= max(cfg["warmup_steps"], 1)}.items())
    if cfg["optimizer"] == "adamw":
        for r in records:  # a logged lr is that of the step's last update: it must be the config's schedule
            if r.get("lr") is not None and not math.isclose(r["lr"], learning_rate(cfg, r["step"] - 1), rel_tol=1e-6):
                raise ConfigError(f"run {folder}: its logged lr at step {r['step']} is not its config's schedule")
    return dict(name=str(folder), cfg=cfg, steps=np.array([s for s, _ in points], dtype=int),
                losses=np.array([v for _, v in points], dtype=float), trained=any("lr" in r for r in records),
                data=data_fingerprint(info))


def from_step(run, first_step):
    """The run with only its val losses at steps >= first_step."""
    keep = run["steps"] >= first_step
    return dict(run, steps=run["steps"][keep], losses=run["losses"][keep])


def unusable(run):
    """Why a law cannot be fitted to or checked against this run, or None."""
    if run["cfg"]["optimizer"] != "adamw":
        return f"its optimizer {run['cfg']['optimizer']} sets its own LR"
    if not run["trained"]:  # e.g. a log of averaged or merged weights: not the curve of a training run
        return "its log has no training steps (no lr)"
    return None if len(run["steps"]) else "it has no val_loss after the warmup"


def setup_difference(run, other):
    """(key, its value, the other's) for the first setup key two runs differ in, or None; the data's fingerprint
    too, where both runs record one (lab/shards.py)."""
    if None not in (run["data"], other["data"]) and run["data"] != other["data"]:
        return "data", short(run["data"]), short(other["data"])
    return next(((k, run["cfg"].get(k), other["cfg"].get(k)) for k in SETUP_KEYS
                 if run["cfg"].get(k) != other["cfg"].get(k)), None)


def load_fit_runs(folders):
    if not folders:
        raise ConfigError("no runs to fit: give --fit=DIR (a run folder or a folder of them), once or more")
    runs = [load_run(d) for d in dict.fromkeys(d for folder in folders for d in find_run_dirs(folder))]
    for run in runs:
        if unusable(run):
            raise ConfigError(f"cannot fit run {run['name']}: {unusable(run)}")
        difference = setup_difference(run, runs[0])
        if difference:
            key, mine, theirs = difference
            raise ConfigError(f"runs {runs[0]['name']} and {run['name']} differ in {key} ({theirs!r} vs {mine!r}): "
                              f"fit runs of one model, data and batch")
    return runs


# ---------------------------------------------------------------------------------------------------------
# the laws


def curve_features(lrs, warmup_steps, peak_lr, steps, decay=TISSUE_DECAY):
    """What both laws need at each step s of `steps` (W <= s <= len(lrs)): area = S_W + S1(s); for the updates u
    after the warmup whose LR differs from the one before (the others add nothing), drops = eta(u-1) - eta(u),
    log_lr = log eta(u) and since[s, u] = S_k(s) (0 once u >= s); s2 = Tissue's S2(s) with lambda = `decay`."""
    lrs, steps = np.asarray(lrs, dtype=float), np.asarray(steps, dtype=int)
    area_before = np.concatenate([[0.0], np.cumsum(lrs)])  # area_before[s] = sum_{u<s} eta(u)
    after_warmup = lrs[warmup_steps:]
    drops = np.concatenate([[peak_lr], after_warmup])[:-1] - after_warmup
    changed = np.flatnonzero(drops)
    updates, drops = warmup_steps + changed, drops[changed]
    area = area_before[steps]
    since = np.maximum(area[:, None] - area_before[updates][None, :], 0.0)
    remaining = np.maximum(steps[:, None] - updates[None, :], 0)
    return dict(area=area, drops=drops, log_lr=np.log(np.maximum(lrs[updates], 1e-30)), since=since,
                s2=((1 - decay ** remaining) / (1 - decay)) @ drops)


def mpl_loss(p, f):
    x = np.exp(-p["gamma"] * f["log_lr"]) * f["since"]
    loss_drop = p["B"] * ((1 - (p["C"] * x + 1) ** -p["beta"]) @ f["drops"])
    return p["L0"] + p["A"] * f["area"] ** -p["alpha"] - loss_drop


def tissue_loss(p, f):
    return p["L0"] + p["A"] * f["area"] ** -p["alpha"] - p["C"] * f["s2"]


# Each law: its parameters (L0 free, the others positive: fitted as logarithms), its formula, and the grid of
# starts beside L0 and A, which come from the data. The MPL grid surrounds the paper's beta 0.6, gamma 0.65.
LAWS = dict(
    mpl=dict(names=("L0", "A", "alpha", "B", "C", "beta", "gamma"), loss=mpl_loss,
             grid=dict(alpha=(0.2, 0.5, 1.0), B=(10, 100, 1000), C=(0.1, 1, 10), beta=(0.3, 0.6, 1.2),
                       gamma=(0.3, 0.65, 1.0))),
    tissue=dict(names=("L0", "A", "alpha", "C"), loss=tissue_loss,
                grid=dict(alpha=(0.2, 0.5, 1.0), C=(0.01, 0.1, 1, 10))))


def law_named(name):
    if name not in LAWS:
        raise ConfigError(f"unknown law '{name}'; expected one of {', '.join(LAWS)}")
    return LAWS[name]


def to_params(law, theta):
    return dict(zip(law["names"], [theta[0], *np.exp(theta[1:])]))


def huber(residual):
    small = np.abs(residual) <= HUBER_DELTA
    return np.where(small, 0.5 * residual**2, HUBER_DELTA * (np.abs(residual) - 0.5 * HUBER_DELTA))


def objective(theta, law, curves):
    """Summed Huber loss of log predicted - log measured over every point of every curve ([(features, losses)])."""
    p = to_params(law, theta)
    with np.errstate(all="ignore"):  # wild parameters overflow: they get a huge objective instead
        total = sum(huber(np.log(np.maximum(law["loss"](p, f), 1e-9)) - np.log(losses)).sum() for f, losses in curves)
    return total if np.isfinite(total) else 1e30


def starts(law, curves):
    """A grid of thetas: L0 at fractions of the lowest loss, A so the power law meets the earliest point."""
    area, loss = min((a, l) for f, losses in curves for a, l in zip(f["area"], losses))
    lowest = min(losses.min() for _, losses in curves)
    for L0, *rest in product((0.3 * lowest, 0.6 * lowest, 0.9 * lowest), *law["grid"].values()):
        values = dict(zip(law["grid"], rest), L0=L0, A=(loss - L0) * area ** rest[0])
        yield np.array([L0, *np.log([values[n] for n in law["names"][1:]])])


def fit_law(name, runs):
    """Fit the law `name` to the runs' val losses; dict(law, params, objective, points)."""
    law = law_named(name)
    curves = [(run_features(run["cfg"], run["steps"]), run["losses"]) for run in runs]
    ranked = sorted(starts(law, curves), key=lambda theta: objective(theta, law, curves))[:FIT_STARTS]
    # gtol far below scipy's default: the Huber objective of good fits is ~1e-4, and a looser BFGS stops short
    results = [minimize(objective, theta, args=(law, curves), method="BFGS", options=dict(gtol=1e-8))
               for theta in ranked]
    best = min(results, key=lambda result: result.fun)
    return dict(law=name, params=to_params(law, best.x), objective=float(best.fun),
                points=sum(len(losses) for _, losses in curves))


def run_features(cfg, steps):
    """curve_features of the schedule in train.py config `cfg`, from the LR of every update before the last step."""
    lrs = [learning_rate(cfg, u) for u in range(int(max(steps)))]
    return curve_features(lrs, cfg["warmup_steps"], cfg["lr"], steps)


def predict_losses(fit, cfg, steps):
    """The fitted law's val loss at `steps` (all >= the warmup) of the schedule in train.py config `cfg`."""
    return LAWS[fit["law"]]["loss"](fit["params"], run_features(cfg, steps))


def relative_errors(fit, run):
    return predict_losses(fit, run["cfg"], run["steps"]) / run["losses"] - 1


# ---------------------------------------------------------------------------------------------------------
# schedule design: the wsd cooldown the fitted law likes best


def optimal_cooldown(fit, cfg):
    """The train.py config of the wsd schedule (cooldown length and shape 1-x^A) with the lowest predicted val loss
    at max_steps; the other keys of `cfg` (lr, warmup, final_lr_frac, ...) stay. A grid, then Nelder-Mead."""
    n, warmup = cfg["max_steps"], cfg["warmup_steps"]
    if n - warmup < 1:
        raise ConfigError(f"max_steps={n} leaves no step after the warmup (warmup_steps={warmup}) to cool down")

    def settings(x):  # (cooldown fraction, log A) -> a config train.py can run, whole steps and a 3-digit A
        cooldown = int(np.clip(round(x[0] * n), 1, n - warmup))
        exponent = float(np.clip(np.exp(x[1]), *SHAPE_EXPONENTS))
        return dict(cfg, schedule="wsd", cooldown_steps=cooldown, cooldown_shape=f"1-x^{exponent:.3g}")

    final = lambda x: float(predict_losses(fit, settings(x), [n])[0])  # noqa: E731
    best = brute(final, ((1 / n, (n - warmup) / n), tuple(np.log(SHAPE_EXPONENTS))), Ns=15, finish=fmin)
    return settings(best)


def train_command(cfg):
    keys = ("schedule", "max_steps", "lr", "warmup_steps", "cooldown_steps", "cooldown_shape", "final_lr_frac")
    return "python train.py " + " ".join(f"--{k}={cfg[k]}" for k in keys if cfg[k] is not None)


# ---------------------------------------------------------------------------------------------------------
# checking: predicting other runs of the same setup


def describe(cfg):
    n = cfg["max_steps"]
    if cfg["schedule"] == "wsd":
        start = n - resolve_cooldown_steps(n, cfg["cooldown_frac"], cfg["cooldown_steps"])
        return f"wsd {cfg['cooldown_shape']} cooldown {start}->{n}"
    return f"{cfg['schedule']} {n}" + (f" cycle {cfg['cycle_steps']}" if cfg.get("cycle_steps") else "")


def runs_to_check(folders, fitted):
    """The runs below `folders` that a fit of `fitted` can predict: same setup, finished, an LR schedule, and not a
    copy of a fitted run or of one already chosen (copies of a run sit in several suites, and a branch's trunk
    part is its trunk's: runs are deterministic, so the same final step and val loss mean the same run)."""
    final = lambda run: (run["cfg"]["max_steps"], round(float(run["losses"][-1]), 9))  # noqa: E731
    finals = {final(run): f"fitted {run['name']}" for run in fitted}
    chosen, notes = [], []
    for folder in dict.fromkeys(d for f in folders for d in find_run_dirs(f)):
        run = load_run(folder)
        why = (unusable(run) or (setup_difference(run, fitted[0]) and "another model, data or batch")
               or (run["steps"][-1] != run["cfg"]["max_steps"] and "it did not reach max_steps")
               or (run["name"] in (r["name"] for r in fitted) and "it is a fitted run")
               or (final(run) in finals and f"a copy of {finals[final(run)]}"))
        if why:
            notes.append(f"note: skipped {run['name']}: {why}")
            continue
        finals[final(run)] = run["name"]
        chosen.append(run)
    return chosen, notes


def check_table(runs, fits, fitted_lrs):
    """Markdown lines: each run's measured and predicted final val loss per law, then mean and max |error| over
    the runs at a fitted LR and over those at another LR (an extrapolation in LR)."""
    header = "| run | lr | schedule | measured | " + " | ".join(f"{f['law']} | error" for f in fits) + " |"
    lines = [header, "|" + "---|" * (4 + 2 * len(fits))]
    errors = {f["law"]: {True: [], False: []} for f in fits}
    for run in runs:
        measured, cells = run["losses"][-1], []
        for fit in fits:
            predicted = predict_losses(fit, run["cfg"], run["steps"][-1:])[0]
            errors[fit["law"]][run["cfg"]["lr"] in fitted_lrs].append(abs(predicted / measured - 1))
            cells.append(f"{predicted:.4f} | {predicted / measured - 1:+.2%}")
        lines.append(f"| {run['name']} | {run['cfg']['lr']:g} | {describe(run['cfg'])} | {measured:.4f} | "
                     + " | ".join(cells) + " |")
    for law, groups in errors.items():
        for at_fitted, values in groups.items():
            if values:
                lines.append(f"{law}: {len(values)} runs at {'the fitted' if at_fitted else 'another'} lr: final "
                             f"val_loss |relative error| mean {np.mean(values):.2%}, max {np.max(values):.2%}")
    return lines


def draw_validation(fitted, runs, fits, path):
    """Measured (dots) and predicted (one line style per law) val loss: a panel per LR and run length, the
    fitted runs first; and predicted against measured final losses. Written as `path` and as .pdf beside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fitted_lrs = {r["cfg"]["lr"] for r in fitted}
    panels = {"fitted runs": fitted}
    for run in sorted(runs, key=lambda r: (r["cfg"]["lr"] not in fitted_lrs, r["cfg"]["lr"], r["cfg"]["max_steps"])):
        lr, n = run["cfg"]["lr"], run["cfg"]["max_steps"]
        panels.setdefault(f"lr {lr:g}, {n} steps" if lr in fitted_lrs else f"lr {lr:g} (not fitted)", []).append(run)
    columns = min(4, len(panels) + 1)
    rows = math.ceil((len(panels) + 1) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False)
    styles = dict(zip(LAWS, ("-", "--")))
    for ax, (title, group) in zip(axes.flat, panels.items()):
        for i, run in enumerate(group):
            # from a third of the run (its early curve is far above the rest), or from where a branch starts
            colour, start = plt.cm.tab20(i % 20), max(run["steps"][0], run["cfg"]["max_steps"] // 3)
            shown = run["steps"] >= start
            ax.plot(run["steps"][shown], run["losses"][shown], "o", ms=3, color=colour, label=describe(run["cfg"]))
            steps = np.arange(start, run["cfg"]["max_steps"] + 1, 5)
            for fit in fits:
                ax.plot(steps, predict_losses(fit, run["cfg"], steps), styles[fit["law"]], color=colour, lw=1)
        ax.set(title=title, xlabel="step", ylabel="val loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    scatter, same_lr = axes.flat[len(panels)], [r for r in runs if r["cfg"]["lr"] in fitted_lrs] or runs
    measured = [r["losses"][-1] for r in same_lr]
    for fit, marker in zip(fits, "ox"):
        predicted = [predict_losses(fit, r["cfg"], r["steps"][-1:])[0] for r in same_lr]
        scatter.plot(measured, predicted, marker, ls="", label=fit["law"])
    scatter.plot([min(measured), max(measured)], [min(measured), max(measured)], "k:", lw=1, label="y = x")
    scatter.set(title="final val loss, runs at the fitted lr", xlabel="measured", ylabel="predicted")
    scatter.legend(fontsize=7)
    for ax in axes.flat[len(panels) + 1:]:
        ax.axis("off")
    laws = ", ".join(f"{fit['law']} {styles[fit['law']]}" for fit in fits)
    fig.suptitle(f"measured (dots) and predicted ({laws}) val loss; laws fitted to the first panel's runs")
    fig.tight_layout()
    for target in (Path(path), Path(path).with_suffix(".pdf")):
        write_atomically(target, lambda tmp: fig.savefig(tmp, dpi=130, format=target.suffix[1:]))
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------
# the command line


def split_repeated(argv):
    """({key: [values]} of the repeatable --fit= and --check=, the other arguments for parse_args)."""
    repeated, rest = {key: [] for key in REPEATED}, []
    for arg in argv:
        key, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and key in repeated and sep:
            repeated[key].append(value)
        else:
            rest.append(arg)
    return repeated, rest


def asked_schedule(args, runs):
    """The train.py config of the schedule asked on the command line, lr/warmup/eval_interval from the first run."""
    for key in ("lr", "warmup_steps", "eval_interval"):
        if args[key] is None:
            args[key] = runs[0]["cfg"][key]
    cfg = dict(runs[0]["cfg"], optimizer="adamw", **{k: args[k] for k in (*SCHEDULE_KEYS, "lr", "eval_interval")})
    try:
        validate_schedule(**{k: cfg[k] for k in SCHEDULE_KEYS})
    except ScheduleError as e:
        raise ConfigError(str(e)) from None
    if args["eval_interval"] < 1:
        raise ConfigError(f"eval_interval must be >= 1, got {args['eval_interval']}")
    return cfg


def main(argv):
    repeated, rest = split_repeated(argv)
    args = dict(parse_args(rest, SETTINGS), **repeated)
    given = {arg[2:].partition("=")[0] for arg in rest}
    laws = [args["law"]] if args["law"] else list(LAWS) if args["check"] else ["mpl"]
    for name in laws:
        law_named(name)
    runs = load_fit_runs(args["fit"])
    fitted = [from_step(run, args["fit_from"]) for run in runs]  # --fit_from leaves out the early curve
    if not all(len(run["steps"]) for run in fitted):
        raise ConfigError(f"fit_from={args['fit_from']} leaves a fitted run without val losses")
    fits = [fit_law(name, fitted) for name in laws]
    for fit in fits:
        print(f"{fit['law']} fitted to {len(runs)} runs ({fit['points']} val losses, Huber objective "
              f"{fit['objective']:.3g}): " + " ".join(f"{k}={v:.4g}" for k, v in fit["params"].items()))
        for run in fitted:
            errors = np.abs(relative_errors(fit, run))
            print(f"  {run['name']}: {len(errors)} val losses, relative error mean {errors.mean():.2%}, "
                  f"max {errors.max():.2%}")
    if args["check"]:
        checked, notes = runs_to_check(args["check"], runs)
        print("\n".join(notes + [""] + check_table(checked, fits, {r["cfg"]["lr"] for r in runs})))
        if args["figure"] and checked:
            draw_validation(fitted, checked, fits, args["figure"])
            print(f"wrote {args['figure']} and its .pdf")
    if not args["optimize"] and not given & {*SCHEDULE_KEYS, "lr", "eval_interval"}:
        return fits
    cfg = asked_schedule(args, runs)
    if args["optimize"]:
        asked = f"{describe(cfg)}: {predict_losses(fits[0], cfg, [cfg['max_steps']])[0]:.4f}"
        cfg = optimal_cooldown(fits[0], cfg)
        print(f"optimum of {fits[0]['law']} for {cfg['max_steps']} steps: cooldown {cfg['cooldown_steps']} steps "
              f"({cfg['cooldown_steps'] / cfg['max_steps']:.0%}), shape {cfg['cooldown_shape']} (the asked "
              f"{asked})\n  {train_command(cfg)}")
    n, interval = cfg["max_steps"], cfg["eval_interval"]
    steps = [s for s in sorted({*range(interval, n, interval), n}) if s >= max(cfg["warmup_steps"], 1)]
    losses = predict_losses(fits[0], cfg, steps)
    print(f"predicted val_loss ({fits[0]['law']}) of {describe(cfg)}, lr {cfg['lr']:g}, "
          f"warmup {cfg['warmup_steps']}:")
    print("\n".join(f"  step {s}: {loss:.4f}" for s, loss in zip(steps, losses)))
    print(f"final val_loss: {losses[-1]:.4f}")
    return fits


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
