"""lab/validation.py: each run predicted by fits of other seeds, the band by hand, the cells (errors, coverage,
within the noise), the fitted runs' seed noise per pair of trunks, and what a fit set cannot determine, checked
before any fit."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from lab import laws, streams, validation
from lab.config import ConfigError
from synthetic_runs import LAW_BASE as BASE
from synthetic_runs import loaded_run as run


def test_each_run_is_predicted_by_fits_of_other_seeds_only():
    fitted = {(s, s): (None, [run(f"fit {s}", seed=s, schedule="wsd", cooldown_steps=100)]) for s in (1, 2, 3)}
    preferred = [(1, 1), (2, 2)]
    for seed, expected in ((1, [(2, 2), (3, 3)]), (2, [(1, 1), (3, 3)]), (3, [(1, 1), (2, 2)])):
        branch_of_fitted_trunk = run("on a fitted trunk", seed=seed, schedule="wsd", cooldown_steps=50)
        assert validation.fits_for(branch_of_fitted_trunk, fitted, preferred) == ("held out", expected)
    assert validation.fits_for(run("seed 9", seed=9), fitted, preferred) == ("held out", preferred)
    only = {(1, 1): fitted[(1, 1)]}  # one fit, and the run is on its trunk: reported apart, never held out
    assert validation.fits_for(run("on it", seed=1), only, [(1, 1)]) == ("shares a trunk", [(1, 1)])
    assert validation.fits_for(run("other lr", seed=1, lr=1e-3), only, [(1, 1)]) == ("same stream", [(1, 1)])


def test_the_band_by_hand(monkeypatch):
    monkeypatch.setattr(laws, "predict_losses", lambda fit, cfg, steps: np.array([fit["value"]]))
    pair = [run("p1", 1.00, seed=1), run("p2", 1.01, seed=2)]  # one setting at two seeds: the fitted seed noise
    fitted = [(dict(value=1.20, misfit=0.01), [pair[0]]), (dict(value=1.26, misfit=0.02), [pair[1]])]
    point, low, high = validation.predict_with_band(fitted, BASE, [400])
    noise = (1 - 1.00 / 1.01) / (2 / math.sqrt(math.pi))  # mean |difference| / 1.128: a standard deviation
    fit = 0.03 / 1.23  # half the fits' spread, relative: the standard error of their mean
    law = (0.01**2 + 0.02**2) / 2  # the fits' mean square misfit: a variance, over 2 fitted runs
    total = fit**2 + noise**2 + law
    dof = total**2 / (fit**4 / 1 + noise**4 / 1 + law**2 / 2)  # Welch-Satterthwaite: 1, 1 and 2 degrees of freedom
    half = student_t.ppf(0.95, dof) * math.sqrt(total) * 1.23
    assert point[0] == pytest.approx(1.23) and low[0] == pytest.approx(1.23 - half) and high[0] == pytest.approx(
        1.23 + half)
    alone = validation.predict_with_band([(dict(value=1.20, misfit=0.0), [pair[0]])], BASE, [400])
    assert alone[1][0] == alone[2][0] == pytest.approx(1.20)  # one fit, no seed pair, no misfit: no band at all
    one_misfit = validation.predict_with_band(fitted[:1], BASE, [400])  # the misfit alone: +-t(1 dof) 1 %
    assert one_misfit[2][0] - 1.20 == pytest.approx(student_t.ppf(0.95, 1) * 0.01 * 1.20)


def row(cell, error, inside, relation="held out", unstable=False):
    return dict(cell=cell, error=error, inside=inside, relation=relation, unstable=unstable, lr_fitted=True,
                spread=0.01, curve=abs(error), curve_max=abs(error), curve_from_warmup=abs(error), stand_in=None)


def test_cells_score_errors_against_the_noise_and_count_the_band_s_coverage_and_the_headline():
    noise = {("wsd", 600): (0.01, 5), ("cosine", 600): (0.01, 5)}
    rows = [row(("wsd", 600, 3e-3), 0.012, True), row(("wsd", 600, 3e-3), -0.014, True),  # mean 1.3 %, max 1.4 %
            row(("wsd", 600, 3e-3), 0.005, False),
            row(("cosine", 600, 3e-3), 0.02, False), row(("cosine", 600, 3e-3), -0.004, True),  # mean 1.2 %, max 2 %
            row(("cosine", 600, 1e-3), 0.031, True), row(("cosine", 600, 1e-3), 0.001, True),  # max 3.1 % > 3x
            row(("wsd", 600, 1e-3), 0.001, True),  # one run: not scored
            row(("wsd", 600, 3e-3), 0.0, True, relation="shares a trunk"),  # never scored
            row(("cosine", 600, 9e-3), 0.3, False, unstable=True), row(("cosine", 600, 9e-3), 0.1, True, unstable=True)]
    cells = {(c["relation"], c["unstable"], c["family"], c["lr"]): c for c in validation.cells(rows, noise)}
    wsd = cells[("held out", False, "wsd", 3e-3)]
    assert (wsd["runs"], wsd["final_mean"], wsd["final_max"]) == (3, pytest.approx(0.031 / 3), pytest.approx(0.014))
    assert wsd["coverage"] == pytest.approx(2 / 3) and wsd["within_noise"] is True and wsd["noise_pairs"] == 5
    assert cells[("held out", False, "cosine", 3e-3)]["within_noise"] is True
    assert cells[("held out", False, "cosine", 1e-3)]["within_noise"] is False
    assert cells[("held out", False, "wsd", 1e-3)]["within_noise"] is None
    assert cells[("shares a trunk", False, "wsd", 3e-3)]["within_noise"] is None
    assert cells[("held out", True, "cosine", 9e-3)]["within_noise"] is None
    assert cells[("held out", True, "cosine", 9e-3)]["coverage"] == 0.5
    assert [c["relation"] for c in validation.cells(rows, noise)][-1] == "shares a trunk"  # held out first
    # the headline: 2 of the 3 scored cells within the noise; 6 of the 8 held-out stable runs inside their band
    assert validation.headline(rows, validation.cells(rows, noise)) == (2, 3, 6, 8)


def test_a_fit_set_that_cannot_determine_the_law_is_refused_or_warned():
    with pytest.raises(ConfigError, match=r"^the fit runs never lower the LR after the warmup \(constant LR only\): "
                                          r"the floor law's cooldown terms are not determined; add a run that cools "
                                          r"down \(a wsd or cosine run\)$"):
        validation.undetermined("floor", [run("a"), run("b", lr=1e-3)])
    fixed, warnings = validation.undetermined("floor", [run("a"), run("b", schedule="wsd")])
    assert fixed == {"eta_c": laws.FLOOR_UNBOUNDED_ETA_C}
    assert warnings == ["warning: every fit run has peak LR 0.003: eta_c (how the floor grows with the peak LR) is "
                        "not determined, fixed at infinity; predictions at other peak LRs are extrapolations"]
    assert validation.undetermined("floor", [run("a", schedule="wsd"), run("b", lr=1e-3, schedule="cosine")]) == (
        {}, [])
    assert validation.undetermined("mpl", [run("a", schedule="wsd")]) == ({}, [])  # mpl has no peak-LR term
    with pytest.raises(ConfigError, match=r"^the runs of seed 1337 have 2 val losses at steps >= fit_from=400, "
                                          r"fewer than the floor law's parameters$"):
        validation.fit_each_seed("floor", [run("a", schedule="wsd"), run("b", lr=1e-3, schedule="cosine")], 400)
    # a run that ends before fit_from would be dropped by the fit without a word (or, alone, crash it)
    with pytest.raises(ConfigError, match=r"^b logs no val loss at steps >= fit_from=400 \(its last: step 350\): "
                                          r"lower --fit_from or leave the run out$"):
        validation.fit_each_seed("floor", [run("a", schedule="wsd"), run("b", lr=1e-3, schedule="cosine",
                                                                      max_steps=350)], 400)


def test_a_fit_that_did_not_converge_is_said(monkeypatch):
    class GaveUp:  # what scipy's minimize returns when BFGS stops without converging, where it started
        def __init__(self, theta):
            self.x, self.fun, self.success, self.nit, self.message = theta, 1.0, False, 0, "Desired error not achieved"
    monkeypatch.setattr(laws, "minimize", lambda objective, theta, **kwargs: GaveUp(theta))
    fits, warnings = validation.fit_each_seed("floor", [run("a", schedule="wsd"), run("b", lr=1e-3, schedule="cosine")],
                                              100)
    assert warnings == ["warning: the floor fit of seed 1337 did not converge (Desired error not achieved): its "
                        "parameters may be far from the best"]
    assert fits[(1337, 1337)][0]["converged"] is False
    _, warnings = validation.fit_each_seed("floor", [run("a", schedule="wsd", data_seed=7),
                                                     run("b", lr=1e-3, schedule="cosine", data_seed=7)], 100)
    assert warnings[0].startswith("warning: the floor fit of seed 1337 did not converge")  # the seed, not data_seed 7


def test_the_fitted_seed_noise_counts_each_pair_of_trunks_once():
    assert validation.fitted_noise([(None, [run("a")])]) == (0.0, 0)
    three = [(None, [run(f"s{i}", final, seed=i)]) for i, final in ((1, 1.00), (2, 1.01), (3, 1.02))]
    # wsd runs of seeds 1 and 2 share 320 of their 400 updates with the constant runs: their pair is the same pair
    # of trunks (one sample of the seed noise, the mean of its two differences); cosines share no trunk with them
    wsd = [(None, [run(f"w{i}", final, seed=i, schedule="wsd")]) for i, final in ((1, 1.0), (2, 1.1))]
    cosine = [(None, [run(f"c{i}", final, seed=i, schedule="cosine")]) for i, final in ((1, 1.0), (2, 1.05))]
    sigma, pairs = validation.fitted_noise(three + wsd + cosine)
    trunk_pairs = [((1 - 1 / 1.01) + (1 - 1 / 1.1)) / 2, 1 - 1 / 1.02, 1 - 1.01 / 1.02, 1 - 1 / 1.05]
    assert sigma == pytest.approx(np.mean(trunk_pairs) / (2 / math.sqrt(math.pi)), rel=1e-12)
    assert pairs == 4 and type(pairs) is int
    assert streams.trunks([r for _, (r,) in three + wsd + cosine]) == dict(
        s1="s1", s2="s2", s3="s3", w1="s1", w2="s2", c1="c1", c2="c2")


FLOOR = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)


def test_the_band_of_three_fits_at_several_steps_by_hand():
    """The law's own predictions (not a stand-in): the mean, the fits' spread per step and the noise of a setting
    fitted at three seeds (three pairs), with two degrees of freedom for three fits."""
    fits = [dict(law="floor", params=dict(FLOOR, A=a), misfit=0.0) for a in (5.0, 5.1, 5.3)]  # no law term
    fitted = [(fit, [run(f"s{i}", final, seed=i)]) for i, (fit, final) in enumerate(zip(fits, (1.00, 1.01, 1.03)))]
    cfg, steps = dict(BASE, schedule="wsd"), [200, 400]
    each = np.array([laws.predict_losses(fit, cfg, steps) for fit in fits])
    point = each.mean(axis=0)
    fit_var = ((each[2] - each[0]) / 2 / point) ** 2  # A = 5.3 predicts the most, 5.0 the least
    noise = (abs(1 / 1.01 - 1) + abs(1 / 1.03 - 1) + abs(1.01 / 1.03 - 1)) / 3 / (2 / math.sqrt(math.pi))
    total = fit_var + noise**2
    half = student_t.ppf(0.95, total**2 / (fit_var**2 / 2 + noise**4 / 3)) * np.sqrt(total) * point
    got = validation.predict_with_band(fitted, cfg, steps)
    assert [g.tolist() for g in got] == [pytest.approx(point.tolist(), rel=1e-12),
                                         pytest.approx((point - half).tolist(), rel=1e-12),
                                         pytest.approx((point + half).tolist(), rel=1e-12)]
    assert half[0] != pytest.approx(half[1], rel=1e-3)  # the spread differs per step
    sigma_only = validation.predict_with_band(fitted[:1] + [(fits[0], fitted[1][1])], cfg, steps)  # equal fits
    dof = (noise**2) ** 2 / (noise**4 / 1)  # one pair: one degree of freedom
    assert sigma_only[2].tolist() == pytest.approx(
        (each[0] * (1 + student_t.ppf(0.95, dof) * (1 - 1 / 1.01) / (2 / math.sqrt(math.pi)))).tolist(), rel=1e-12)


def test_a_run_on_no_fit_s_stream_is_predicted_by_the_preferred_fits_first_then_in_the_fits_order():
    fitted = {(s, s): (None, [run(f"fit {s}", seed=s, schedule="wsd", cooldown_steps=100)]) for s in (3, 1, 2)}
    assert validation.fits_for(run("seed 9", seed=9), fitted, [(2, 2), (1, 1)]) == ("held out", [(1, 1), (2, 2)])
    assert validation.fits_for(run("seed 9", seed=9), fitted, []) == ("held out", [(3, 3), (1, 1)])
    assert validation.fits_for(run("seed 3", seed=3), fitted, [(3, 3), (2, 2)]) == ("held out", [(2, 2), (1, 1)])
    # fits whose runs share its stream (of one seed, here): the closest relation is the one reported
    one_seed = {"a": (None, [run("other lr", lr=1e-3)]), "b": (None, [run("trunk")]),
                "c": (None, [run("cooldown", schedule="wsd", cooldown_steps=100)])}
    assert validation.fits_for(run("branch", schedule="wsd", cooldown_steps=50), one_seed, []) == (
        "shares a trunk", ["a", "b", "c"])
    assert validation.fits_for(run("trunk"), one_seed, []) == ("fitted", ["a", "b", "c"])


def cell_row(cell, error, inside=True, relation="held out", unstable=False, curve=0.01, lr_fitted=True,
             stand_in=None):
    return dict(cell=cell, error=error, inside=inside, relation=relation, unstable=unstable, lr_fitted=lr_fitted,
                spread=abs(error) / 2, curve=curve, curve_max=None if curve is None else 2 * curve,
                curve_from_warmup=3 * abs(error), stand_in=stand_in)


def test_a_cell_is_within_the_noise_at_exactly_1_5_times_its_mean_and_3_times_its_max():
    noise = {("wsd", 600): (0.0625, 3)}  # binary fractions: the thresholds are exact, 0.09375 and 0.1875

    def within(*errors):
        return validation.cells([cell_row(("wsd", 600, 3e-3), e) for e in errors], noise)[0]["within_noise"]
    assert within(0.0, -0.1875) is True  # mean 1.5x, max 3x
    assert within(0.0, 0.0, 0.21875) is False  # mean 1.17x, max 3.5x
    assert within(0.125, -0.125) is False  # mean and max 2x
    assert within(0.0) is None  # one run


def test_a_cell_s_rows_are_those_of_its_relation_stability_family_length_and_peak_lr():
    def row(name, relation="held out", unstable=False, where=("wsd", 600, 3e-3)):
        return dict(run=name, relation=relation, unstable=unstable, cell=list(where))
    rows = [row("a"), row("fitted", relation="fitted"), row("unstable", unstable=True),
            row("long", where=("wsd", 1200, 3e-3)), row("cosine", where=("cosine", 600, 3e-3)),
            row("low", where=("wsd", 600, 1.5e-3)), row("b")]
    cell = dict(relation="held out", unstable=False, family="wsd", length=600, lr=3e-3)
    assert [r["run"] for r in validation.cell_rows(rows, cell)] == ["a", "b"]
    assert [r["run"] for r in validation.cell_rows(rows, dict(cell, unstable=True))] == ["unstable"]
    assert [r["run"] for r in validation.cell_rows(rows, dict(cell, relation="fitted"))] == ["fitted"]


def test_a_cell_s_numbers_and_the_order_of_cells_held_out_stable_by_lr_family_and_length():
    noise = {("wsd", 600): (0.01, 5), ("cosine", 600): (0.02, 2)}
    rows = [cell_row(("wsd", 600, 3e-3), 0.012, curve=0.01, stand_in=-0.004),
            cell_row(("wsd", 600, 3e-3), -0.018, False, curve=0.03),  # no stand-in: its setting not at the fits' seeds
            cell_row(("wsd", 600, 3e-3), 0.006, curve=None, stand_in=0.008),  # no point of its curve >= fit_from
            cell_row(("cosine", 600, 3e-3), 0.01), cell_row(("cosine", 300, 3e-3), 0.01),
            cell_row(("cosine", 600, 1e-3), 0.01, lr_fitted=False),
            cell_row(("cosine", 600, 3e-3), 0.2, unstable=True), cell_row(("wsd", 300, 1e-3), 0.0, relation="fitted"),
            cell_row(("wsd", 300, 1e-3), 0.0, relation="same stream", curve=None)]
    cells = validation.cells(rows, noise)
    assert [(c["relation"], c["unstable"], c["family"], c["length"], c["lr"]) for c in cells] == [
        ("held out", False, "cosine", 600, 1e-3), ("held out", False, "cosine", 300, 3e-3),
        ("held out", False, "cosine", 600, 3e-3), ("held out", False, "wsd", 600, 3e-3),
        ("held out", True, "cosine", 600, 3e-3), ("fitted", False, "wsd", 300, 1e-3),
        ("same stream", False, "wsd", 300, 1e-3)]
    # errors 1.2 %, 1.8 %, 0.6 %: mean 1.2 % <= 1.5 %, max 1.8 % <= 3 %; curves of the two that have one
    assert cells[3] == dict(relation="held out", unstable=False, family="wsd", length=600, lr=3e-3, lr_fitted=True,
                            runs=3, final_mean=pytest.approx(0.012), final_max=pytest.approx(0.018),
                            curve_mean=pytest.approx(0.02), curve_max=pytest.approx(0.06),
                            curve_from_warmup=pytest.approx(0.036), noise=0.01, noise_pairs=5,
                            spread=pytest.approx(0.006), coverage=pytest.approx(2 / 3), within_noise=True,
                            stand_in=pytest.approx(0.006), stand_in_runs=2)  # |-0.4 %| and 0.8 %: of the two
    assert cells[0]["lr_fitted"] is False and cells[0]["within_noise"] is None  # one run
    assert (cells[1]["noise"], cells[1]["noise_pairs"]) == (None, 0)  # no seed pair of that family and length
    last = cells[-1]
    assert (last["curve_mean"], last["curve_max"], last["final_mean"]) == (None, None, 0.0)


def law_run(name, params=FLOOR, **settings):
    """An in-memory run whose val losses (every 50 steps) are the floor law's with `params`."""
    cfg = dict(BASE, **settings)
    steps = np.arange(50, cfg["max_steps"] + 1, 50)
    return dict(name=name, cfg=cfg, steps=steps, data=None, trained=True, lrs=laws.schedule_lrs(cfg, cfg["max_steps"]),
                losses=laws.predict_losses(dict(law="floor", params=params), cfg, steps))


