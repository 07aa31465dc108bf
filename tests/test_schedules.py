"""Tests for schedules.py: values at the phase boundaries, every cooldown shape against its formula
(expected values written out independently here), one ScheduleError per kind of bad setting, and the convex
last-iterate bound against its closed forms and, with the paper's schedules (docs/model.md), against its sums written out."""
import math

import numpy as np
import pytest

from schedules import (ScheduleError, bound_predictions, cooldown_multiplier, cooldown_start, cosine,
                       last_iterate_bound, learning_rate, linear, lr_multiplier, lr_multipliers, parse_cooldown_shape,
                       resolve_cooldown_steps, validate_schedule, warmup, wsd)

N, W = 1000, 100  # a run of 1000 steps with 100 warmup steps
WSD = dict(schedule="wsd", max_steps=N, warmup_steps=W, cooldown_frac=0.2)  # cooldown from step 800


def curve(**settings):
    return np.array([lr_multiplier(s, **settings) for s in range(settings["max_steps"] + 1)])


# ---------------------------------------------------------------------------------------------------------
# warmup and phase boundaries


def test_warmup_values():
    assert warmup(0, W) == pytest.approx(0.01)
    assert warmup(50, W) == pytest.approx(0.5 + 0.5 / 100)  # halfway: 0.505
    assert warmup(99, W) == pytest.approx(0.99 + 0.01 / 100)
    assert warmup(W, W) == 1.0 and warmup(5000, W) == 1.0
    assert warmup(0, 0) == 1.0  # no warmup at all


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "linear", "constant"])
def test_every_schedule_warms_up_identically(schedule):
    settings = dict(WSD, schedule=schedule)
    assert lr_multiplier(0, **settings) == pytest.approx(0.01)
    assert lr_multiplier(W, **settings) == 1.0
    ramp = curve(**settings)[: W + 1]
    assert np.all(np.diff(ramp) > 0)


def test_wsd_boundaries():
    lr = curve(**WSD)
    assert np.all(lr[W:801] == 1.0)  # stable phase, including the first cooldown step (t = 0)
    assert lr[801] < 1.0
    assert lr[900] == pytest.approx(0.5)  # linear, halfway through the cooldown
    assert lr[N - 1] == pytest.approx(1 / 200)  # the last update still has a small LR
    assert lr[N] == 0.0
    assert np.all(np.diff(lr[800:]) < 0)  # strictly decreasing through the cooldown
    assert lr_multiplier(N + 50, **WSD) == 0.0  # past the end: stays at the final value


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine", "square", "mirror_cosine", "1-x^0.7", "1-x^3"])
def test_every_shape_decreases_from_one_to_final(shape):
    lr = curve(**WSD, cooldown_shape=shape, final_lr_frac=0.1)
    assert lr[800] == 1.0
    assert lr[N] == pytest.approx(0.1)
    assert np.all(np.diff(lr[800:]) < 0)


def test_cooldown_can_start_where_warmup_ends():
    settings = dict(schedule="wsd", max_steps=N, warmup_steps=W, cooldown_steps=N - W)
    lr = curve(**settings)
    assert lr[W - 1] < 1.0 and lr[W] == 1.0 and lr[W + 1] < 1.0
    # a full-length linear cooldown is the linear schedule
    np.testing.assert_allclose(lr, curve(schedule="linear", max_steps=N, warmup_steps=W))


# ---------------------------------------------------------------------------------------------------------
# cooldown shapes against their formulas

T = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
EXPECTED_DECAY = {  # d(t) for each shape, multiplier f + (1-f)·d(t)
    "linear": 1 - T,
    "1-sqrt": 1 - np.sqrt(T),
    "cosine": 0.5 * (1 + np.cos(np.pi * T)),
    "square": 1 - T**2,
    "mirror_cosine": 2 * (1 - T) - 0.5 * (1 + np.cos(np.pi * T)),
    "1-x^0.7": 1 - T**0.7,
    "1-x^1.5": 1 - T**1.5,
}


@pytest.mark.parametrize("shape", sorted(EXPECTED_DECAY))
@pytest.mark.parametrize("final", [0.0, 0.1, 0.5])
def test_shape_formula(shape, final):
    got = [cooldown_multiplier(t, shape, final) for t in T]
    np.testing.assert_allclose(got, final + (1 - final) * EXPECTED_DECAY[shape], rtol=0, atol=1e-12)


