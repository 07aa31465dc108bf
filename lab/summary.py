"""
The numbers behind each claim (C1-C9: docs/results.md) and the seed-to-seed noise, from the logs of
finished runs: the rows of figures/summary.md, which plot.py writes.

    python plot.py                       # figures and figures/summary.md (this module's table)
    from lab import summary, scaling; rows = summary.summarize(scaling.load_runs("results"))

Every number is a final validation perplexity; a setting run at several seeds is given as mean ± sample
standard deviation over its seeds, with the count. A comparison of two settings that decides a claim (C2, C4,
C7) is made seed by seed (the same initialization and data for both, so the shared noise cancels) and gets a
verdict from runs.verdict: better when the 95 % confidence interval of the mean paired gap excludes zero.
"""

import math
from collections import defaultdict

import numpy as np

from lab import scaling
from lab.runs import (best_per_method, cfg, cooldown_frac, cycle, final_ppl, finished_groups, method,
                      on_shared_seeds, optimizer_label, paired_gap, seed_groups, shape_order, spread, verdict)


def listing(runs, label):
    return ", ".join(f"{label(r)} {final_ppl(r):.3f}" for r in runs if final_ppl(r) is not None)


def at_lr(group):
    return f" at lr {cfg(group[0])['lr']:g}"


def described(group, extra=""):
    s = spread(group)
    return f"{s}{extra} ({s.n} seed{'s' * (s.n > 1)})"


def noise_rows(c4):
    """The seed-to-seed spread of one setting (the 1-sqrt cooldown at each length of c4): over full seeds (the
    initialization and the data order), and over data orders at the first seed's initialization."""
    rows = []
    by_length = finished_groups(c4, lambda r: cfg(r)["max_steps"],
                                lambda r: scaling.is_cooldown(r) and cfg(r)["cooldown_shape"] == "1-sqrt")
    for length, group in sorted(by_length.items()):
        first_seed = min(cfg(r)["seed"] for r in group)
        full = [r for r in group if cfg(r).get("data_seed") is None]
        data_only = [r for r in group if cfg(r)["seed"] == first_seed]
        parts = [f"{name}: {s} ({s.std / s.mean:.2%} of the mean, {s.n} runs)"
                 for name, runs in (("seeds", full), ("data order only", data_only))
                 if len(runs) > 1 for s in [spread(runs)]]
        if parts:
            rows.append(("noise", f"{length} steps, wsd/1-sqrt 20 %: " + "; ".join(parts)))
    return rows


def lr_rows(c2):
    """C2: the best LR of each method against cosine's, seed by seed; C3: the best LRs, and whether each lies
    inside its grid."""
    best = best_per_method(c2)
    if "cosine" not in best:
        return []
    base = best["cosine"]
    c2_parts = []
    for name, group in sorted(best.items()):
        text = f"{name} {described(group, at_lr(group))}"
        if name != "cosine":
            text += "; " + (verdict(paired_gap(group, base), (name, "cosine")) or "one seed: no verdict")
        c2_parts.append(text)
    c3_parts = []
    for name, group in sorted(best.items()):
        grid = sorted({cfg(r)["lr"] for r in c2 if method(r) == name})
        lr = cfg(group[0])["lr"]
        edge = " (the grid's edge: the optimum may lie beyond)" if lr in (grid[0], grid[-1]) else ""
        c3_parts.append(f"{name} {lr:g} of {', '.join(f'{x:g}' for x in grid)}{edge}, "
                        f"{lr / cfg(base[0])['lr']:.2g}x cosine's")
    return [("C2", "best final ppl: " + "; ".join(c2_parts)), ("C3", "best peak LR: " + "; ".join(c3_parts))]


def shape_rows(c4):
    """C4: per length, each shape's perplexity over the seeds every shape has, and each shape against 1-sqrt seed
    by seed."""
    rows = []
    by_length = finished_groups(c4, lambda r: cfg(r)["max_steps"], scaling.is_cooldown)
    for length, group in sorted(by_length.items()):
        shapes = {method(g[0]): g for g in on_shared_seeds(seed_groups(group))}  # the noise study's seeds apart
        listed = ", ".join(f"{name.removeprefix('wsd/')} {described(g)}" for name, g in
                           sorted(shapes.items(), key=lambda item: shape_order(item[0])))
        gaps = [f"{name.removeprefix('wsd/')} vs 1-sqrt: " +
                (verdict(paired_gap(g, shapes["wsd/1-sqrt"]), (name.removeprefix("wsd/"), "1-sqrt")) or "one seed")
                for name, g in sorted(shapes.items(), key=lambda item: shape_order(item[0]))
                if "wsd/1-sqrt" in shapes and name != "wsd/1-sqrt"]
        rows.append(("C4", f"{length} steps, {cooldown_frac(group[0]):.0%} cooldown: {listed}"
                     + "".join(f"; {gap}" for gap in gaps)))
    return rows


