"""
The figures of the reproduction (claims C1-C9) and the results table (lab/summary.py), from the logs of finished runs.

    python plot.py                           # results/ (and results_long/) -> figures/*.png, *.pdf, summary.md
    python plot.py results_paper             # sweep.py --scale=paper's runs -> results_paper/figures/
    python plot.py my_results --out=my_figures
    python plot.py results results_long --out=figures   # several folders: their suites' runs together

Reads every <results>/<suite>/<run>/{config.json, metrics.jsonl} (written by train.py, collected by sweep.py)
and never needs checkpoints. A run is recognised by its config.json (schedule, cooldown_shape, optimizer, swa,
lr, max_steps, model shape, origin), not by its folder name, so any runs put in a suite's folder are plotted;
a suite with no runs is skipped with a note. The figures go to --out: by default beside the results they draw,
<folder>/figures/ (figures/ for the repository's own results; several folders need --out). plot.py replaces or
deletes only files it wrote there before (lab/owned.py keeps their names): a figure of a suite with no runs that an
earlier call drew is deleted, and a file of the same name that plot.py did not write stops it with one line.
predict_validation comes from predict.py (docs/predict.md). FLOPs, compute savings and the scaling-law fits are in
lab/scaling.py.
"""

import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.ticker import LogFormatter, NullFormatter, PercentFormatter  # noqa: E402

from lab import owned, scaling  # noqa: E402
from lab.config import ConfigError, Setting, fail, parse_args, write_atomically, write_figure  # noqa: E402
from lab.runs import (best_per_method, cfg, cooldown_frac, cycle, final_ppl, finished_groups, method,  # noqa: E402
                      on_shared_seeds, one_data, optimizer_label, paired_gap, seed_groups, shape_order, spread)
from lab.summary import (MERGE_STYLES, averaging_runs, markdown_table, matched_pairs, merge_points,  # noqa: E402
                         schedulefree_runs, summarize)
from schedules import lr_multiplier  # noqa: E402

SETTINGS = dict(out=Setting(None, "the folder of the figures (None: <folder>/figures/ of the one results folder, "
                                   "figures/ without one)", types=(str, type(None))))
# One colour per method in every figure, each cooldown shape of the suites a method of its own; several lengths or
# sizes of one method are shades of its colour.
COLORS = {"cosine": "#1f77b4", "wsd/linear": "#ff7f0e", "wsd/1-sqrt": "#d62728", "other": "#9467bd",
          "constant": "#7f7f7f", "swa": "#2ca02c", "ema": "#8c564b", "schedule-free": "#e377c2",
          "wsd/cosine": "#17becf", "wsd/square": "#bcbd22", "wsd/mirror_cosine": "#393b79", "wsd/1-x^0.3": "#7b4173",
          "wsd/1-x^0.7": "#8c6d31"}


# ---------------------------------------------------------------------------------------------------------
# what a run is, and drawing helpers


def color(name, shade=0.0):
    """The method's colour, mixed with white by `shade` (0: full colour) for a second length or size."""
    return tuple(c + (1 - c) * shade for c in to_rgb(COLORS.get(name, COLORS["other"])))


def shade_of(value, values):
    """Lighter for smaller values (shorter runs, smaller models), full colour for the largest."""
    values = sorted(set(values))
    return 0.55 * (1 - values.index(value) / (len(values) - 1)) if len(values) > 1 else 0.0


def curve(run, key="val_loss"):
    """(steps, perplexities) of the records that have `key` (a loss); for 'lr', the LRs."""
    points = [(r["step"], r[key]) for r in run["metrics"] if r.get(key) is not None]
    steps, values = (np.array(v, dtype=float) for v in zip(*points)) if points else (np.array([]),) * 2
    return steps, values if key == "lr" else np.exp(values)


def plain_log_ticks(ax):
    """Label log axes 15, 20, 30 rather than 1.5x10^1: perplexities rarely span a decade."""
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
            axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def finish(ax, title, xlabel, runs=None, log_x=False):
    """Log perplexity axis, zoomed (when `runs` are given) onto where their curves end, title and legend."""
    ax.set(yscale="log", xscale="log" if log_x else "linear", xlabel=xlabel, ylabel="validation perplexity")
    if runs:  # curves start far above where they end: show the part where the runs differ
        ends = [final_ppl(r) or curve(r)[1][-1] for r in runs]
        ax.set_ylim(min(ends) * 0.97, max(ends) * 1.35)
    plain_log_ticks(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)


# ---------------------------------------------------------------------------------------------------------
# one function per figure: the runs of a suite in, a matplotlib figure out (None when nothing can be drawn)