def test_shape_hand_values():
    assert cooldown_multiplier(0.25, "1-sqrt", 0.0) == pytest.approx(0.5)
    assert cooldown_multiplier(0.5, "square", 0.0) == pytest.approx(0.75)
    assert cooldown_multiplier(0.5, "cosine", 0.1) == pytest.approx(0.55)
    assert cooldown_multiplier(0.5, "mirror_cosine", 0.0) == pytest.approx(0.5)
    assert cooldown_multiplier(0.25, "mirror_cosine", 0.0) == pytest.approx(1.5 - 0.5 * (1 + math.sqrt(0.5)))


@pytest.mark.parametrize("final", [0.0, 0.2])
def test_mirror_cosine_is_twice_linear_minus_cosine(final):
    for t in np.linspace(0, 1, 11):
        expected = 2 * cooldown_multiplier(t, "linear", final) - cooldown_multiplier(t, "cosine", final)
        assert cooldown_multiplier(t, "mirror_cosine", final) == pytest.approx(expected)


def test_power_shapes_match_named_ones():
    for t in np.linspace(0, 1, 11):
        assert cooldown_multiplier(t, "1-x^0.5", 0.0) == pytest.approx(cooldown_multiplier(t, "1-sqrt", 0.0))
        assert cooldown_multiplier(t, "1-x^1", 0.0) == pytest.approx(cooldown_multiplier(t, "linear", 0.0))
        assert cooldown_multiplier(t, "1-x^2", 0.0) == pytest.approx(cooldown_multiplier(t, "square", 0.0))
    # and through the whole wsd schedule
    np.testing.assert_allclose(curve(**WSD, cooldown_shape="1-x^0.5"), curve(**WSD, cooldown_shape="1-sqrt"))


