"""
The val-loss curve of any LR schedule, with a band, predicted from a few runs by a loss law (lab/laws.py): the
floor law (this project's), the multi-power law (Luo et al. 2025) or Tissue et al. 2024's.

    python predict.py --schedule=wsd --max_steps=2400 --cooldown_shape=linear    # the recommended fit (cached)
    python predict.py --schedule=cosine --lr=1.5e-3 --max_steps=600    # last line: final val_loss: X (band: LO-HI)
    python predict.py --max_steps=1200 --optimize                                # the best wsd cooldown (length, 1-x^A)
    python predict.py --validate          # the protocol: every run predicted by fits of other seeds, per cell
    python predict.py --fit=out/my_runs --schedule=wsd --max_steps=5000 --lr=1e-3  # your own runs (2+ seeds: a band)

Without --fit, the law is the recommended fit (RECIPE: four runs, two peak LRs, two run lengths) of the cpu
scale's committed runs at seeds 1337 and 1338, each seed fitted alone; a prediction is the mean of the seeds'
predictions and its band a 90 % prediction interval from the fits' spread, the fitted runs' seed noise and the law's
misfit of their final losses. The fitted parameters are cached in results/predict/recommended_fit.json (rewritten
by --validate, used while the fitted runs are unchanged). --fit=DIR (a run folder or a folder of them, repeatable)
fits any runs of one model, data and batch instead, per seed. Schedule keys not given are train.py's defaults,
except lr, warmup_steps and eval_interval: the first fitted run's. --validate writes
results/predict/validation.{json,md} and figures/predict_validation.png (with --fit: under --out). docs/predict.md
has the law, the protocol and its numbers.
"""

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brute, fmin

from lab import laws, settings, streams, validation
from lab.config import ConfigError, Setting, parse_args, read_json, write_atomically, write_figure
from schedules import SCHEDULE_KEYS, ScheduleError, resolve_cooldown_steps, validate_schedule

ROOTS = ("results", "results_long")  # the committed cpu-scale runs (docs/results.md)
# The recommended fit: per seed, these four runs of the cpu scale's model and batch.
RECIPE_SETUP = dict(model="cpu_tiny", n_layer=None, n_embd=None, batch_size=16, seq_len=256, warmup_steps=30)
RECIPE = tuple(dict(RECIPE_SETUP, **entry) for entry in (
    dict(schedule="wsd", lr=3e-3, max_steps=1200, cooldown_steps=499, cooldown_shape="1-x^1"),
    dict(schedule="wsd", lr=3e-3, max_steps=1200, cooldown_steps=60, cooldown_shape="1-sqrt"),
    dict(schedule="wsd", lr=1.5e-3, max_steps=600, cooldown_steps=120, cooldown_shape="linear"),
    dict(schedule="cosine", lr=1.5e-3, max_steps=600)))
FIT_SEEDS = (1337, 1338)  # the recommended fit's seeds; the validation fits a third too
VALIDATION_SEEDS = (1337, 1338, 1339)
FIT_FROM = 300  # the laws describe the curve from here on (docs/predict.md)
CACHE = Path("results/predict/recommended_fit.json")
SHAPE_EXPONENTS = (0.1, 10.0)  # --optimize searches cooldown shapes 1-x^A with A in this range
REPEATED = ("fit",)  # keys that may be given several times, collected before parse_args
SETTINGS = dict(
    {k: settings.SETTINGS[k] for k in SCHEDULE_KEYS},
    lr=Setting(None, "the asked schedule's peak LR (None: the first fitted run's)", "> 0", (float, type(None))),
    warmup_steps=Setting(None, "its warmup (None: the first fitted run's)", ">= 0", (int, type(None))),
    eval_interval=Setting(None, "the steps predicted (None: the first fitted run's)", ">= 1", (int, type(None))),
    law=Setting("floor", "the loss law (lab/laws.py)", tuple(laws.LAWS)),
    fit=Setting([], "a run folder, or a folder above some, to fit instead of the recommended fit (repeatable)"),
    fit_from=Setting(None, "fit the val losses from this step on (None: 10 warmups; the recommended fit: 300)",
                     ">= 0", (int, type(None))),
    optimize=Setting(False, "the best wsd cooldown (length, shape 1-x^A) for max_steps"),
    validate=Setting(False, "the validation protocol: every run predicted by fits of other seeds, per cell"),
    out=Setting(None, "--validate's folder (None: results/predict, with --fit out/predict_validation)",
                types=(str, type(None))),
    figure=Setting("figures/predict_validation.png", "--validate's figure (.png, and its .pdf)"),
)


