"""lab/laws.py: each law's terms and value on a schedule small enough to add up by hand (distinct parameter values,
the published formulas written out); each law recovering the parameters of curves it generated; what the fit
weighs."""
import math
import warnings

import numpy as np
import pytest

from lab import laws, scaling
from lab.settings import DEFAULTS

# updates u = 0..3 with LRs 0.5 (the warmup, W = 1), 1.0 (the peak: no drop), 0.5, 0.25; val losses at s = 3 and 4
LRS, WARMUP, PEAK, STEPS = np.array([0.5, 1.0, 0.5, 0.25]), 1, 1.0, np.array([3, 4])


def test_the_published_laws_terms_by_hand():
    f = laws.mpl_features(LRS, WARMUP, PEAK, STEPS, decay=0.5)
    assert f["area"] == pytest.approx([2.0, 2.25])  # S_W + S1: 0.5 + 1 + 0.5, then + 0.25
    assert f["drops"] == pytest.approx([0.5, 0.25])  # eta(1) - eta(2), eta(2) - eta(3); u = 1 drops nothing
    assert f["since"] == pytest.approx(np.array([[0.5, 0.0], [0.75, 0.25]]))  # S_u(s): the area from u to s - 1
    # Tissue's momentum with lambda 0.5: m(1) = 0, m(2) = 0.5, m(3) = 0.5 * 0.5 + 0.25 = 0.5; S2 = their sums
    assert f["s2"] == pytest.approx([0.5, 1.0])


def test_the_multi_power_law_by_hand_with_distinct_parameters():
    p = dict(L0=0.5, A=2.0, alpha=0.5, B=0.4, C=2.0, beta=0.5, gamma=1.0)
    f = laws.mpl_features(LRS, WARMUP, PEAK, STEPS)
    # Luo et al.: L = L0 + A (S_W + S1)^-alpha - B sum_u (eta_{u-1} - eta_u) (1 - (C eta_u^-gamma S_u + 1)^-beta)
    # s = 3: the drop at u = 2 (0.5), x = 0.5^-1 * 0.5 = 1: 1 - 3^-0.5 = 0.422650
    # s = 4: u = 2: x = 2 * 0.75 = 1.5: 1 - 4^-0.5 = 0.5; u = 3 (0.25): x = 0.25^-1 * 0.25 = 1: 0.422650
    expected = [0.5 + 2.0 * 2.0**-0.5 - 0.4 * 0.5 * 0.422650,  # 1.829683
                0.5 + 2.0 * 2.25**-0.5 - 0.4 * (0.5 * 0.5 + 0.25 * 0.422650)]  # 1.691068
    assert laws.mpl_loss(p, f) == pytest.approx(expected, abs=2e-6)
    assert laws.mpl_loss(p, f) == pytest.approx([1.829683, 1.691068], abs=2e-6)
    swapped = laws.mpl_loss(dict(p, beta=p["gamma"], gamma=p["beta"]), f)  # beta and gamma are not interchangeable
    assert abs(swapped[1] - 1.691068) > 1e-3
    tissue = dict(L0=0.5, A=2.0, alpha=0.5, C=0.3)  # L0 + A S1^-alpha - C S2, with S2 of lambda 0.5 above
    f2 = laws.mpl_features(LRS, WARMUP, PEAK, STEPS, decay=0.5)
    assert laws.tissue_loss(tissue, f2) == pytest.approx([0.5 + 2 * 2**-0.5 - 0.3 * 0.5, 0.5 + 2 / 1.5 - 0.3 * 1.0])