def test_wsd_uses_cooldown_progress():
    # cooldown of 200 steps from 800: step 850 is t = 0.25
    assert wsd(850, N, W, 200, "1-sqrt", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(850, **WSD, cooldown_shape="1-sqrt") == pytest.approx(0.5)
    assert lr_multiplier(850, **WSD, cooldown_shape="1-sqrt", final_lr_frac=0.2) == pytest.approx(0.6)


# ---------------------------------------------------------------------------------------------------------
# cosine, linear, constant


def test_cosine_values():
    settings = dict(schedule="cosine", max_steps=N, warmup_steps=W)
    assert lr_multiplier(550, **settings) == pytest.approx(0.55)  # halfway: 0.1 + 0.9 * 0.5
    assert lr_multiplier(325, **settings) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(N, **settings) == pytest.approx(0.1)
    assert lr_multiplier(N + 500, **settings) == pytest.approx(0.1)
    assert lr_multiplier(N, **settings, final_lr_frac=0.0) == pytest.approx(0.0)
    assert np.all(np.diff(curve(**settings)[W:]) < 0)


def test_cosine_shorter_cycle_stays_at_final():
    settings = dict(schedule="cosine", max_steps=N, warmup_steps=W, cycle_steps=500)
    assert lr_multiplier(300, **settings) == pytest.approx(0.55)  # halfway through steps 100..500
    lr = curve(**settings)
    np.testing.assert_allclose(lr[500:], 0.1)
    assert cosine(2000, N, W, 0.1, cycle_steps=500) == pytest.approx(0.1)


def test_cosine_longer_cycle_is_stopped_early():
    settings = dict(schedule="cosine", max_steps=N, warmup_steps=W, cycle_steps=1900)
    assert lr_multiplier(N, **settings) == pytest.approx(0.55)  # the run ends halfway through its cycle
    # it is the first part of the 1900-step cosine
    long_run = dict(settings, max_steps=1900, cycle_steps=None)
    np.testing.assert_allclose(curve(**settings), curve(**long_run)[: N + 1])


def test_each_schedule_function_ends_at_its_default_final_value():
    assert cosine(N, N, W) == pytest.approx(0.1) and linear(N, N, W) == 0.0 and wsd(N, N, W, 200, "linear") == 0.0


def test_linear_and_constant():
    assert linear(550, N, W, 0.0) == pytest.approx(0.5)
    assert lr_multiplier(N + 50, schedule="linear", max_steps=N, warmup_steps=W) == 0.0  # past the end: stays at f
    assert lr_multiplier(550, schedule="linear", max_steps=N, warmup_steps=W, final_lr_frac=0.2) == \
        pytest.approx(0.6)
    assert lr_multiplier(N, schedule="linear", max_steps=N, warmup_steps=W) == 0.0
    lr = curve(schedule="constant", max_steps=N, warmup_steps=W, final_lr_frac=0.3)  # f is ignored
    assert np.all(lr[W:] == 1.0)


# ---------------------------------------------------------------------------------------------------------
# cooldown length


def test_cooldown_length_from_frac_or_steps():
    assert resolve_cooldown_steps(1000, 0.2, None) == 200
    assert resolve_cooldown_steps(100, 0.57, None) == 57  # 0.57 * 100 = 56.99999999999999 in floats
    assert resolve_cooldown_steps(1001, 0.2, None) == 200  # 200.2
    assert resolve_cooldown_steps(1003, 0.2, None) == 201  # 200.6
    assert resolve_cooldown_steps(1005, 0.2, None) == 201  # 201.0
    assert resolve_cooldown_steps(1000, 0.2, 50) == 50  # explicit steps win over the fraction
    by_steps = curve(schedule="wsd", max_steps=N, warmup_steps=W, cooldown_frac=0.5, cooldown_steps=200)
    np.testing.assert_array_equal(by_steps, curve(**WSD))
    assert lr_multiplier(899, schedule="wsd", max_steps=N, cooldown_steps=100) == 1.0
    assert lr_multiplier(950, schedule="wsd", max_steps=N, cooldown_steps=100) == pytest.approx(0.5)


def test_full_run_cooldown_without_warmup():
    lr = curve(schedule="wsd", max_steps=N, cooldown_frac=1.0)
    assert lr[0] == 1.0 and lr[N] == 0.0
    assert lr[500] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------
# invalid settings

BAD_SETTINGS = [
    (dict(schedule="cosin"), r"unknown schedule 'cosin' \(did you mean 'cosine'\?\)"),
    (dict(schedule="lienar"), r"unknown schedule 'lienar' \(did you mean 'linear'\?\)"),
    (dict(schedule="step"), r"^unknown schedule 'step'; expected one of cosine, wsd, linear, constant$"),  # no hint
    (dict(schedule="wsd", cooldown_shape="1-sqr"), r"unknown cooldown_shape '1-sqr' \(did you mean '1-sqrt'\?\)"),
    (dict(schedule="wsd", cooldown_shape="exp"), r"^unknown cooldown_shape 'exp'; expected one of linear, 1-sqrt, "
                                                 r"cosine, square, mirror_cosine, 1-x\^A with A > 0, e.g. '1-x\^0.7'$"),
    (dict(schedule="wsd", cooldown_shape="1-x^"), r"unknown cooldown_shape '1-x\^'"),
    (dict(schedule="wsd", cooldown_shape="1-x^abc"), r"exponent A in '1-x\^A' must be a positive number"),
    (dict(schedule="wsd", cooldown_shape="1-x^-1"), r"exponent A in '1-x\^A' must be a positive number"),
    (dict(schedule="wsd", cooldown_shape="1-x^0"), r"exponent A in '1-x\^A' must be a positive number"),
    (dict(schedule="wsd", cooldown_shape="1-x^nan"), r"exponent A in '1-x\^A' must be a positive number"),
    (dict(schedule="wsd", cooldown_shape="1-x^inf"), r"exponent A in '1-x\^A' must be a positive number"),
    (dict(schedule="wsd", cooldown_shape=None), r"cooldown_shape must be a string"),
    (dict(schedule="wsd", cooldown_shape=["linear"]), r"cooldown_shape must be a string"),
    (dict(schedule="wsd", max_steps=0), r"max_steps must be >= 1, got 0"),
    (dict(schedule="wsd", max_steps=1e3), r"max_steps must be a whole number of steps, got 1000.0"),
    (dict(schedule="wsd", warmup_steps=-1), r"warmup_steps must be non-negative, got -1"),
    (dict(schedule="wsd", cooldown_steps=-5), r"cooldown_steps must be non-negative, got -5"),
    (dict(schedule="cosine", cycle_steps=-1), r"cycle_steps must be non-negative, got -1"),
    (dict(schedule="constant", warmup_steps=1001), r"warmup_steps=1001 is longer than the run \(max_steps=1000\)"),
    (dict(schedule="cosine", warmup_steps=1000), r"warmup_steps=1000 equals max_steps=1000: no steps are left"),
    (dict(schedule="linear", warmup_steps=1000), r"warmup_steps=1000 equals max_steps=1000: no steps are left for "
                                                 r"the linear decay$"),
    (dict(schedule="cosine", warmup_steps=100, cycle_steps=100), r"cycle_steps=100 must be longer than warmup"),
    (dict(schedule="wsd", cooldown_steps=1200),
     r"cooldown_steps=1200: the cooldown is longer than the run \(max_steps=1000\)"),
    (dict(schedule="wsd", warmup_steps=300, cooldown_steps=800),
     r"cooldown_steps=800: the cooldown would start at step 200, inside the warmup \(warmup_steps=300\); "
     r"it needs cooldown <= max_steps - warmup_steps = 700"),
    (dict(schedule="wsd", warmup_steps=300, cooldown_frac=0.8),
     r"cooldown_frac=0.8 of max_steps=1000 = 800 steps: the cooldown would start at step 200, inside the warmup"),
    (dict(schedule="wsd", max_steps=2, cooldown_frac=0.2), r"= 0 steps: the wsd cooldown needs at least 1 step"),
    (dict(schedule="wsd", cooldown_steps=0), r"cooldown_steps=0: the wsd cooldown needs at least 1 step"),
    (dict(schedule="wsd", final_lr_frac=1.5), r"final_lr_frac must be in \[0, 1\], got 1.5"),
    (dict(schedule="cosine", final_lr_frac=-0.1), r"final_lr_frac must be in \[0, 1\], got -0.1"),
    (dict(schedule="wsd", final_lr_frac="0.1"), r"final_lr_frac must be a number, got '0.1'"),
    (dict(schedule="wsd", cooldown_frac="0.2"), r"^cooldown_frac must be a number, got '0.2'$"),
    (dict(schedule="wsd", cooldown_frac=0.0), r"cooldown_frac must be in \(0, 1\], got 0.0"),
    (dict(schedule="wsd", cooldown_frac=1.2), r"cooldown_frac must be in \(0, 1\], got 1.2"),
]


@pytest.mark.parametrize("overrides, message", BAD_SETTINGS)
def test_invalid_settings(overrides, message):
    settings = {"max_steps": N, **overrides}
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(**settings)
    with pytest.raises(ScheduleError, match=message):  # the per-step call refuses them too
        lr_multiplier(0, **settings)


def test_invalid_step_and_progress():
    with pytest.raises(ScheduleError, match=r"step must be non-negative, got -1"):
        lr_multiplier(-1, **WSD)
    with pytest.raises(ScheduleError, match=r"cooldown progress must be in \[0, 1\], got 1.5"):
        cooldown_multiplier(1.5, "linear", 0.0)


def test_schedule_error_is_a_value_error_and_valid_settings_pass():
    assert issubclass(ScheduleError, ValueError)
    validate_schedule(**WSD, cooldown_shape="1-x^0.7", final_lr_frac=0.1)
    validate_schedule(schedule="cosine", max_steps=1)  # no warmup by default: the one step decays
    validate_schedule(schedule="wsd", max_steps=10, cooldown_steps=1, final_lr_frac=1.0)  # the shortest cooldown
    validate_schedule(schedule="wsd", max_steps=10, cooldown_frac=0.05)  # 0.5 steps round up to 1
    validate_schedule(schedule="cosine", max_steps=N, warmup_steps=W, cycle_steps=2 * N)
    assert parse_cooldown_shape("1-x^0.7") is parse_cooldown_shape("1-x^0.7")  # parsed once, then cached


# ---------------------------------------------------------------------------------------------------------
# the convex last-iterate bound (Schaipp, Hägele et al. 2025)


def test_bound_of_a_constant_schedule_by_hand():
    # T = 4, eta = 1: sums 4 and 4; t3 = ½ (1/3 · 4/4 + 1/2 · 3/3 + 1/1 · 2/2) G² = 11/12 G²
    b = last_iterate_bound([1, 1, 1, 1], D=2.0, G=3.0)
    assert (b["t1"], b["t2"], b["t3"]) == pytest.approx((4 / 8, 9 / 2, 11 / 12 * 9), rel=1e-14)
    assert b["bound"] == pytest.approx(0.5 + 4.5 + 8.25, rel=1e-14)
    assert (b["lr"], b["rate"]) == pytest.approx((math.sqrt(0.5 / 12.75), 2 * math.sqrt(0.5 * 12.75)), rel=1e-14)
    # any T: t1 = D²/(2T), t2 = G²/2, t3 = G² H_{T-1} / 2 (H the harmonic number)
    b = last_iterate_bound(np.ones(1000))
    assert (b["t1"], b["t2"], b["t3"]) == pytest.approx((1 / 2000, 1 / 2, sum(1 / j for j in range(1, 1000)) / 2))


def test_bound_of_a_linear_schedule_by_hand():
    # eta = 3, 2, 1: sums 6 and 14; t3 = ½ (3/3 · 14/6 + 2/1 · 5/3) G² = 17/6 G²
    b = last_iterate_bound([3, 2, 1])
    assert (b["t1"], b["t2"], b["t3"]) == pytest.approx((1 / 12, 14 / 12, 17 / 6), rel=1e-14)
    # eta_t = T + 1 - t: t1 = 1/(T(T+1)), t2 = (2T+1)/6, t3 = (2(T-1) + 3 H_{T-1}) / 3
    T = 500
    b = last_iterate_bound(np.arange(T, 0, -1))
    harmonic = sum(1 / j for j in range(1, T))
    assert (b["t1"], b["t2"], b["t3"]) == pytest.approx((1 / (T * (T + 1)), (2 * T + 1) / 6,
                                                         (2 * (T - 1) + 3 * harmonic) / 3), rel=1e-12)


def test_the_best_lr_minimises_the_bound():
    multipliers = np.array([lr_multiplier(s, **WSD, cooldown_shape="1-sqrt") for s in range(N)])
    best = last_iterate_bound(multipliers, D=1.5, G=0.7)
    grid = best["lr"] * np.exp(np.linspace(-1, 1, 201))
    bounds = [last_iterate_bound(lr * multipliers, D=1.5, G=0.7)["bound"] for lr in grid]
    assert np.argmin(bounds) == 100  # the grid's middle point is lr itself
    assert min(bounds) == pytest.approx(best["rate"], rel=1e-12) and bounds[99] > bounds[100] < bounds[101]
    # the best base LR scales inversely with the multipliers, and as D / G
    assert last_iterate_bound(4 * multipliers, D=1.5, G=0.7)["lr"] == pytest.approx(best["lr"] / 4, rel=1e-12)
    assert last_iterate_bound(multipliers, D=3.0, G=0.7)["lr"] == pytest.approx(2 * best["lr"], rel=1e-12)


def paper_multiplier(step, n, w, schedule, shape="linear"):
    """The paper's formulas (docs/model.md), written out again: warmup s/W + (1 - s/W)/100; cosine f + (1-f)·0.5·(1 + cos(π·t))
    with f = 0.1; wsd 1 until its 20 % cooldown, then d(t) of the shape (f = 0)."""
    if step < w:
        return step / w + (1 - step / w) / 100
    if schedule == "cosine":
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - w) / (n - w)))
    start = n - round(0.2 * n)
    t = max(step - start, 0) / (n - start)
    return {"linear": 1 - t, "1-sqrt": 1 - math.sqrt(t), "cosine": 0.5 * (1 + math.cos(math.pi * t)),
            "square": 1 - t * t, "1-x^0.3": 1 - t**0.3, "1-x^0.7": 1 - t**0.7}[shape]