# ---------------------------------------------------------------------------------------------------------
# the fit: the recommended one (cached) or the user's runs


def recipe_runs(runs, seeds, recipe=None):
    """The runs of `recipe` (None: RECIPE, the recommended one) at each of `seeds`, seed by seed."""
    return [streams.matching(runs, entry, seed) for seed in seeds for entry in recipe or RECIPE]


def committed_runs():
    """The committed runs of the recipe's model, data and batch (ROOTS), copies dropped."""
    runs = streams.load_runs([root for root in ROOTS if Path(root).is_dir()])
    like = recipe_runs(runs, FIT_SEEDS[:1])[0]
    return [run for run in runs if not streams.setup_difference(run, like)]


def fingerprint(runs, law, fit_from):
    """sha256 of what a fit depends on: the law and its code (lab/laws.py, and lab/validation.py, which fits each
    seed: an edited law is fitted again), fit_from and every fitted run's config and val losses."""
    digest = hashlib.sha256(f"{law} {fit_from}".encode() + Path(laws.__file__).read_bytes()
                            + Path(validation.__file__).read_bytes())
    for run in runs:
        digest.update(json.dumps(run["cfg"], sort_keys=True).encode() + run["losses"].tobytes())
    return digest.hexdigest()


def recommended_fits(law, runs):
    """{seed: (fit, runs)} of the recipe at FIT_SEEDS, from the cache when it was computed from these runs."""
    fit_runs = recipe_runs(runs, FIT_SEEDS)
    cached = (read_json(CACHE) if CACHE.is_file() else {}).get(law, {})
    if cached.get("fingerprint") == fingerprint(fit_runs, law, FIT_FROM):
        groups = streams.by_seed(fit_runs)
        return {k: (cached["fits"][str(k[0])], groups[k]) for k in groups}, "cached"
    fits, _ = validation.fit_each_seed(law, fit_runs, FIT_FROM)
    return fits, "fitted now: the cache is missing or was computed from other runs; --validate rewrites it"


def write_cache(fits, law):
    """The law's entry of CACHE (the other laws' entries kept): its fits and what they were computed from."""
    fit_runs = [run for _, runs in fits.values() for run in runs]
    document = read_json(CACHE) if CACHE.is_file() else {}
    document[law] = dict(fingerprint=fingerprint(fit_runs, law, FIT_FROM), fit_from=FIT_FROM,
                         runs=[run["name"] for run in fit_runs], fits={str(k[0]): fit for k, (fit, _) in fits.items()})
    write_atomically(CACHE, lambda tmp: tmp.write_text(json.dumps(document, indent=1) + "\n"))


def user_fits(args):
    """({seed: (fit, runs)}, warnings, every run): the --fit runs (one model, data and batch), each seed fitted
    alone."""
    notes = []
    runs = streams.load_runs(args["fit"], notes=notes)
    if not runs:
        raise ConfigError(f"no usable finished run under --fit ({'; '.join(notes) or 'none found'})")
    for run in runs:
        difference = streams.setup_difference(run, runs[0])
        if difference:
            what, mine, theirs = difference
            raise ConfigError(f"runs {runs[0]['name']} and {run['name']} differ in {what} ({theirs!r} vs {mine!r}): "
                              f"fit runs of one model, data and batch")
    fit_from = args["fit_from"] if args["fit_from"] is not None else 10 * runs[0]["cfg"]["warmup_steps"]
    fits, warnings = validation.fit_each_seed(args["law"], runs, fit_from)
    if len(fits) == 1:
        warnings.append("warning: the fit runs are of one seed: the band holds neither fit uncertainty nor seed noise "
                        "(only the law's misfit of the fitted runs' final losses); fit runs of two seeds for a band")
    return fits, warnings, runs


def describe_fits(fits, how):
    lines = [f"{how}: " + "; ".join(f"seed {k[0]}: {len(runs)} runs" for k, (_, runs) in fits.items())]
    for k, (fit, _) in fits.items():
        lines.append(f"  seed {k[0]} {fit['law']}: " + " ".join(f"{n}={v:.4g}" for n, v in fit["params"].items())
                     + f" (misfit of its runs' final losses: {fit['misfit']:.2%})")
    return lines