def fig_schedules(_runs):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, settings in [("cosine", {}), ("constant", {}), ("wsd/linear", dict(cooldown_shape="linear")),
                           ("wsd/1-sqrt", dict(cooldown_shape="1-sqrt"))]:
        settings.update(schedule=name.split("/")[0], max_steps=1000, warmup_steps=50)
        left.plot([lr_multiplier(s, **settings) for s in range(1001)], color=color(name), label=name)
    left.set(xlabel="step", ylabel="LR / peak LR", title="1000 steps: 50 warmup, cosine to 10 %, 20 % cooldowns")
    t = np.linspace(0, 1, 201)
    styles = iter(["--", ":", "-.", (0, (5, 1)), (0, (1, 3))])  # the shapes that share the colour 'other'
    for shape in ("linear", "1-sqrt", "cosine", "square", "mirror_cosine", "1-x^0.7", "1-x^1.5"):
        values = [lr_multiplier(800 + x * 200, schedule="wsd", max_steps=1000, cooldown_steps=200,
                                cooldown_shape=shape) for x in t]
        right.plot(t, values, color=color(f"wsd/{shape}"), ls="-" if f"wsd/{shape}" in COLORS else next(styles),
                   label=shape)
    right.set(xlabel="fraction of the cooldown", ylabel="LR / peak LR", title="cooldown shapes")
    for ax in (left, right):
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    return fig


def fig_c1(runs):
    cosine = sorted((r for r in runs if method(r) == "cosine"), key=lambda r: (cycle(r), cfg(r)["max_steps"]))
    if not cosine:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in cosine:
        length = cfg(run)["max_steps"]
        style = "-" if cycle(run) == length else ":" if length < cycle(run) else "--"  # matched, early, past
        ax.plot(*curve(run), ls=style, color=color("cosine", shade_of(cycle(run), map(cycle, cosine))),
                label=f"cycle {cycle(run)}, run {length} steps")
    finish(ax, "C1: cosine is best only at the end of its cycle", "step", cosine)
    return fig


def fig_c2(runs):
    best = best_per_method(runs)
    if not best:
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(3, 1.3))
    for name, group in sorted(best.items()):
        for i, run in enumerate(group):  # every seed of the best LR
            top.plot(*curve(run), color=color(name),
                     label=None if i else f"{name}, lr {cfg(run)['lr']:g} ({len(group)} seeds)",
                     lw=1, alpha=0.8)
        bottom.plot(*curve(group[0], "lr"), color=color(name))
    finish(top, "C2: constant LR + cooldown vs cosine (best LR of each, every seed)", "",
           [r for group in best.values() for r in group])
    bottom.set(xlabel="step", ylabel="learning rate")
    bottom.grid(True, alpha=0.3)
    return fig


def lr_curves(ax, runs, label):
    """Final perplexity against the peak LR, one line per (label(run), length): the mean over seeds with a bar
    of one standard deviation, and each seed as a dot."""
    lines = defaultdict(list)
    for group in seed_groups(runs):
        lines[(label(group[0]), cfg(group[0])["max_steps"])].append(group)
    lengths = [n for _, n in lines]
    labels = sorted({name for name, _ in lines})
    for (name, length), groups in sorted(lines.items()):
        groups.sort(key=lambda g: cfg(g[0])["lr"])
        base = name.split(" ")[0]  # 'schedule-free (0.9, 0.95)': a pair of betas is a lighter shade of its method
        variant = [label for label in labels if label.split(" ")[0] == base].index(name)
        shade = color(base, min(0.8, shade_of(length, lengths) + 0.4 * variant))
        lrs, spreads = [cfg(g[0])["lr"] for g in groups], [spread(g) for g in groups]
        ax.errorbar(lrs, [s.mean for s in spreads], yerr=[s.std or 0 for s in spreads], fmt="o-", color=shade,
                    label=f"{name}, {length} steps",
                    capsize=3)
        for lr, group in zip(lrs, groups):
            ax.plot([lr] * len(group), [final_ppl(r) for r in group], ".", color=shade,
                    alpha=0.5)
    return bool(lines)


def fig_c3(runs):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not lr_curves(ax, runs, method):
        plt.close(fig)
        return None
    finish(ax, "C3: LR sensitivity (final perplexity, mean ± sd over seeds, dots: seeds)", "peak learning rate",
           log_x=True)
    return fig