def test_a_drop_no_lr_area_has_followed_counts_nothing_and_never_makes_the_loss_nan():
    # u = 3 drops to an LR of 0 (log eta floored at 1e-30): with gamma 60 eta_u^-gamma overflows, but no area has
    # passed since u at s = 3 (u >= s) nor at s = 4 (the LR after it is 0): its term is 0, not inf * 0 = nan
    lrs = np.array([0.5, 1.0, 0.5, 0.0])
    p = dict(L0=0.5, A=2.0, alpha=0.5, B=0.4, C=2.0, beta=0.5, gamma=60.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and silently
        loss = laws.mpl_loss(p, laws.mpl_features(lrs, WARMUP, PEAK, STEPS))
    x = 0.5**-60 * 0.5  # the drop at u = 2, at s = 3 and 4 (S_2 = 0.5 both): 1 - (C x + 1)^-beta, all but 1
    assert loss == pytest.approx([0.5 + 2.0 * 2.0**-0.5 - 0.4 * 0.5 * (1 - (2 * x + 1) ** -0.5)] * 2, abs=1e-12)
    assert loss[1] == pytest.approx(0.5 + 2.0 * 2.0**-0.5 - 0.4 * 0.5, abs=1e-8)  # the drop at u = 2 all but whole


def test_the_floor_law_by_hand():
    p = dict(A=2.0, alpha=0.5, F=0.1, eta_c=2.0, q=0.5, x0=1.0)
    f = laws.floor_features(LRS, WARMUP, PEAK, STEPS)
    assert f["drops"] == pytest.approx([0.5, 0.25])  # of the multiplier m = eta / peak, after the warmup
    assert f["drops3"] == pytest.approx([1 - 0.125, 0.125 - 0.015625])  # of m^3
    assert f["since"] == pytest.approx(np.array([[0.5, 0.0], [0.75, 0.25]]))  # R(s) - R(u), R the sum of m
    # tau(3) = 0.5^0.5 + 1 + 0.5^0.5 = 2.414214, tau(4) = tau(3) + 0.25^0.5 = 2.914214
    # r(3) = 1 - 0.5 (1 - e^-0.5) = 0.803265;  r(4) = 1 - 0.5 (1 - e^-0.75) - 0.25 (1 - e^-0.25) = 0.680883
    # r3(3) = 1 - 0.875 (1 - e^-0.5) = 0.655714;  r3(4) = 1 - 0.875 (1 - e^-0.75) - 0.109375 (1 - e^-0.25) = 0.514127
    # F (r + (peak / eta_c)^2 r3), (1/2)^2 = 0.25
    expected = [2 * 2.414214**-0.5 + 0.1 * (0.803265 + 0.25 * 0.655714),  # 1.383908
                2 * 2.914214**-0.5 + 0.1 * (0.680883 + 0.25 * 0.514127)]  # 1.252514
    assert laws.floor_loss(p, f) == pytest.approx(expected, abs=2e-6)
    assert laws.floor_loss(p, f) == pytest.approx([1.383908, 1.252514], abs=2e-6)
    # q = 0: every step counts one whatever its LR, tau(3) = 3 and tau(4) = 4
    assert laws.floor_loss(dict(p, q=0.0), f) == pytest.approx([2 * 3**-0.5 + 0.1 * (0.803265 + 0.25 * 0.655714),
                                                                2 * 4**-0.5 + 0.1 * (0.680883 + 0.25 * 0.514127)],
                                                               abs=2e-6)
    # at a constant LR (no drop: r = r3 = 1) the floor is F (1 + (peak / eta_c)^2)
    flat = laws.floor_features(np.ones(4), WARMUP, PEAK, STEPS)
    assert laws.floor_loss(p, flat) == pytest.approx([2 * 3**-0.5 + 0.125, 2 * 4**-0.5 + 0.125], abs=1e-9)


def test_the_floor_settles_at_its_value_for_the_lr_in_use():
    """Long after the LR drops to a fraction m of the peak, the floor is F m (1 + (m peak / eta_c)^2): its growth
    above eta_c follows the LR in use (m^3 of the peak's growth), its base the LR relative to the peak (m)."""
    p = dict(A=2.0, alpha=0.5, F=0.1, eta_c=2.0, q=0.5, x0=1.0)
    lrs = np.concatenate([np.full(5, 1.0), np.full(200, 0.1)])  # peak 1 until update 4, then 0.1
    f = laws.floor_features(lrs, 1, 1.0, np.array([5, 205]))
    progress = np.array([5.0, 5.0 + 200 * 0.1**0.5])
    floor = laws.floor_loss(p, f) - 2.0 * progress**-0.5
    assert floor[0] == pytest.approx(0.1 * (1 + 0.25))  # at the peak: F (1 + (1/2)^2)
    assert floor[1] == pytest.approx(0.1 * 0.1 * (1 + 0.05**2), abs=1e-8)  # relaxed (e^-20 left): 0.1 F (1 + (0.1/2)^2)


def test_the_first_step_after_the_warmup_drops_from_the_peak():
    f = laws.mpl_features(np.array([0.5, 0.8]), 1, 1.0, np.array([2]), decay=0.5)
    assert f["drops"] == pytest.approx([0.2]) and f["since"] == pytest.approx(np.array([[0.8]]))
    assert f["s2"] == pytest.approx([0.2])
    g = laws.floor_features(np.array([0.5, 0.8]), 1, 1.0, np.array([2]))
    assert g["drops"] == pytest.approx([0.2])


def test_under_a_constant_lr_the_floor_stays_and_a_cooldown_removes_it():
    base = dict(DEFAULTS, max_steps=400, lr=3e-3, warmup_steps=20)
    fit = dict(law="floor", params=dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.01, x0=0.5))
    steps = np.arange(100, 401, 20)
    flat = laws.predict_losses(fit, dict(base, schedule="constant"), steps)
    wsd = laws.predict_losses(fit, dict(base, schedule="wsd", cooldown_frac=0.2), steps)
    assert wsd[steps <= 320] == pytest.approx(flat[steps <= 320])  # the same until the cooldown starts
    # at the end nearly the whole floor F (1 + (3/4)^2) = 0.125 is gone: what the last, smallest LRs lowered has not
    # relaxed yet, and a little progress is lost with them (q = 0.01: a step at a low LR counts nearly one)
    assert 0.11 < flat[-1] - wsd[-1] < 0.125
    # with q = 0.2 the cooldown's steps count less (m^0.2): more progress is lost, the same floor gone
    slower = dict(fit, params=dict(fit["params"], q=0.2))
    gain = laws.predict_losses(slower, dict(base, schedule="constant"), steps)[-1] - laws.predict_losses(
        slower, dict(base, schedule="wsd", cooldown_frac=0.2), steps)[-1]
    assert 0.09 < gain < flat[-1] - wsd[-1] - 0.01