def bound_by_hand(eta):
    """(best lr, rate, t1, t2 + t3) of the bound as plain sums (D = G = 1): t1 = 1/(2 Σ η), t2 = Σ η² / (2 Σ η),
    t3 = ½ Σ_{k<T} (η_k / Σ_{t>k} η_t) (Σ_{t≥k} η_t² / Σ_{t≥k} η_t)."""
    t1, t2 = 1 / (2 * sum(eta)), sum(e * e for e in eta) / (2 * sum(eta))
    t3 = 0.5 * sum(eta[k] / sum(eta[k + 1:]) * sum(e * e for e in eta[k:]) / sum(eta[k:]) for k in range(len(eta) - 1))
    return math.sqrt(t1 / (t2 + t3)), 2 * math.sqrt(t1 * (t2 + t3)), t1, t2 + t3


@pytest.mark.parametrize("w, settings", [(6, dict(warmup_steps=6)), (30, {})])  # 30: the cpu scale's, the default
def test_bound_predictions_are_the_formulas_by_hand(w, settings):
    n = 60
    bound = {shape: bound_by_hand([paper_multiplier(s, n, w, "wsd", shape) for s in range(n)])
             for shape in ("linear", "1-sqrt", "cosine", "square", "1-x^0.3", "1-x^0.7")}
    cosine_lr = bound_by_hand([paper_multiplier(s, n, w, "cosine") for s in range(n)])[0]
    lines = bound_predictions(lengths=(n,), **settings)
    assert lines[0] == (f"60 steps: best peak LR of wsd / cosine: linear {bound['linear'][0] / cosine_lr:.3f}, "
                        f"1-sqrt {bound['1-sqrt'][0] / cosine_lr:.3f}")
    linear_lr, linear_rate = bound["linear"][:2]
    ranked = sorted(bound, key=lambda shape: bound[shape][1])
    assert ranked[0] == "1-sqrt"  # the bound ranks 1-sqrt first, as C4 measures
    assert lines[1] == "60 steps: 20 % cooldowns by bound, best first (vs linear; at linear's LR): " + ", ".join(
        f"{shape} {bound[shape][1] / linear_rate - 1:+.2%} "
        f"({(bound[shape][2] / linear_lr + bound[shape][3] * linear_lr) / linear_rate - 1:+.2%})" for shape in ranked)