def fig_c4(runs):
    by_length = finished_groups(runs, lambda r: cfg(r)["max_steps"], scaling.is_cooldown)
    if not by_length:
        return None
    fig, axes = plt.subplots(1, len(by_length), figsize=(4.5 * len(by_length), 4.2), squeeze=False)
    for ax, (length, group) in zip(axes[0], sorted(by_length.items())):
        shapes = sorted(on_shared_seeds(seed_groups(group)), key=lambda g: shape_order(method(g[0])))
        spreads = [spread(g) for g in shapes]
        ax.bar(range(len(shapes)), [s.mean for s in spreads], yerr=[s.std or 0 for s in spreads],
               color=[color(method(g[0])) for g in shapes],
               capsize=3)
        for i, g in enumerate(shapes):
            ax.plot([i] * len(g), [final_ppl(r) for r in g], "k.",
                    alpha=0.6)
        ax.set_xticks(range(len(shapes)), [cfg(g[0])["cooldown_shape"] for g in shapes],
                      rotation=30)
        values = [final_ppl(r) for g in shapes for r in g]
        ax.set_ylim(min(values) * 0.995, max(values) * 1.005)  # the differences are a few percent at most
        ax.set(title=f"{length} steps, {cooldown_frac(group[0]):.0%} cooldown", ylabel="final validation perplexity")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("C4: cooldown shapes (mean ± sd over seeds; dots: seeds)")
    return fig


def fig_c4_gap(runs):
    """Each shape against 1-sqrt, seed by seed, as a function of the run's length."""
    by_shape = defaultdict(dict)  # shape -> {length: paired gaps}
    for length, group in finished_groups(runs, lambda r: cfg(r)["max_steps"], scaling.is_cooldown).items():
        shapes = {cfg(g[0])["cooldown_shape"]: g for g in seed_groups(group)}
        for shape, g in shapes.items():
            if "1-sqrt" in shapes and shape != "1-sqrt" and paired_gap(g, shapes["1-sqrt"]):
                by_shape[shape][length] = paired_gap(g, shapes["1-sqrt"])
    if not by_shape:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = iter(["--", ":", "-.", (0, (5, 1)), (0, (1, 3))] * 3)
    for shape, gaps in sorted(by_shape.items(), key=lambda item: shape_order(item[0])):
        lengths = sorted(gaps)
        spreads = [spread(gaps[n]) for n in lengths]
        ax.errorbar(lengths, [s.mean for s in spreads], yerr=[s.std or 0 for s in spreads], marker="o",
                    color=color(f"wsd/{shape}"), ls="-" if f"wsd/{shape}" in COLORS else next(styles),
                    label=f"{shape} / 1-sqrt - 1",
                    capsize=3)
        for n in lengths:
            ax.plot([n] * len(gaps[n]), gaps[n], ".", color=color(f"wsd/{shape}"),
                    alpha=0.5)
    ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    lengths = sorted({n for gaps in by_shape.values() for n in gaps})
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="run length (steps), 20 % cooldown",
           ylabel="final perplexity vs 1-sqrt (same seed)",
           title="C4: the shapes against 1-sqrt by run length (mean ± sd; dots: seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def fig_c5(runs):
    lines = finished_groups(runs, lambda r: (method(r), cfg(r)["max_steps"]), scaling.is_cooldown)
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lengths = [n for _, n in lines]
    for (name, length), group in sorted(lines.items()):
        group.sort(key=cooldown_frac)
        ax.plot([cooldown_frac(r) for r in group], [final_ppl(r) for r in group], "o-",
                color=color(name, shade_of(length, lengths)), label=f"{name}, {length} steps")
    for run in runs:
        if scaling.is_full_cosine(run) and final_ppl(run) is not None and cfg(run)["max_steps"] in lengths:
            ax.axhline(final_ppl(run), color=color("cosine", shade_of(cfg(run)["max_steps"], lengths)), ls="--",
                       label=f"cosine, {cfg(run)['max_steps']} steps")
    finish(ax, "C5: longer cooldowns help, then plateau", "cooldown length (fraction of the run)")
    return fig


def fig_c6(runs):
    panels = [(title, group) for title, group in
              [("constant LR and cooldowns", [r for r in runs if cfg(r)["schedule"] in ("constant", "wsd")]),
               ("cosine", [r for r in runs if cfg(r)["schedule"] == "cosine"])] if group]
    if not panels or not any(cfg(r)["swa"] or cfg(r)["ema"] for r in runs):
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for ax, (title, group) in zip(axes[0], panels):
        for run in sorted(group, key=lambda r: cfg(r)["max_steps"]):
            ax.plot(*curve(run), color=color(method(run)), label=f"{method(run)}, {cfg(run)['max_steps']} steps")
            for key, name in (("val_loss_swa", "swa"), ("val_loss_ema", "ema")):
                if len(curve(run, key)[0]):
                    ax.plot(*curve(run, key), color=color(name), ls="--", label=f"{method(run)} + {name.upper()}")
        finish(ax, f"C6: weight averaging, {title}", "step", group)
    return fig