def synthetic_run(law, params, **settings):
    cfg = dict(DEFAULTS, **dict(dict(max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=20), **settings))
    steps = np.arange(40, cfg["max_steps"] + 1, cfg["eval_interval"])
    return dict(cfg=cfg, steps=steps, losses=laws.predict_losses(dict(law=law, params=params), cfg, steps))


@pytest.mark.parametrize("law, params, fixed", [
    ("floor", dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0), {}),
    ("mpl", dict(L0=0.8, A=0.9, alpha=0.45, B=90.0, C=1.5, beta=0.55, gamma=0.65), {}),
    ("tissue", dict(L0=0.8, A=0.9, alpha=0.45, C=0.4), {})])
def test_each_law_recovers_the_parameters_of_its_own_curves(law, params, fixed):
    runs = [synthetic_run(law, params, schedule="constant"),
            synthetic_run(law, params, schedule="wsd", cooldown_frac=0.25, eval_interval=10),
            synthetic_run(law, params, schedule="cosine"),
            synthetic_run(law, params, schedule="cosine", lr=1.5e-3)]
    fit = laws.fit_law(law, runs, fixed=fixed)
    for name, value in params.items():
        assert fit["params"][name] == pytest.approx(value, rel=0.05), name
    unseen = synthetic_run(law, params, schedule="wsd", cooldown_shape="linear", cooldown_frac=0.1)
    assert np.abs(laws.predict_losses(fit, unseen["cfg"], unseen["steps"]) / unseen["losses"] - 1).max() < 1e-3


