"""lab/scaling.py: compute of trunks and branches counted by hand, the Chinchilla fit recovering known parameters,
and the compute-optimal allocation against a numerical minimisation."""
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from lab import scaling

TOKENS_PER_STEP = 8 * 64
FLOPS = dict(six_n=600, chinchilla=900)  # per token: round numbers make the hand computation readable
SHAPE = dict(n_layer=2, n_head=2, n_embd=64, ffw_size=128, vocab_size=320, block_size=64)


def run(schedule, max_steps, last_step=None, origin_step=None, out_dir="out/x", model=SHAPE, **config):
    """An in-memory run as plot.py loads it: config.json contents and metrics records (first and last)."""
    origin = None if origin_step is None else dict(checkpoint="ckpt.pt", out_dir="out/trunk", step=origin_step)
    last_step = max_steps if last_step is None else last_step
    settings = dict(schedule=schedule, max_steps=max_steps, optimizer="adamw", cycle_steps=None,
                    batch_size=8, seq_len=64, out_dir=out_dir)
    info = dict(config={**settings, **config},
                origin=origin, model_config=dict(model), flops_per_token=dict(FLOPS),
                params=100 + 320 * 64)
    first = origin_step or 0
    return dict(info=info, metrics=[dict(step=first, val_loss=3.0), dict(step=last_step, val_loss=2.0)])


def trunk_and_branches(lengths, trunk_steps, cooldown_frac=0.2):
    trunk = run("constant", trunk_steps, out_dir="out/trunk")
    branches = [run("wsd", n, origin_step=n - round(cooldown_frac * n), out_dir=f"out/to{n}") for n in lengths]
    return trunk, branches


def test_a_branch_counts_only_its_own_steps():
    branch = run("wsd", 500, origin_step=400)
    assert scaling.run_compute(branch) == dict(tokens=100 * 512, six_n=100 * 512 * 600, chinchilla=100 * 512 * 900)
    assert scaling.run_compute(run("cosine", 500)) == dict(tokens=500 * 512, six_n=500 * 512 * 600,
                                                          chinchilla=500 * 512 * 900)


def test_savings_of_a_trunk_with_two_branches_by_hand():
    # trunk of 800 steps; branch to 500 leaves it at 400 (100 own steps), branch to 1000 at 800 (200 own steps):
    # 800 + 100 + 200 = 1100 steps, against cosine runs of 500 + 1000 = 1500 steps.
    trunk, branches = trunk_and_branches([500, 1000], trunk_steps=800)
    cosine = [run("cosine", 500), run("cosine", 1000)]
    [row] = scaling.compute_savings([trunk, *branches, *cosine])
    assert row["cooldown"] == dict(runs=2, trunks=1, tokens=1100 * 512, six_n=1100 * 512 * 600,
                                   chinchilla=1100 * 512 * 900)
    assert row["cosine"] == dict(runs=2, tokens=1500 * 512, six_n=1500 * 512 * 600, chinchilla=1500 * 512 * 900)
    assert row["ratio"] == pytest.approx(1100 / 1500) and row["notes"] == []
    assert row["params"] == 100 and row["label"] == "0.0206M"  # N = six_n / 6; the label counts all parameters


def test_savings_of_three_lengths_fall_in_the_papers_range():
    # 500/750/1000 with 20 % cooldowns: 800 + 100 + 150 + 200 = 1250 steps vs 2250, the paper's 0.53-0.60 range
    trunk, branches = trunk_and_branches([500, 750, 1000], trunk_steps=800)
    cosine = [run("cosine", n) for n in (500, 750, 1000)]
    [row] = scaling.compute_savings([trunk, *branches, *cosine])
    assert row["ratio"] == pytest.approx(1250 / 2250)
    # without the trunk's logs, it is counted up to the furthest branch point, here the same 800 steps
    [row] = scaling.compute_savings([*branches, *cosine])
    assert row["ratio"] == pytest.approx(1250 / 2250)
    assert row["notes"] == ["trunk out/trunk is not among the runs: counted up to step 800"]


