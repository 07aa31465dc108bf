"""bench/law_limit.py: each run scored under its own seed's fit to all its seed's runs (on the recipe's runs these are
the errors behind the committed fits' misfits), which rows a cell compares, the verdict and a table line by hand."""
import json

import numpy as np
import pytest

import predict
from bench import law_limit
from helpers import REPO


def test_in_sample_errors_of_the_recipe_runs_are_the_committed_fits_misfits():
    runs = predict.recipe_runs(predict.committed_runs(), predict.VALIDATION_SEEDS)
    errors, warnings = law_limit.in_sample_errors("floor", runs)
    assert warnings == [] and set(errors) == {run["name"] for run in runs}
    fits = json.loads((REPO / "results" / "predict" / "validation.json").read_text())["fits"]
    for seed, fit in fits.items():
        mine = [errors[name] for name in fit["runs"]]
        assert np.sqrt(np.mean(np.square(mine))) == pytest.approx(fit["misfit"], rel=1e-6), seed


def cell(within, noise=0.01, lr=3e-3, fitted=True):
    return dict(relation="held out", unstable=False, family="wsd", length=600, lr=lr, lr_fitted=fitted, noise=noise,
                within_noise=within)


def row(name, error, relation="held out", unstable=False, where=("wsd", 600, 3e-3)):
    return dict(run=name, error=error, relation=relation, unstable=unstable, cell=list(where))


def test_a_cell_compares_its_held_out_stable_runs_that_have_an_in_sample_error():
    rows = [row("a", -0.02), row("b", 0.01), row("c", 0.5, unstable=True), row("d", 0.4, relation="fitted"),
            row("e", 0.3, where=("wsd", 1200, 3e-3)), row("f", 0.2)]
    unscored = dict(cell(None), length=1200)
    table = law_limit.compare(rows, [cell(False), unscored], {"a": 0.001, "b": -0.004, "c": 0, "d": 0, "e": 0})
    assert table == [(cell(False), [0.02, 0.01], [0.001, 0.004])]


def test_the_verdict_says_which_limit_a_cell_meets():
    assert law_limit.verdict(cell(True), [0.02]) == "within the noise"
    assert law_limit.verdict(cell(False), [0.015, 0.015]) == "the recipe or the seeds"  # mean 1.5x, max 1.5x
    assert law_limit.verdict(cell(False), [0.017, 0.0141]) == "the law's form"  # mean 1.55x
    assert law_limit.verdict(cell(False), [0.0, 0.031]) == "the law's form"  # max 3.1x
    assert law_limit.verdict(cell(False), []) == "no run of a validation seed"


def test_a_table_line():
    line = law_limit.table_line(cell(False, lr=1.5e-3, fitted=False), [0.02, 0.01], [0.001, 0.004])
    assert line == "| wsd | 600 | 0.0015 (held out) | 2 | 1.50% / 2.00% | 0.25% / 0.40% | 1.50% / 3.00% | " \
                   "the recipe or the seeds |"
    assert law_limit.table_line(cell(True), [], []).endswith(
        "| 0 | - | - | 1.50% / 3.00% | no run of a validation seed |")