def test_fixed_parameters_keep_their_value_and_fit_from_leaves_out_the_early_curve():
    params = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)
    runs = [synthetic_run("floor", params, schedule="wsd"), synthetic_run("floor", params, schedule="cosine")]
    runs[0]["losses"][:5] += 0.5  # an early curve the law does not describe (steps 40-120)
    fit = laws.fit_law("floor", runs, fit_from=200, fixed=dict(eta_c=4e-3))
    assert fit["params"]["eta_c"] == 4e-3 and fit["fixed"] == ["eta_c"] and fit["fit_from"] == 200
    assert fit["points"] == 2 * 11  # steps 200, 220, ..., 400 of each run
    assert fit["params"]["alpha"] == pytest.approx(0.2, rel=0.05)


def test_every_run_weighs_the_same_however_many_points_it_logged():
    params = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)
    dense = synthetic_run("floor", params, schedule="wsd", eval_interval=5)
    sparse = synthetic_run("floor", params, schedule="cosine")
    curves = [(laws.run_features("floor", r["cfg"], r["steps"]), r["losses"] * 1.01) for r in (dense, sparse)]
    theta = np.log([params[n] for n in laws.LAWS["floor"]["names"]])
    # every point 1 % off: each run's mean Huber loss is the same, whatever its number of points
    one = scaling.huber(np.array([math.log(1 / 1.01)]))[0][0]
    assert laws.objective(theta, "floor", curves, {}) == pytest.approx(one, rel=1e-9)


def test_a_drop_at_the_first_update_counts_from_nothing_done():
    """No warmup, and the first update already below the peak: its drop counts from R(0) = 0 and S1(0) = 0."""
    lrs, steps = np.array([0.5, 0.25]), np.array([2])
    f = laws.floor_features(lrs, 0, 1.0, steps)
    # drops of m: 1 -> 0.5 at u = 0, 0.5 -> 0.25 at u = 1; R = 0, 0.5, 0.75: R(2) - R(0) = 0.75, R(2) - R(1) = 0.25
    assert f["drops"] == pytest.approx([0.5, 0.25]) and f["since"] == pytest.approx(np.array([[0.75, 0.25]]))
    g = laws.mpl_features(lrs, 0, 1.0, steps, decay=0.5)  # the same in LR units: S_u(2) = 0.75 and 0.25
    assert g["area"] == pytest.approx([0.75]) and g["since"] == pytest.approx(np.array([[0.75, 0.25]]))


def test_before_any_update_the_power_law_of_progress_is_infinite():
    p = dict(A=2.0, alpha=0.5, F=0.1, eta_c=2.0, q=0.5, x0=1.0)
    with np.errstate(divide="ignore"):
        losses = laws.floor_loss(p, laws.floor_features(LRS, WARMUP, PEAK, np.array([0, 3])))
    assert np.isinf(losses[0]) and losses[1] == pytest.approx(1.383908, abs=2e-6)  # tau(0) = 0; step 3 as above


def test_the_fit_starts_from_the_grid_with_a_meeting_the_first_point():
    curves = [(dict(area=np.array([2.0, 4.0])), np.array([3.0, 2.0])),
              (dict(area=np.array([3.0, 5.0])), np.array([2.8, 2.5]))]
    thetas = list(laws.starts("tissue", curves, {}))
    assert len(thetas) == 3 * 3 * 4  # L0 at 0.3, 0.6, 0.9 of the lowest loss (2.0); alpha 3 values; C 4
    # the first: L0 = 0.6, alpha = 0.2, C = 0.01, and A with L0 + A S1^-alpha = 3.0 at the curves' first area, 2.0
    assert thetas[0] == pytest.approx([0.6, math.log(2.4 * 2.0**0.2), math.log(0.2), math.log(0.01)])
    assert thetas[12][0] == pytest.approx(1.2) and thetas[24][0] == pytest.approx(1.8)  # the next levels of L0
    assert thetas[-1] == pytest.approx([1.8, math.log(1.2 * 2.0), math.log(1.0), math.log(10)])
    floor = list(laws.starts("floor", [(dict(steps=np.array([100, 200])), np.array([3.0, 2.0]))], dict(eta_c=1e6)))
    assert len(floor) == 2 * 2 * 2 * 2  # eta_c fixed: alpha, F, q, x0
    assert floor[0] == pytest.approx([math.log(3.0 * 100**0.2), math.log(0.2), math.log(0.03), math.log(0.1),
                                      math.log(3.0)])  # no L0: A meets the first point at step 100