def fig_c7(runs):
    if not seed_groups(runs):
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    lr_curves(left, runs, optimizer_label)
    finish(left, "C7: final perplexity by peak LR (mean ± sd; dots: seeds)", "peak learning rate", log_x=True)
    longest = max(cfg(r)["max_steps"] for r in runs)
    best = best_per_method([r for r in runs if cfg(r)["max_steps"] == longest], optimizer_label)
    styles = iter(["-", "--", ":", "-."] * len(best))
    for name, group in sorted(best.items()):
        style = next(styles)
        for i, run in enumerate(group):
            right.plot(*curve(run), color=color(method(run)), ls=style,
                       label=None if i else f"{name}, lr {cfg(run)['lr']:g} ({len(group)} seeds)",
                       lw=1)
    finish(right, f"C7: the best LR of each, {longest} steps", "step", [r for g in best.values() for r in g])
    return fig


def fig_c8_envelopes(runs):
    sizes = scaling.by_size(scaling.best_lrs(runs))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4.2), squeeze=False)
    for ax, group in zip(axes[0], sizes):
        for label, select in (("cosine runs", scaling.is_full_cosine), ("trunk + cooldowns", scaling.is_cooldown)):
            finished = sorted((r for r in group if select(r) and final_ppl(r)), key=lambda r: cfg(r)["max_steps"])
            for run in finished:
                steps, values = curve(run)
                ax.plot(steps * scaling.tokens_per_step(run), values, color=color(method(run)),
                        lw=1, alpha=0.6)
            if finished:  # the envelope: where each run ends
                ax.plot([cfg(r)["max_steps"] * scaling.tokens_per_step(r) for r in finished],
                        [final_ppl(r) for r in finished], "o-", color=color(method(finished[0])), label=label,
                        lw=2)
        for run in (r for r in group if cfg(r)["schedule"] == "constant" and not scaling.is_branch(r)):
            for key, name, label in (("val_loss", "constant", "constant trunk"),
                                     ("val_loss_swa", "swa", "trunk + SWA")):
                steps, values = curve(run, key)
                if len(steps):
                    ax.plot(steps * scaling.tokens_per_step(run), values, color=color(name), label=label,
                            lw=1)
        finish(ax, f"{scaling.size_label(group[0])} parameters", "tokens", group)
    fig.suptitle("C8: loss envelopes per model size (each size at its best LRs)")
    return fig


def fig_c8_scatter(runs):
    pairs = matched_pairs(scaling.best_lrs(runs))
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    markers = dict(zip(dict.fromkeys(p[0] for p in pairs), "osD^v<>ph*" * 10))
    for label in markers:
        ax.plot([x for size, _, x, _ in pairs if size == label], [y for size, _, _, y in pairs if size == label],
                markers[label], ls="", color=color("wsd/1-sqrt"), label=label)
    x, y = np.array([p[2] for p in pairs]), np.array([p[3] for p in pairs])
    span = np.array([min(x.min(), y.min()) * 0.98, max(x.max(), y.max()) * 1.02])
    ax.plot(span, span, "k:", label="y = x")
    if len(pairs) >= 2:
        slope, intercept = np.polyfit(x, y, 1)
        ax.plot(span, slope * span + intercept, color=color("cosine"), label=f"fit: y = {slope:.3f} x {intercept:+.3f}")
    finish(ax, "C8: cooldown vs cosine, same size and length, best LRs", "cosine: final perplexity", log_x=True)
    ax.set_ylabel("cooldown: final perplexity")
    return fig


def fig_c8_compute(runs):
    rows = scaling.compute_savings(runs)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(1.8 * len(rows) + 3, 4.5))
    x = np.arange(len(rows))
    for offset, side, name, label in ((-0.2, "cosine", "cosine", "cosine, one run per length"),
                                      (0.2, "cooldown", "wsd/1-sqrt", "one trunk + cooldowns")):
        ax.bar(x + offset, [row[side]["chinchilla"] for row in rows], 0.4, color=color(name), label=label)
    for i, row in enumerate(rows):
        ax.annotate(f"{row['ratio']:.2f}x", (i + 0.2, row["cooldown"]["chinchilla"]),
                    ha="center", va="bottom")
    ax.set_xticks(x, [f"{row['label']}\n({row['cosine']['runs']} lengths)" for row in rows])
    ax.set(yscale="log", xlabel="model size (parameters)", ylabel="training FLOPs (Chinchilla count)",
           title="C8: compute of a scaling study")
    ax.legend(fontsize=8)
    return fig


