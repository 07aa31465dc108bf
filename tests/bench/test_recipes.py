"""bench/recipes.py: the recipes it compares (the recommended one first, each made of committed runs at every
validation seed), its line for the recommended recipe against the committed validation's, and a line by hand."""
import json

import pytest

import predict
from bench import recipes
from helpers import REPO
from lab import validation


def test_the_recipes_are_the_recommended_one_first_each_of_committed_runs_at_every_seed():
    assert recipes.recipe(recipes.RECIPES[0][1]) == predict.RECIPE
    assert len({names for _, names in recipes.RECIPES}) == len(recipes.RECIPES)
    runs = predict.committed_runs()
    for what, names in recipes.RECIPES:
        found = predict.recipe_runs(runs, predict.VALIDATION_SEEDS, recipes.recipe(names))
        assert len({run["name"] for run in found}) == len(names) * len(predict.VALIDATION_SEEDS), what


def test_the_recommended_recipe_scores_what_predict_validate_wrote():
    document = json.loads((REPO / "results" / "predict" / "validation.json").read_text())
    counts, ranges = recipes.score("floor", predict.committed_runs(), predict.RECIPE)
    assert counts == validation.headline(document["rows"], document["cells"])
    for name in ("q", "x0"):
        values = [fit["params"][name] for fit in document["fits"].values()]
        assert ranges[name] == pytest.approx((min(values), max(values)), rel=1e-6)


def test_a_table_line():
    line = recipes.table_line("r", ((11, 16, 93, 106), {"q": (0.154, 0.366), "x0": (0.316, 11.4)}))
    assert line == "| r | 11 of 16 | 88% of 106 | 0.154 to 0.366; 0.316 to 11.4 |"