def test_cooldown_start_and_the_learning_rate_of_a_config():
    cfg = dict(WSD, schedule="wsd", cooldown_steps=None, cooldown_shape="1-sqrt", final_lr_frac=None,
               cycle_steps=None, optimizer="adamw", lr=0.002)
    assert cooldown_start(cfg) == 800 and cooldown_start(dict(cfg, cooldown_steps=50)) == 950
    assert cooldown_start(dict(cfg, schedule="cosine")) is None
    assert learning_rate(cfg, 50) == 0.002 * (0.5 + 0.5 / 100) and learning_rate(cfg, 850) == 0.002 * 0.5
    assert learning_rate(dict(cfg, cooldown_frac=0.1), 850) == 0.002  # every setting is passed on: 850 < 900
    assert learning_rate(dict(cfg, optimizer="adamw_schedulefree"), 850) == 0.002  # its own warmup, no schedule


@pytest.mark.parametrize("multipliers", [[], [1.0, -0.1, 1.0], [1.0, 0.0], [1.0, 1.0, 0.0], [1.0, math.nan]])
def test_bound_refuses_multipliers_it_cannot_bound(multipliers):
    with pytest.raises(ScheduleError, match="^the bound needs finite multipliers >= 0 whose last is positive$"):
        last_iterate_bound(multipliers)


def test_a_zero_multiplier_before_the_last_is_bounded():
    # eta = 1, 0, 1: sums 2 and 2; t3 = ½ (1/1 · 2/2 + 0/1 · 1/1) = ½
    assert last_iterate_bound([1.0, 0.0, 1.0])["t3"] == 0.5


def test_a_whole_schedule_at_once_takes_the_defaults_of_lr_multiplier():
    # wsd over 10 steps, nothing else said: no warmup, a linear cooldown of 20 % (steps 8-10) to 0
    assert lr_multipliers(range(11), schedule="wsd", max_steps=10) == [1.0] * 9 + [0.5, 0.0]
    assert lr_multipliers([], schedule="wsd", max_steps=10) == []  # no step: nothing to check or compute
    with pytest.raises(ScheduleError, match=r"^step must be non-negative, got -1$"):
        lr_multipliers([3, -1], schedule="wsd", max_steps=10)