def fig_c9(runs):
    points = merge_points(runs)
    trunk = points.get("constant trunk", {})
    if not trunk or not any(label.startswith("merge") for label in points):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in points.items():  # relative to the trunk: the differences are a few percent of the ppl
        name, style, marker = MERGE_STYLES.get(label, ("other", ":", "^"))
        steps = sorted(n for n in values if n in trunk)
        ax.plot(steps, [values[n] / trunk[n] - 1 for n in steps], ls=style, marker=marker, color=color(name),
                label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="step (end of the cooldown window)", ylabel="validation perplexity vs the constant trunk",
           title="C9: checkpoints merged over the cooldown's window vs cooldowns")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


FIGURES = [("schedules", None, fig_schedules), ("c1_cosine_lengths", "c1_cosine_lengths", fig_c1),
           ("c2_loss_curves", "c2_c3_lr_sweep", fig_c2), ("c3_lr_sensitivity", "c2_c3_lr_sweep", fig_c3),
           ("c4_cooldown_shapes", "c4_cooldown_shapes", fig_c4), ("c4_gap_by_length", "c4_cooldown_shapes", fig_c4_gap),
           ("c5_cooldown_lengths", "c5_cooldown_lengths", fig_c5),
           ("c6_swa", averaging_runs, fig_c6), ("c7_schedulefree", schedulefree_runs, fig_c7),
           ("c8_envelopes", "c8_scaling", fig_c8_envelopes), ("c8_cosine_vs_cooldown", "c8_scaling", fig_c8_scatter),
           ("c8_compute_savings", "c8_scaling", fig_c8_compute), ("c9_merge", "c9_merge", fig_c9)]


def load_suites(folders):
    """{suite: [run]} of every folder: a suite in several (c4 at the cpu and the long scale) is one suite. Runs
    that read different data are refused: no figure compares them (lab/runs.py's one_data)."""
    suites = defaultdict(list)
    for folder in folders:
        for suite, found in scaling.load_runs(folder).items():
            suites[suite] += found
    print(f"{', '.join(map(str, folders))}: {one_data([run for found in suites.values() for run in found])}")
    return suites


def output_folder(folders, out):
    """--out, else beside the results: figures/ for the repository's own (no folder named), <folder>/figures."""
    if out:
        return Path(out)
    if len(folders) > 1:
        raise ConfigError(f"{len(folders)} results folders: say where their figures go with --out=DIR")
    return Path(folders[0]) / "figures" if folders else Path("figures")


def main(argv):
    folders = [a for a in argv if not a.startswith("-")]  # options: --key=value, and -h
    out = output_folder(folders, parse_args([a for a in argv if a.startswith("-")], SETTINGS)["out"])
    # by default the cpu scale's results, and the long scale's when it has run
    suites = load_suites(folders or ["results", *(["results_long"] if Path("results_long").is_dir() else [])])
    names = {f"{name}.{extension}" for name, _, _ in FIGURES for extension in ("png", "pdf")} | {"summary.md"}
    earlier = owned.claim(out, "plot.py", names)
    owned.record(out, "plot.py", earlier | names)  # before writing: a call that dies midway still owns its files
    written = set()
    for name, suite, draw in FIGURES:
        paths = [out / f"{name}.{extension}" for extension in ("png", "pdf")]
        # a suite's name, or a function that takes its runs from several suites (C6: c6_swa and c9_merge)
        runs = suite(suites) if callable(suite) else suites.get(suite, [])
        where = f"{name}'s suites" if callable(suite) else f"{suite}/"
        if suite is not None and not runs:
            fig, why = None, f"no runs in {where}: {name} skipped"
        else:
            fig, why = draw(runs), f"{where} has no runs that {name} can use: skipped"
        if fig is None:
            print(f"note: {why}")
            for path in paths:  # an earlier call's figure would pass for one of these results
                path.unlink(missing_ok=True)
            continue
        fig.tight_layout()
        for path in paths:  # under another name, then renamed: a figure file that exists is complete
            write_figure(fig, path, dpi=150)
            written.add(path.name)
        plt.close(fig)
    rows = summarize(suites)
    table = markdown_table(rows)
    write_atomically(out / "summary.md", lambda tmp: tmp.write_text(table))
    owned.record(out, "plot.py", written | {"summary.md"})
    print(f"wrote {len(written)} figure files and summary.md to {out}/\n\n{table}")
    return rows


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConfigError as e:
        fail(str(e))