def cooldown_length_rows(c5):
    rows = []
    for length in sorted({cfg(r)["max_steps"] for r in c5 if cfg(r)["schedule"] == "wsd"}):
        same = [r for r in c5 if cfg(r)["max_steps"] == length]
        cooldowns = sorted((r for r in same if cfg(r)["schedule"] == "wsd"), key=cooldown_frac)
        rows.append(("C5", f"{length} steps, ppl by cooldown fraction: "
                     + listing(cooldowns, lambda r: f"{method(r)} {cooldown_frac(r):.0%}")
                     + "".join(f"; cosine {final_ppl(r):.3f}" for r in same
                               if scaling.is_full_cosine(r) and final_ppl(r))))
    return rows


def averaging_runs(suites):
    """C6's runs: c6_swa's (a cosine with SWA) and, from c9_merge, the constant trunk with SWA and its 1-sqrt
    cooldown to the trunk's last step (the same runs C6 needs, trained once), merges left out."""
    c9 = [r for r in suites.get("c9_merge", []) if not r["info"].get("merge")]
    trunks = [r for r in c9 if cfg(r)["schedule"] == "constant" and not scaling.is_branch(r)]
    ends = {cfg(r)["max_steps"] for r in trunks}
    cooldowns = [r for r in c9 if scaling.is_cooldown(r) and cfg(r)["cooldown_shape"] == "1-sqrt"
                 and cfg(r)["max_steps"] in ends]
    return [*suites.get("c6_swa", []), *trunks, *cooldowns]


def averaging_rows(c6):
    rows = []
    for run in sorted((r for r in c6 if final_ppl(r) is not None), key=method):
        averaged = [f"+{key[9:].upper()} {final_ppl(run, key):.3f}" for key in ("val_loss_swa", "val_loss_ema")
                    if final_ppl(run, key) is not None]
        rows.append(("C6", " ".join([f"{method(run)} {cfg(run)['max_steps']} steps: {final_ppl(run):.3f}", *averaged])))
    return rows


def schedulefree_runs(suites):
    """C7's runs: c7_schedulefree's and, at a length where it trained no cooldown of its own (the long scale),
    c4's 20 % 1-sqrt cooldowns of that length: a branch of a constant trunk is the run a wsd from scratch would be
    (exact resume; test_train), so c7 uses c4's rather than train it twice."""
    c7 = suites.get("c7_schedulefree", [])
    lengths = {cfg(r)["max_steps"] for r in c7} - {cfg(r)["max_steps"] for r in c7 if scaling.is_cooldown(r)}
    cooldowns = [r for r in suites.get("c4_cooldown_shapes", []) if scaling.is_cooldown(r)
                 and cfg(r)["max_steps"] in lengths and cfg(r)["cooldown_shape"] == "1-sqrt"
                 and math.isclose(cooldown_frac(r), 0.2)]
    return [*c7, *cooldowns]


def schedulefree_rows(c7):
    """C7, per length: schedule-free's best LR for each pair of betas, the cooldown's best LR, and the best
    schedule-free against the cooldown seed by seed."""
    rows = []
    for length, group in sorted(finished_groups(c7, lambda r: cfg(r)["max_steps"]).items()):
        best = best_per_method(group, optimizer_label)
        parts = []
        for label, g in sorted(best.items()):
            grid = sorted({cfg(r)["lr"] for r in group if optimizer_label(r) == label})
            edge = " (the grid's edge)" if len(grid) > 1 and cfg(g[0])["lr"] in (grid[0], grid[-1]) else ""
            parts.append(f"{label} {described(g, at_lr(g))}{edge}")
        free = [g for label, g in best.items() if label.startswith("schedule-free")]
        cooldown = [g for label, g in best.items() if label.startswith("wsd")]
        if free and cooldown:
            winner = min(free, key=lambda g: spread(g).mean)
            parts.append("best schedule-free vs the cooldown: " + (
                verdict(paired_gap(winner, cooldown[0]), ("schedule-free", "the cooldown")) or "one seed"))
        rows.append(("C7", f"{length} steps: " + "; ".join(parts)))
    return rows