def test_each_seed_is_fitted_alone_and_a_warning_said_once():
    no_growth = dict(FLOOR, eta_c=1e6)  # the floor the fit can draw with eta_c fixed
    runs = [law_run(f"{kind} {seed}", no_growth, seed=seed, schedule=kind) for seed in (1, 2)
            for kind in ("wsd", "cosine")]
    fits, warnings = validation.fit_each_seed("floor", runs, 100)
    assert warnings == ["warning: every fit run has peak LR 0.003: eta_c (how the floor grows with the peak LR) is "
                        "not determined, fixed at infinity; predictions at other peak LRs are extrapolations"]
    assert list(fits) == [(1, 1), (2, 2)]
    for (seed, _), (fit, group) in fits.items():
        assert [r["name"] for r in group] == [f"wsd {seed}", f"cosine {seed}"]
        assert (fit["law"], fit["fit_from"], fit["fixed"], fit["points"]) == ("floor", 100, ["eta_c"], 14)
        assert fit["params"]["F"] == pytest.approx(0.08, rel=0.05) and fit["params"]["eta_c"] == 1e6
        assert fit["params"]["alpha"] == pytest.approx(0.2, rel=0.05)
        assert fit["misfit"] < 1e-3  # the law's own curves: drawn (all but) exactly