# ---------------------------------------------------------------------------------------------------------
# a schedule's prediction, and the best cooldown


def describe(cfg):
    n = cfg["max_steps"]
    if cfg["schedule"] == "wsd":
        start = n - resolve_cooldown_steps(n, cfg["cooldown_frac"], cfg["cooldown_steps"])
        return f"wsd {cfg['cooldown_shape']} cooldown {start}->{n}"
    return f"{cfg['schedule']} {n}" + (f" cycle {cfg['cycle_steps']}" if cfg.get("cycle_steps") else "")


def asked_schedule(args, first):
    """The train.py config of the schedule asked on the command line; lr/warmup/eval_interval from `first`."""
    for key in ("lr", "warmup_steps", "eval_interval"):
        if args[key] is None:
            args[key] = first[key]
    cfg = dict(first, optimizer="adamw", **{k: args[k] for k in (*SCHEDULE_KEYS, "lr", "eval_interval")})
    try:
        validate_schedule(**{k: cfg[k] for k in SCHEDULE_KEYS})
    except ScheduleError as e:
        raise ConfigError(str(e)) from None
    for key in ("lr", "eval_interval"):
        if not cfg[key] > 0:
            raise ConfigError(f"{key} must be > 0, got {cfg[key]}")
    return cfg


def optimal_cooldown(fits, cfg):
    """The wsd schedule (cooldown length and shape 1-x^A) of lowest predicted final loss; cfg's other keys stay."""
    n, warmup = cfg["max_steps"], cfg["warmup_steps"]
    if n - warmup < 1:
        raise ConfigError(f"max_steps={n} leaves no step after the warmup (warmup_steps={warmup}) to cool down")

    def candidate(x):  # (cooldown fraction, log A) -> a config train.py can run: whole steps, a 3-digit A
        cooldown = int(np.clip(round(x[0] * n), 1, n - warmup))
        exponent = float(np.clip(np.exp(x[1]), *SHAPE_EXPONENTS))
        return dict(cfg, schedule="wsd", cooldown_steps=cooldown, cooldown_shape=f"1-x^{exponent:.3g}")

    final = lambda x: float(validation.fit_predictions(fits, candidate(x), [n]).mean())  # noqa: E731  (no band)
    best = brute(final, ((1 / n, (n - warmup) / n), tuple(np.log(SHAPE_EXPONENTS))), Ns=12, finish=fmin)
    return candidate(best)


def train_command(cfg):
    """train.py's command for cfg's schedule on the fitted runs' setup: their model, data, batch, optimizer and
    validation set where they differ from train.py's defaults (another eval_tokens scores other text, so another
    loss), then the schedule."""
    schedule = ("schedule", "max_steps", "lr", "warmup_steps", "cooldown_steps", "cooldown_shape", "final_lr_frac")
    setup = [k for k in (*streams.TRAJECTORY_KEYS, "eval_tokens", "eval_interval")
             if k not in schedule and cfg.get(k) is not None and cfg[k] != settings.DEFAULTS[k]]
    return "python train.py " + " ".join(f"--{k}={cfg[k]}" for k in (*setup, *schedule) if cfg[k] is not None)


def outside_the_fit(fits, cfg, steps):
    """Notes where the asked run goes where the fitted runs did not: steps before fit_from (the law does not describe
    the first steps), or a run longer than every fitted run (the band's seed noise is the fitted runs', and seeds
    drift apart in longer runs: at the cpu scale 0.8 % at 1,200 steps, 2.3 % at 2,400)."""
    fit_from = max(fit["fit_from"] for fit, _ in fits.values())
    longest = max(run["cfg"]["max_steps"] for _, runs in fits.values() for run in runs)
    notes = []
    if steps[0] < fit_from:
        notes.append(f"note: the law was fitted to val losses from step {fit_from} on (fit_from): it does not describe "
                     f"the steps before")
    if cfg["max_steps"] > longest:
        notes.append(f"note: {cfg['max_steps']} steps is past the longest fitted run ({longest}): the band holds the "
                     f"seed noise of the fitted runs, and seeds drift further apart in longer runs (docs/predict.md)")
    return notes


