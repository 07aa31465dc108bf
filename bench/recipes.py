"""
The fit recipes compared: predict.py's validation protocol (docs/predict.md) run with each recipe below in place of
the recommended one, every committed run predicted by fits of other seeds as `python predict.py --validate` does.
Per recipe: the held-out cells within the seed noise, the runs inside their band and the three seeds' fitted q and
x0 (for the floor law), the table of docs/predict.md's "The recommended fit".

    python -m bench.recipes                 # the floor law, ~15 s on 2 cores
    python -m bench.recipes --law=mpl       # another law of lab/laws.py (its parameters' ranges instead)
"""

import sys
import time

import predict
from lab import laws, settings, validation
from lab.config import Setting, parse_args

SETUP = predict.RECIPE_SETUP
RUNS = {  # the committed runs the recipes are made of (one per seed): results/, results_long/
    "wsd 3e-3 1,200 linear 499": dict(SETUP, schedule="wsd", lr=3e-3, max_steps=1200, cooldown_steps=499,
                                      cooldown_shape="1-x^1"),
    "wsd 3e-3 1,200 1-sqrt 60": dict(SETUP, schedule="wsd", lr=3e-3, max_steps=1200, cooldown_steps=60,
                                     cooldown_shape="1-sqrt"),
    "wsd 3e-3 300 1-sqrt 60": dict(SETUP, schedule="wsd", lr=3e-3, max_steps=300, cooldown_steps=60,
                                   cooldown_shape="1-sqrt"),
    "wsd 1.5e-3 600 linear 120": dict(SETUP, schedule="wsd", lr=1.5e-3, max_steps=600, cooldown_steps=120,
                                      cooldown_shape="linear"),
    "cosine 1.5e-3 600": dict(SETUP, schedule="cosine", lr=1.5e-3, max_steps=600),
    "cosine 3e-3 600": dict(SETUP, schedule="cosine", lr=3e-3, max_steps=600),
}
RECIPES = (  # (what it is, its runs): predict.RECIPE first
    ("1,200 steps linear 499 and 1-sqrt 60; wsd and cosine at 1.5e-3, 600 steps (the recipe)",
     ("wsd 3e-3 1,200 linear 499", "wsd 3e-3 1,200 1-sqrt 60", "wsd 1.5e-3 600 linear 120", "cosine 1.5e-3 600")),
    ("the same with the 60-step cooldown replaced by a 300-step run (1-sqrt 20 %, 3e-3)",
     ("wsd 3e-3 1,200 linear 499", "wsd 3e-3 300 1-sqrt 60", "wsd 1.5e-3 600 linear 120", "cosine 1.5e-3 600")),
    ("that, with the cosine at 3e-3 instead of 1.5e-3 (the previous recipe)",
     ("wsd 3e-3 1,200 linear 499", "wsd 3e-3 300 1-sqrt 60", "wsd 1.5e-3 600 linear 120", "cosine 3e-3 600")),
    ("cosines at 1.5e-3 and 3e-3, no wsd at 1.5e-3",
     ("wsd 3e-3 1,200 linear 499", "wsd 3e-3 300 1-sqrt 60", "cosine 1.5e-3 600", "cosine 3e-3 600")),
    ("cosines at 1.5e-3 and 3e-3, no 300-step run",
     ("wsd 3e-3 1,200 linear 499", "wsd 1.5e-3 600 linear 120", "cosine 1.5e-3 600", "cosine 3e-3 600")),
    ("the 60-step cooldown instead of the 499-step one",
     ("wsd 3e-3 1,200 1-sqrt 60", "wsd 3e-3 300 1-sqrt 60", "wsd 1.5e-3 600 linear 120", "cosine 1.5e-3 600")),
)
SETTINGS = dict(law=Setting("floor", "the loss law (lab/laws.py)", tuple(laws.LAWS)))
SHOWN = dict(floor=("q", "x0"))  # the parameters whose ranges the table shows; other laws: all of theirs


def recipe(names):
    return tuple(RUNS[name] for name in names)


def shown(law):
    return SHOWN.get(law, laws.LAWS[law]["names"])


def score(law, runs, entries):
    """The protocol with the recipe `entries`: validation.headline's counts, and {fitted parameter: (lowest,
    highest) over the seeds}."""
    fits, _, rows, cells = predict.committed_protocol(law, runs, entries)
    params = [fit["params"] for fit, _ in fits.values()]
    return validation.headline(rows, cells), {n: (min(p[n] for p in params), max(p[n] for p in params))
                                              for n in shown(law)}


def table_line(what, result):
    (within, scored, inside, runs), ranges = result
    spans = "; ".join(f"{low:.3g} to {high:.3g}" for low, high in ranges.values())
    return f"| {what} | {within} of {scored} | {inside / runs:.0%} of {runs} | {spans} |"


def main(argv):
    args = parse_args(argv, SETTINGS)
    started = time.perf_counter()
    runs = predict.committed_runs()
    print(f"| recipe (per seed), {args['law']} law | cells within the noise | runs in band | the three fits' "
          f"{', '.join(shown(args['law']))} |\n|---|---|---|---|")
    for what, names in RECIPES:
        print(table_line(what, score(args["law"], runs, recipe(names))), flush=True)
    print(f"({len(runs)} runs read, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