def test_the_law_s_misfit_is_the_rms_of_its_relative_errors_on_the_runs_final_losses():
    fit = dict(law="floor", params=FLOOR)
    above, below = law_run("above", schedule="wsd"), law_run("below", schedule="cosine")
    above["losses"], below["losses"] = above["losses"] * 1.02, below["losses"] * 0.99  # the law 1.02x, 0.99x off
    above["losses"][:-1] = below["losses"][:-1] = 9.0  # only the final loss counts
    expected = math.sqrt(((1 / 1.02 - 1) ** 2 + (1 / 0.99 - 1) ** 2) / 2)
    assert validation.final_misfit(fit, [above, below]) == pytest.approx(expected, rel=1e-9)
    assert validation.final_errors(fit, [above, below]) == pytest.approx([1 / 1.02 - 1, 1 / 0.99 - 1], rel=1e-9)


def test_a_seed_needs_as_many_val_losses_as_the_law_has_free_parameters():
    five = [law_run("wsd", schedule="wsd", data_seed=5)]  # steps 200 ... 400 from fit_from=200: 5 points
    fits, _ = validation.fit_each_seed("floor", five, 200)  # 6 parameters, eta_c fixed: 5 free
    assert fits[(1337, 5)][0]["points"] == 5
    with pytest.raises(ConfigError, match=r"^the runs of seed 1337 have 4 val losses at steps >= fit_from=250, "
                                          r"fewer than the floor law's parameters$"):
        validation.fit_each_seed("floor", five, 250)
    with pytest.raises(ConfigError, match=r"the floor law's cooldown terms are not determined"):
        validation.fit_each_seed("floor", [law_run("flat", seed=3)], 0)