def print_prediction(fits, cfg):
    n, interval = cfg["max_steps"], cfg["eval_interval"]
    steps = [s for s in sorted({*range(interval, n, interval), n}) if s >= max(cfg["warmup_steps"], 1)]
    point, low, high = validation.predict_with_band(list(fits.values()), cfg, steps)
    lines = [f"  step {s}: {p:.4f} ({lo:.4f}-{hi:.4f})" for s, p, lo, hi in zip(steps, point, low, high)]
    print(f"predicted val_loss of {describe(cfg)}, lr {cfg['lr']:g}, warmup {cfg['warmup_steps']} (band):")
    print("\n".join(lines + outside_the_fit(fits, cfg, steps)))
    print(f"final val_loss: {point[-1]:.4f} (band: {low[-1]:.4f}-{high[-1]:.4f})")


def optimize(fits, cfg):
    asked = validation.fit_predictions(list(fits.values()), cfg, [cfg["max_steps"]]).mean()
    best = optimal_cooldown(list(fits.values()), cfg)
    print(f"optimum for {best['max_steps']} steps: cooldown {best['cooldown_steps']} steps "
          f"({best['cooldown_steps'] / best['max_steps']:.0%}), shape {best['cooldown_shape']} (the asked "
          f"{describe(cfg)}: {asked:.4f})\n  {train_command(best)}")
    return best


# ---------------------------------------------------------------------------------------------------------
# the validation