def test_savings_are_per_model_size_and_ignore_other_runs():
    small_trunk, small_branches = trunk_and_branches([500, 1000], trunk_steps=800)
    big = dict(SHAPE, n_layer=4)
    big_trunk = run("constant", 1000, model=big, out_dir="out/trunk")  # ran past its last branch point
    big_branch = run("wsd", 1000, origin_step=800, model=big)
    others = [run("cosine", 1000, cycle_steps=500), run("constant", 300, out_dir="out/lonely")]  # not counted
    rows = scaling.compute_savings([small_trunk, *small_branches, run("cosine", 500), run("cosine", 1000),
                                    big_trunk, big_branch, run("cosine", 1000, model=big), *others])
    assert [r["ratio"] for r in rows] == pytest.approx([1100 / 1500, (1000 + 200) / 1000])
    assert [r["size"] for r in rows] == [scaling.size_key(small_trunk), scaling.size_key(big_trunk)]


def test_non_embedding_params_match_the_model():
    from model import GPT, GPTConfig, flops_per_token
    config = GPTConfig(vocab_size=320, block_size=64, n_layer=2, n_head=2, n_embd=64, ffw_size=128)
    info = dict(flops_per_token=flops_per_token(config, 64))
    assert scaling.non_embedding_params(dict(info=info)) == GPT(config).num_params(non_embedding=True)


TRUE = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Chinchilla's own fit


def chinchilla_points(sizes, tokens, law=TRUE):
    N, D = (grid.ravel() for grid in np.meshgrid(sizes, tokens))
    return N, D, scaling.predict(law, N, D)


def test_fit_recovers_known_parameters_from_noiseless_data():
    fit = scaling.fit_loss_law(*chinchilla_points(np.geomspace(1e6, 3e8, 5), np.geomspace(1e8, 1e11, 5)))
    for key in ("E", "A", "B"):
        assert fit[key] == pytest.approx(TRUE[key], rel=1e-4), key
    assert (fit["alpha"], fit["beta"]) == pytest.approx((TRUE["alpha"], TRUE["beta"]), abs=1e-4)
    assert fit["rms_log_residual"] < 1e-6 and fit["points"] == 25


def test_fit_recovers_a_small_scale_law_from_twelve_runs():
    law = dict(E=1.2, A=30.0, B=80.0, alpha=0.3, beta=0.3)  # 4 sizes x 3 lengths, like our CPU suite
    fit = scaling.fit_loss_law(*chinchilla_points(np.geomspace(2e5, 1e7, 4), np.geomspace(2e6, 3e7, 3), law))
    assert [fit[k] for k in law] == pytest.approx(list(law.values()), rel=1e-3)


def test_fit_needs_enough_distinct_points():
    N, D, L = chinchilla_points([1e6, 1e7], [1e8, 1e9])
    assert scaling.fit_loss_law(N, D, L) is None  # 4 points
    assert scaling.fit_loss_law([1e6] * 6, np.geomspace(1e8, 1e9, 6), np.linspace(3, 2, 6)) is None  # one size


def test_compute_optimal_allocation_minimises_the_law_at_fixed_compute():
    for flops, row in zip([1e18, 1e21, 1e24], scaling.compute_optimal(TRUE, [1e18, 1e21, 1e24])):
        # along C = 6 N D, the loss as a function of log N; its minimum must be the closed form's N
        best = minimize_scalar(lambda log_n: scaling.predict(TRUE, math.exp(log_n), flops / 6 / math.exp(log_n)),
                               bounds=(math.log(1e3), math.log(1e14)), method="bounded", options=dict(xatol=1e-10))
        assert row["N"] == pytest.approx(math.exp(best.x), rel=1e-4)
        assert 6 * row["N"] * row["D"] == pytest.approx(flops)
        assert row["loss"] == pytest.approx(best.fun)
    # Chinchilla's exponents: N_opt grows as C^(beta/(alpha+beta)) = C^0.4516...
    small, large = scaling.compute_optimal(TRUE, [1e18, 1e21])
    assert math.log(large["N"] / small["N"]) / math.log(1e3) == pytest.approx(0.28 / 0.62)


def test_compare_fits_reports_the_ratio_of_allocations():
    other = dict(TRUE, A=TRUE["A"] * 2)  # a larger A: parameters matter more, so N_opt grows
    [row] = scaling.compare_fits(dict(cosine=TRUE, cooldown=other), [1e21])
    assert row["N_ratio"] == pytest.approx(2 ** (1 / 0.62))  # G scales as A^(1/(alpha+beta))
    assert row["D_ratio"] == pytest.approx(1 / row["N_ratio"])
    assert row["cosine"] == scaling.compute_optimal(TRUE, [1e21])[0]


def test_default_budgets_span_the_runs_and_beyond():
    assert scaling.default_budgets([1e6, 1e7], [1e7, 1e8]) == [1e14, 1e15, 1e16, 1e17]  # 6e13 .. 6e15, +2 decades