def two_fits():
    """Fits of seeds 1 and 2 (A = 5.0 and 5.2), each fitted to one run of its seed: no seed pair, no noise."""
    return {(1, 1): (dict(law="floor", params=FLOOR, misfit=0.0), [law_run("fit 1", seed=1, schedule="wsd")]),
            (2, 7): (dict(law="floor", params=dict(FLOOR, A=5.2), misfit=0.0),
                     [law_run("fit 2", seed=2, data_seed=7, schedule="wsd")])}


def test_a_run_s_row_its_final_loss_predicted_with_the_band_and_its_curve_s_errors():
    fitted = two_fits()
    measured = law_run("measured", seed=9, schedule="cosine", params=dict(FLOOR, A=5.05))
    steps = measured["steps"]  # 50, 100, ..., 400
    each = [laws.predict_losses(fit, measured["cfg"], steps) for fit, _ in fitted.values()]
    point = (each[0] + each[1]) / 2
    # no seed noise: the fits' spread alone, one degree of freedom: t = 6.3138; half = t x (A=5.2's - A=5.0's) / 2
    half = student_t.ppf(0.95, 1) * (each[1] - each[0]) / 2
    errors = np.abs(point / measured["losses"] - 1)
    row = validation.score(measured, fitted, [(2, 7), (1, 1)], 300)
    assert row == dict(run="measured", seeds=[[2, 7], 1], measured=measured["losses"][-1],
                       predicted=pytest.approx(point[-1], rel=1e-12), low=pytest.approx(point[-1] - half[-1], rel=1e-12),
                       high=pytest.approx(point[-1] + half[-1], rel=1e-12),
                       error=pytest.approx(point[-1] / measured["losses"][-1] - 1, rel=1e-9), inside=True,
                       spread=pytest.approx((each[1][-1] - each[0][-1]) / point[-1], rel=1e-9),
                       curve=pytest.approx(errors[-3:].mean(), rel=1e-9), curve_max=pytest.approx(errors[-3:].max()),
                       curve_from_warmup=pytest.approx(errors.mean(), rel=1e-9))
    assert errors[-3:].mean() != pytest.approx(errors.mean(), rel=1e-3)  # fit_from leaves out the early curve
    outside = dict(measured, losses=measured["losses"] * 1.2)  # the band is +-12 %: one degree of freedom
    assert validation.score(outside, fitted, [(1, 1), (2, 7)], 300)["inside"] is False
    _, low, high = validation.predict_with_band([fitted[(1, 1)], fitted[(2, 7)]], measured["cfg"], steps)
    assert low[-2] > low[-1] and high[-2] > high[-1]  # a falling curve: the band at step 350 lies above the last
    for final, inside in ((low[-1], True), (high[-1], True), (np.nextafter(low[-1], 0), False),
                          (np.nextafter(high[-1], 2), False)):
        edge = dict(measured, losses=np.concatenate([measured["losses"][:-1], [final]]))
        assert validation.score(edge, fitted, [(1, 1), (2, 7)], 300)["inside"] is inside, (final, inside)
    late = validation.score(measured, fitted, [(1, 1), (2, 7)], 500)
    assert (late["curve"], late["curve_max"]) == (None, None)  # no point at steps >= fit_from