def table_lines(cells):
    lines = ["| relation | family | steps | peak lr | runs | final: mean / max error | curve: mean / max error "
             "(from warmup) | seed noise (trunk pairs) | fits' spread | in band | within noise | stand-in (runs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        pct = lambda v: "-" if v is None else f"{v:.2%}" if np.isfinite(v) else "n/a"  # noqa: E731
        verdict = {True: "yes", False: "no", None: "-"}[c["within_noise"]]
        lines.append(f"| {c['relation'] + (' (unstable)' if c['unstable'] else '')} | {c['family']} | {c['length']} | "
                     f"{c['lr']:g}{'' if c['lr_fitted'] else ' (held out)'} | {c['runs']} | {pct(c['final_mean'])} / "
                     f"{pct(c['final_max'])} | {pct(c['curve_mean'])} / {pct(c['curve_max'])} "
                     f"({pct(c['curve_from_warmup'])}) | {pct(c['noise'])} ({c['noise_pairs']}) | {pct(c['spread'])} | "
                     f"{c['coverage']:.0%} | {verdict} | {pct(c['stand_in'])} ({c['stand_in_runs']}) |")
    return lines


def summary_lines(rows, cells):
    within, scored, inside, runs = validation.headline(rows, cells)
    return [f"held-out cells within the seed noise (mean <= 1.5x, max <= 3x): {within} of {scored}; runs inside "
            f"their band: {inside / runs:.0%} of {runs}"]


def committed_protocol(law, runs, recipe=None):
    """(fits, warnings, rows, cells): the protocol over the committed `runs`, `recipe` (None: RECIPE) fitted at
    every validation seed, each run predicted by two fits it is held out from (the recommended fit's seeds first)."""
    fits, warnings = validation.fit_each_seed(law, recipe_runs(runs, VALIDATION_SEEDS, recipe), FIT_FROM)
    rows, cells = validation.validate(runs, fits, [(s, s) for s in FIT_SEEDS], FIT_FROM)
    return fits, warnings, rows, cells


def run_validation(args, law):
    started = time.perf_counter()
    if args["fit"]:
        fits, warnings, runs = user_fits(args)
        fit_from = next(iter(fits.values()))[0]["fit_from"]
        rows, cells = validation.validate(runs, fits, list(fits)[:2], fit_from)
        out = Path(args["out"] or "out/predict_validation")
    else:
        fits, warnings, rows, cells = committed_protocol(law, committed_runs())
        fit_from, out = FIT_FROM, Path(args["out"] or CACHE.parent)
    lines = [*warnings, *describe_fits(fits, f"{law} law fitted per seed"), *table_lines(cells),
             *summary_lines(rows, cells)]
    errors = [c[k] for c in cells for k in ("final_mean", "curve_mean", "curve_from_warmup") if c[k] is not None]
    if not np.isfinite(errors).all():
        lines.append("n/a: a fit predicts no finite loss at some of the cell's steps (a fit that did not converge)")
    print("\n".join(lines) + f"\n({time.perf_counter() - started:.0f} s)")
    out.mkdir(parents=True, exist_ok=True)
    name = "validation" if law == SETTINGS["law"].default else f"validation_{law}"  # the other laws' beside it
    document = dict(law=law, fit_from=fit_from, band_level=validation.BAND_LEVEL, unstable_above=streams.UNSTABLE,
                    fits={str(k[0]): dict(fit, runs=[r["name"] for r in group]) for k, (fit, group) in fits.items()},
                    cells=cells, rows=rows)
    write_atomically(out / f"{name}.json", lambda tmp: tmp.write_text(json.dumps(document, indent=1) + "\n"))
    write_atomically(out / f"{name}.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    if not args["fit"]:
        write_cache({k: v for k, v in fits.items() if k[0] in FIT_SEEDS}, law)
    figure = Path(args["figure"]) if not args["fit"] else out / "predict_validation.png"
    figure = figure.with_name(figure.name.replace("validation", name))
    draw_validation(rows, cells, figure)
    print(f"wrote {out / name}.json, {out / name}.md, {figure} and its .pdf")


def draw_validation(rows, cells, path):
    """Left: every held-out run's measured final loss against its prediction and band, by family; right: each
    cell's errors against its seed noise (the shaded 1.5x)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    held = [r for r in rows if r["relation"] == "held out" and not r["unstable"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw=dict(width_ratios=(1, 1.6)))
    families = sorted({r["cell"][0] for r in held})
    for i, fam in enumerate(families):
        group = [r for r in held if r["cell"][0] == fam]
        measured, predicted = [r["measured"] for r in group], np.array([r["predicted"] for r in group])
        spans = np.array([[r["predicted"] - r["low"], r["high"] - r["predicted"]] for r in group]).T
        left.errorbar(measured, predicted, yerr=spans, fmt="o", ms=3, lw=0.8, color=f"C{i}", label=fam)
    ends = [min(r["measured"] for r in held), max(r["measured"] for r in held)]
    left.plot(ends, ends, "k:", lw=1, label="y = x")
    left.set(xlabel="measured final val loss", ylabel="predicted (band)", title="held-out runs: prediction and band")
    left.legend(fontsize=8)
    scored = [c for c in cells if c["relation"] == "held out" and not c["unstable"]]
    for x, c in enumerate(scored):
        errors = [abs(r["error"]) for r in validation.cell_rows(rows, c)]
        right.plot([x] * len(errors), errors, "o", ms=3, color="C0" if c["within_noise"] is not False else "C3")
        if c["noise"]:
            right.bar(x, validation.MEAN_BAR * c["noise"], width=0.7, color="0.85", zorder=0)
    right.set_xticks(range(len(scored)), [f"{c['family']} {c['length']}\nlr {c['lr']:g}" for c in scored],
                     rotation=90, fontsize=7)
    right.set(ylabel="|final error|", title="per cell: errors (red: not within noise), grey: 1.5x seed noise")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    for target in (path, path.with_suffix(".pdf")):
        write_figure(fig, target, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------
# the command line


def split_repeated(argv):
    """({key: [values]} of the repeatable --fit=, the other arguments for parse_args)."""
    repeated, rest = {key: [] for key in REPEATED}, []
    for arg in argv:
        key, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and key in repeated and sep:
            repeated[key].append(value)
        else:
            rest.append(arg)
    return repeated, rest


def main(argv):
    repeated, rest = split_repeated(argv)
    args = dict(parse_args(rest, SETTINGS), **repeated)
    if args["validate"]:
        return run_validation(args, args["law"])
    if args["fit"]:
        fits, warnings, _ = user_fits(args)
        how = f"{args['law']} law fitted to --fit"
    else:
        fits, how = recommended_fits(args["law"], committed_runs())
        warnings, how = [], f"{args['law']} law, the recommended fit ({how})"
    print("\n".join(warnings + describe_fits(fits, how)))
    first = next(iter(fits.values()))[1][0]["cfg"]
    cfg = asked_schedule(args, first)
    if args["optimize"]:
        cfg = optimize(fits, cfg)
    print_prediction(fits, cfg)


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