def test_parameters_are_fitted_as_logarithms_but_l0_and_the_fixed_ones_as_given():
    theta = np.array([0.8, math.log(0.9), math.log(0.45), math.log(0.4)])  # tissue: L0, A, alpha, C
    assert laws.to_params("tissue", theta, {}) == pytest.approx(dict(L0=0.8, A=0.9, alpha=0.45, C=0.4))
    assert laws.to_params("tissue", theta[:3], dict(alpha=7.0)) == pytest.approx(dict(L0=0.8, A=0.9, alpha=7.0,
                                                                                       C=0.45))


def test_the_objective_of_the_law_s_own_curve_is_zero_below_a_loss_of_one_and_wild_parameters_get_1e30():
    params = dict(A=0.5, alpha=0.2, F=0.05, eta_c=4e-3, q=0.3, x0=8.0)  # val losses of 0.18 to 0.33
    run = synthetic_run("floor", params, schedule="wsd")
    curves = [(laws.run_features("floor", run["cfg"], run["steps"]), run["losses"])]
    assert run["losses"].max() < 0.4
    theta = np.log([params[n] for n in laws.LAWS["floor"]["names"]])
    assert laws.objective(theta, "floor", curves, {}) < 1e-20  # the law's own parameters: its own curve
    wild = theta.copy()
    wild[3] = -400.0  # eta_c = e^-400: the floor's (peak / eta_c)^2 overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and silently: no overflow warning
        assert laws.objective(wild, "floor", curves, {}) == 1e30


def test_a_fit_reports_its_objective_and_reads_steps_given_as_floats():
    params = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)
    runs = [synthetic_run("floor", params, schedule="wsd"), synthetic_run("floor", params, schedule="cosine")]
    runs[1]["losses"] = runs[1]["losses"] * 1.002  # a curve the law cannot meet exactly: an objective above 0
    fit = laws.fit_law("floor", runs, fixed=dict(eta_c=4e-3))
    curves = [(laws.run_features("floor", r["cfg"], r["steps"]), r["losses"]) for r in runs]
    theta = np.log([fit["params"][n] for n in laws.LAWS["floor"]["names"] if n != "eta_c"])
    assert fit["objective"] == pytest.approx(laws.objective(theta, "floor", curves, dict(eta_c=4e-3)), rel=1e-9)
    assert 0 < fit["objective"] < scaling.huber(np.array([math.log(1.002)]))[0][0]
    as_floats = laws.predict_losses(fit, runs[0]["cfg"], [200.0, 400.0])  # e.g. read from JSON
    assert as_floats.tolist() == laws.predict_losses(fit, runs[0]["cfg"], [200, 400]).tolist()


@pytest.mark.parametrize("success, nit, converged", [(True, 3, True), (True, 1, True), (True, 0, False),
                                                     (False, 3, False)])
def test_a_fit_is_converged_only_where_bfgs_says_so_after_leaving_its_start(monkeypatch, success, nit, converged):
    class Result:  # what scipy's minimize returns; nit = 0: it never left its start
        def __init__(self, theta):
            self.x, self.fun, self.success, self.nit, self.message = theta, 0.5, success, nit, f"stopped after {nit}"
    monkeypatch.setattr(laws, "minimize", lambda objective, theta, **kwargs: Result(theta))
    params = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)
    fit = laws.fit_law("floor", [synthetic_run("floor", params, schedule="wsd")])
    assert fit["converged"] is converged and fit["message"] == f"stopped after {nit}"


def test_a_real_fit_says_it_converged():
    params = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)
    runs = [synthetic_run("floor", params, schedule="wsd"), synthetic_run("floor", params, schedule="cosine")]
    fit = laws.fit_law("floor", runs, fixed=dict(eta_c=4e-3))
    assert fit["converged"] is True and fit["message"] == "Optimization terminated successfully."