def test_a_validation_predicts_every_run_by_fits_of_other_seeds_and_tables_its_cells():
    fitted = two_fits()
    fitted[(3, 3)] = (dict(law="floor", params=dict(FLOOR, A=5.1), misfit=0.0), [law_run("fit 3", seed=3,
                                                                                          schedule="wsd")])
    fit_runs = [runs[0] for _, runs in fitted.values()]
    other_lr = law_run("lr 1e-3", seed=9, schedule="wsd", lr=1e-3)
    shaky = [law_run(f"shaky {s}", seed=s, schedule="cosine", params=dict(FLOOR, A=a)) for s, a in ((4, 5.0), (5, 7.0))]
    rows, cells = validation.validate(fit_runs + [other_lr] + shaky, fitted, [(1, 1), (2, 7)], 300)
    assert [(r["run"], r["seeds"], r["relation"], r["cell"], r["unstable"], r["lr_fitted"]) for r in rows] == [
        ("fit 1", [[2, 7], 3], "held out", ("wsd", 400, 3e-3), False, True),
        ("fit 2", [1, 3], "held out", ("wsd", 400, 3e-3), False, True),
        ("fit 3", [1, [2, 7]], "held out", ("wsd", 400, 3e-3), False, True),
        ("lr 1e-3", [1, [2, 7]], "held out", ("wsd", 400, 1e-3), False, False),
        ("shaky 4", [1, [2, 7]], "held out", ("cosine", 400, 3e-3), True, True),
        ("shaky 5", [1, [2, 7]], "held out", ("cosine", 400, 3e-3), True, True)]
    each = {k: laws.predict_losses(fit, other_lr["cfg"], [400])[0] for k, (fit, _) in fitted.items()}
    assert rows[3]["predicted"] == pytest.approx((each[(1, 1)] + each[(2, 7)]) / 2, rel=1e-12)
    # the three fitted runs are one setting at three seeds: its pooled noise is their mean |relative difference|
    finals = [r["losses"][-1] for r in fit_runs]
    pooled = np.mean([abs(finals[i] / finals[j] - 1) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert [(c["family"], c["lr"], c["unstable"], c["runs"], c["noise"], c["noise_pairs"]) for c in cells] == [
        ("wsd", 1e-3, False, 1, pytest.approx(pooled, rel=1e-12), 3),
        ("wsd", 3e-3, False, 3, pytest.approx(pooled, rel=1e-12), 3), ("cosine", 3e-3, True, 2, None, 0)]
    # the stand-in: each run predicted by the measured final loss of its own setting at its fits' seeds
    stand = [finals[1] / finals[0] + finals[2] / finals[0], finals[0] / finals[1] + finals[2] / finals[1],
             finals[0] / finals[2] + finals[1] / finals[2]]  # fit 1 by seeds 2 and 3, fit 2 by 1 and 3, ...
    assert [r["stand_in"] for r in rows[:3]] == [pytest.approx(s / 2 - 1, rel=1e-12) for s in stand]
    assert [r["stand_in"] for r in rows[3:]] == [None, None, None]  # no fit's seed trained their settings
    assert [(c["stand_in"], c["stand_in_runs"]) for c in cells] == [
        (None, 0), (pytest.approx(np.mean([abs(s / 2 - 1) for s in stand]), rel=1e-12), 3), (None, 0)]
