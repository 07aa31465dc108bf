"""
What the law's form allows, apart from the recipe: each validation seed's law fitted to *every* stable committed run
of that seed (in sample: no held-out run), per cell of predict.py's protocol beside the protocol's error on the same
runs and the cell's bar (1.5x / 3x its seed noise). A cell the in-sample fit misses is one the law cannot draw
together with the rest of its seed's runs, whatever runs a recipe holds; one it draws and the protocol misses is the
recipe's or the seeds' (docs/predict.md, "What the law's form allows").

    python -m bench.law_limit               # the floor law, 16-20 s on 2 cores
    python -m bench.law_limit --law=mpl     # another law of lab/laws.py (mpl: ~6 min)
"""

import sys
import time

import numpy as np

import predict
from lab import laws, settings, streams, validation
from lab.config import Setting, parse_args

SETTINGS = dict(law=Setting("floor", "the loss law (lab/laws.py)", tuple(laws.LAWS)))


def in_sample_errors(law, runs):
    """({run name: the relative error of its final loss under its own seed's fit to all its seed's runs}, the
    warnings of the fits): the validation seeds' stable runs only."""
    _, unstable = streams.seed_noise(runs)
    own = [run for run in runs if streams.seeds(run) in {(s, s) for s in predict.VALIDATION_SEEDS}
           and streams.setting(run) not in unstable]
    fits, warnings = validation.fit_each_seed(law, own, predict.FIT_FROM)
    errors = {run["name"]: error for fit, group in fits.values()
              for run, error in zip(group, validation.final_errors(fit, group))}
    return errors, warnings


def compare(rows, cells, errors):
    """Per scored cell of the protocol: (its cell, [the protocol's |errors|], [the in-sample |errors|]) over the
    cell's runs that have both."""
    table = []
    for c in cells:
        if c["within_noise"] is None:
            continue
        mine = [r for r in validation.cell_rows(rows, c) if r["run"] in errors]
        table.append((c, [abs(r["error"]) for r in mine], [abs(errors[r["run"]]) for r in mine]))
    return table


def verdict(c, in_sample):
    """Which limit a cell meets: the law's form, or (the in-sample fit within the bar) the recipe and the seeds."""
    if not in_sample:
        return "no run of a validation seed"
    if c["within_noise"]:
        return "within the noise"
    return "the recipe or the seeds" if validation.within_noise(in_sample, c["noise"]) else "the law's form"


def table_line(c, protocol, in_sample):
    def errors(values):
        return f"{np.mean(values):.2%} / {max(values):.2%}" if values else "-"
    lr = f"{c['lr']:g}" + ("" if c["lr_fitted"] else " (held out)")
    bars = f"{validation.MEAN_BAR * c['noise']:.2%} / {validation.MAX_BAR * c['noise']:.2%}"
    return (f"| {c['family']} | {c['length']} | {lr} | {len(protocol)} | {errors(protocol)} | {errors(in_sample)} | "
            f"{bars} | {verdict(c, in_sample)} |")


def main(argv):
    args = parse_args(argv, SETTINGS)
    started = time.perf_counter()
    runs = predict.committed_runs()
    _, _, rows, cells = predict.committed_protocol(args["law"], runs)
    errors, warnings = in_sample_errors(args["law"], runs)
    print("\n".join(warnings))
    print(f"| family | steps | peak lr | runs | protocol: mean / max | in sample ({args['law']} law, each seed fitted "
          f"to all its runs): mean / max | bar: 1.5x / 3x noise | limit |\n|---|---|---|---|---|---|---|---|")
    for line in compare(rows, cells, errors):
        print(table_line(*line))
    print(f"({len(errors)} runs of seeds {', '.join(map(str, predict.VALIDATION_SEEDS))} fitted in sample, "
          f"{time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