def scaling_rows(c8):
    if not c8:
        return []
    rows = []
    pairs = matched_pairs(scaling.best_lrs(c8))
    for label in dict.fromkeys(p[0] for p in pairs):
        gaps = [y / x - 1 for size, _, x, y in pairs if size == label]
        rows.append(("C8", f"{label}: cooldown vs cosine final ppl at the same length (best LRs): mean "
                     f"{np.mean(gaps):+.2%} over {len(gaps)} lengths"))
    return rows + [("C8", line) for line in scaling.report(c8)]


def matched_pairs(runs):
    """[(size label, length, cosine ppl, cooldown ppl)]: every cooldown run that has a cosine run of the same
    size and length."""
    pairs = []
    for group in scaling.by_size(runs):
        cosine = {cfg(r)["max_steps"]: final_ppl(r) for r in group if scaling.is_full_cosine(r) and final_ppl(r)}
        pairs += [(scaling.size_label(r), cfg(r)["max_steps"], cosine[cfg(r)["max_steps"]], final_ppl(r))
                  for r in group if scaling.is_cooldown(r) and final_ppl(r) and cfg(r)["max_steps"] in cosine]
    return pairs


# c9_merge's lines, in legend order: (colour, line style, marker); merges dashed with squares, in their shape's colour
MERGE_STYLES = {"constant trunk": ("constant", "-", "o"), "trunk + SWA": ("swa", "-", "o"),
                "merge uniform": ("swa", "--", "s"), "merge linear": ("wsd/linear", "--", "s"),
                "cooldown linear": ("wsd/linear", "-", "o"), "merge 1-sqrt": ("wsd/1-sqrt", "--", "s"),
                "cooldown 1-sqrt": ("wsd/1-sqrt", "-", "o")}


def merge_points(runs):
    """{label: {N: perplexity}} of c9_merge at its windows' ends N: merges (swa.py --merge, written by sweep.py), real
    cooldowns, and the constant trunk with its SWA, labelled as in MERGE_STYLES (in its order, then any others)."""
    merges = [r for r in runs if r["info"].get("merge")]
    ends = {r["step"] for m in merges for r in m["metrics"]} | {cfg(r)["max_steps"] for r in runs
                                                                if scaling.is_cooldown(r)}
    points = defaultdict(dict)
    for run in runs:
        if run["info"].get("merge"):
            points[f"merge {run['info']['merge']['shape']}"].update({r["step"]: math.exp(r["val_loss"])
                                                                    for r in run["metrics"]})
        elif scaling.is_cooldown(run) and final_ppl(run):
            points[f"cooldown {cfg(run)['cooldown_shape']}"][cfg(run)["max_steps"]] = final_ppl(run)
        elif cfg(run)["schedule"] == "constant":
            for key, label in (("val_loss", "constant trunk"), ("val_loss_swa", "trunk + SWA")):
                points[label].update({r["step"]: math.exp(r[key]) for r in run["metrics"]
                                      if r["step"] in ends and r.get(key) is not None})
    known = [label for label in MERGE_STYLES if points.get(label)]
    return {label: points[label] for label in known + sorted(set(points) - set(known)) if points[label]}


def summarize(suites):
    """[(claim, text)]: the key numbers of every claim that has runs, and the noise."""
    rows = []
    cosine = sorted((r for r in suites.get("c1_cosine_lengths", []) if method(r) == "cosine"),
                    key=lambda r: (cfg(r)["max_steps"], cycle(r)))
    if cosine:
        rows.append(("C1", "final ppl, cosine cycle C / run N: "
                     + listing(cosine, lambda r: f"C={cycle(r)}/N={cfg(r)['max_steps']}")))
    rows += noise_rows(suites.get("c4_cooldown_shapes", []))
    rows += lr_rows(suites.get("c2_c3_lr_sweep", []))
    rows += shape_rows(suites.get("c4_cooldown_shapes", []))
    rows += cooldown_length_rows(suites.get("c5_cooldown_lengths", []))
    rows += averaging_rows(averaging_runs(suites))
    rows += schedulefree_rows(schedulefree_runs(suites))
    rows += scaling_rows(suites.get("c8_scaling", []))
    points = merge_points(suites.get("c9_merge", []))
    for n in sorted({n for values in points.values() for n in values}):
        rows.append(("C9", f"{n} steps, ppl: " + ", ".join(f"{label} {values[n]:.3f}"
                                                           for label, values in points.items() if n in values)))
    return rows


def markdown_table(rows):
    return "| claim | our runs |\n|---|---|\n" + "".join(f"| {claim} | {text} |\n" for claim, text in rows)

