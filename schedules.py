"""
Learning-rate schedules of Hägele et al. 2024, as pure functions: step -> multiplier of the peak LR.

    from schedules import validate_schedule, lr_multiplier
    settings = dict(schedule="wsd", max_steps=1000, warmup_steps=100, cooldown_frac=0.2, cooldown_shape="1-sqrt")
    validate_schedule(**settings)                   # once, at start-up: ScheduleError (a ValueError) if invalid
    lr = peak_lr * lr_multiplier(step, **settings)  # every step
    python schedules.py                             # the convex bound's predictions for the cpu scale (C3, C4)

A schedule is a function of the step and the config only, so resuming or branching a run recomputes it and
nothing about it needs saving. Steps count optimizer updates from 0; a run of `max_steps` (N) trains steps
0 .. N-1, and each schedule reaches its final value f exactly at step N (the state after the last update).
So the last update still uses a small non-zero LR even when f = 0 (no update is wasted on an LR of 0).

The phases (s = step, W = warmup_steps, f = final_lr_frac):

- warmup, s < W:  s/W + (1 - s/W)/100, from 1 % of the peak at s = 0 to 100 % at s = W.
- constant:       1.0 after the warmup.
- cosine:         f + (1-f)·0.5·(1 + cos(π·t)), t = (s-W)/(C-W), C = cycle_steps or N, default f = 0.1.
                  Past its cycle (C < N) it stays at f; with C > N the run simply stops before the cycle ends.
                  Both are needed to reproduce the paper's Fig. 1 (claim C1).
- linear:         f + (1-f)·(1-t), t = (s-W)/(N-W), default f = 0.
- wsd:            (warmup, stable, decay) 1.0 until N - C, then the cooldown f + (1-f)·d(t) with
                  t = (s - (N-C))/C, default f = 0, where the cooldown length C is `cooldown_steps`, or else
                  `cooldown_frac`·N rounded half up to a whole step (see `resolve_cooldown_steps`).
  The cooldown shapes d(t), each falling from 1 at t = 0 to 0 at t = 1 (`cooldown_shape`):
      linear 1-t;  1-sqrt 1-√t;  cosine 0.5·(1+cos πt);  square 1-t²;
      mirror_cosine 2·(1-t) - 0.5·(1+cos πt)  (= 2·linear - cosine, also when written with f);
      1-x^A 1-t^A for any A > 0 written in the name, e.g. '1-x^0.7' ('1-x^0.5' is 1-sqrt, '1-x^2' square).
  The cosine and linear schedules are this same decay (shapes 'cosine', 'linear') stretched over all of the
  steps after the warmup, so each formula is written once, in `cooldown_multiplier`.

Where warmup and cooldown meet: the phases never overlap. The cooldown must start at or after the end of
the warmup (N - C >= W), otherwise `validate_schedule` says so; we never multiply a warmup by a decay.
When they touch (N - C = W) the warmup reaches 1.0 at s = W and the cooldown starts from 1.0 at that
same step, so the multiplier is continuous; a wsd run with C = N - W and shape 'linear' is then the
linear schedule.

`last_iterate_bound` is the convex-optimisation bound of Schaipp, Hägele et al. 2025 for any schedule's
multipliers, with its best base LR; `bound_predictions` (the command above) compares schedules with it.
"""

import difflib
import functools
import math
import re
import sys

import numpy as np

SCHEDULES = ("cosine", "wsd", "linear", "constant")
COOLDOWN_SHAPES = ("linear", "1-sqrt", "cosine", "square", "mirror_cosine", "1-x^A")
DEFAULT_FINAL_LR_FRAC = {"cosine": 0.1, "wsd": 0.0, "linear": 0.0}  # final_lr_frac=None means these
WARMUP_START = 0.01  # the warmup starts at 1 % of the peak LR, as in the paper


class ScheduleError(ValueError):
    """Invalid schedule settings; the message is one line meant for the user."""


# ----------------------------------------------------------------------------------------------------------
# the pieces


def warmup(step, warmup_steps):
    """Linear warmup from 1 % of the peak at step 0 to 100 % at step `warmup_steps`; 1.0 from then on."""
    if step >= warmup_steps:
        return 1.0
    progress = step / warmup_steps
    return progress + (1.0 - progress) * WARMUP_START


def _power_decay(exponent):
    return lambda t: 1.0 - t**exponent


# The decay d(t) of each named shape: 1 at t = 0, 0 at t = 1; the multiplier is f + (1-f)·d(t).
_NAMED_SHAPES = {
    "linear": lambda t: 1.0 - t,
    "1-sqrt": lambda t: 1.0 - math.sqrt(t),
    "cosine": lambda t: 0.5 * (1.0 + math.cos(math.pi * t)),
    "square": lambda t: 1.0 - t * t,
    "mirror_cosine": lambda t: 2.0 * (1.0 - t) - 0.5 * (1.0 + math.cos(math.pi * t)),
}
_POWER_SHAPE = re.compile(r"1-x\^(.+)")


def parse_cooldown_shape(shape):
    """The decay function d(t) (1 at t = 0, 0 at t = 1) named by `shape`; ScheduleError if there is none."""
    if not isinstance(shape, str):  # checked before the cache, which needs a hashable key
        raise ScheduleError(f"cooldown_shape must be a string such as 'linear', got {shape!r}")
    return _parse_shape_name(shape)


def _shape_from_name(shape):
    if shape in _NAMED_SHAPES:
        return _NAMED_SHAPES[shape]
    power = _POWER_SHAPE.fullmatch(shape)
    if power:
        try:
            exponent = float(power.group(1))
        except ValueError:
            exponent = math.nan
        if not 0.0 < exponent < math.inf:  # also rejects nan
            raise ScheduleError(f"cooldown_shape '{shape}': the exponent A in '1-x^A' must be a positive "
                                f"number, e.g. '1-x^0.7'")
        return _power_decay(exponent)
    close = difflib.get_close_matches(shape, list(_NAMED_SHAPES), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ScheduleError(f"unknown cooldown_shape '{shape}'{hint}; expected one of {', '.join(COOLDOWN_SHAPES)} "
                        f"with A > 0, e.g. '1-x^0.7'")


# parsed once per distinct name, so the per-step call costs a dict lookup (cached apart from the function: the
# mutation run, mutmut, mutates undecorated functions only)
_parse_shape_name = functools.lru_cache(maxsize=None)(_shape_from_name)


def cooldown_multiplier(progress, shape, final_lr_frac):
    """The multiplier f + (1-f)·d(progress) at `progress` in [0, 1] through a decay of shape `shape`."""
    if not 0.0 <= progress <= 1.0:
        raise ScheduleError(f"cooldown progress must be in [0, 1], got {progress}")
    return final_lr_frac + (1.0 - final_lr_frac) * parse_cooldown_shape(shape)(progress)


def resolve_cooldown_steps(max_steps, cooldown_frac, cooldown_steps):
    """The cooldown length C in steps: `cooldown_steps` when it is not None (it takes precedence), otherwise
    `cooldown_frac * max_steps` rounded half up to a whole step (0.2 of 1001 -> 200, 0.2 of 1003 -> 201).

    Rounding half up, not truncation, because fractions are inexact in floating point: 0.57 * 100 is
    56.99999999999999, which int() would turn into 56.
    """
    if cooldown_steps is not None:
        return cooldown_steps
    return math.floor(cooldown_frac * max_steps + 0.5)


def cooldown_start(cfg):
    """The step a run's cooldown starts at (train.py evaluates there: the "before cooldown" loss); None without
    one (any schedule but wsd). cfg: a run's settings, as learning_rate takes them."""
    if cfg["schedule"] != "wsd":
        return None
    return cfg["max_steps"] - resolve_cooldown_steps(cfg["max_steps"], cfg["cooldown_frac"], cfg["cooldown_steps"])


# ----------------------------------------------------------------------------------------------------------
# the schedules


def constant(step, warmup_steps):
    """Warmup, then the peak LR for good."""
    return warmup(step, warmup_steps)


def cosine(step, max_steps, warmup_steps, final_lr_frac=0.1, cycle_steps=None):
    """Warmup, then a half cosine from 1 to `final_lr_frac` over steps W .. C (C = cycle_steps or max_steps);
    f after C. `max_steps` only supplies the default cycle: a run may stop before its cycle ends."""
    if step < warmup_steps:
        return warmup(step, warmup_steps)
    cycle_end = max_steps if cycle_steps is None else cycle_steps
    progress = min(1.0, (step - warmup_steps) / (cycle_end - warmup_steps))
    return cooldown_multiplier(progress, "cosine", final_lr_frac)


def linear(step, max_steps, warmup_steps, final_lr_frac=0.0):
    """Warmup, then a straight line from 1 at the end of the warmup to `final_lr_frac` at `max_steps`."""
    if step < warmup_steps:
        return warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
    return cooldown_multiplier(progress, "linear", final_lr_frac)


def wsd(step, max_steps, warmup_steps, cooldown_steps, cooldown_shape, final_lr_frac=0.0):
    """Warmup, stable 1.0 until max_steps - cooldown_steps, then the cooldown of `cooldown_shape` to
    `final_lr_frac` at `max_steps` (and f after it)."""
    if step < warmup_steps:
        return warmup(step, warmup_steps)
    cooldown_start = max_steps - cooldown_steps
    if step < cooldown_start:
        return 1.0
    progress = min(1.0, (step - cooldown_start) / cooldown_steps)
    return cooldown_multiplier(progress, cooldown_shape, final_lr_frac)


# ----------------------------------------------------------------------------------------------------------
# the config interface: validation once at start-up, the multiplier at every step


def _check_steps(name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{name} must be a whole number of steps, got {value!r}")
    if value < minimum:
        kind = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ScheduleError(f"{name} must be {kind}, got {value}")


def _check_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScheduleError(f"{name} must be a number, got {value!r}")


def validate_schedule(*, schedule, max_steps, warmup_steps=0, cooldown_frac=0.2, cooldown_steps=None,
                      cooldown_shape="linear", final_lr_frac=None, cycle_steps=None):
    """Raise ScheduleError with one clear line if these settings do not describe a schedule.

    Every value given is checked, so a typo is caught even in a setting this schedule ignores (the cooldown
    settings matter only for 'wsd', cycle_steps only for 'cosine', final_lr_frac not for 'constant').
    """
    if schedule not in SCHEDULES:
        close = difflib.get_close_matches(str(schedule), SCHEDULES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ScheduleError(f"unknown schedule {schedule!r}{hint}; expected one of {', '.join(SCHEDULES)}")
    _check_steps("max_steps", max_steps, minimum=1)
    _check_steps("warmup_steps", warmup_steps)
    if cooldown_steps is not None:
        _check_steps("cooldown_steps", cooldown_steps)
    if cycle_steps is not None:
        _check_steps("cycle_steps", cycle_steps)
    _check_number("cooldown_frac", cooldown_frac)
    if not 0.0 < cooldown_frac <= 1.0:
        raise ScheduleError(f"cooldown_frac must be in (0, 1], got {cooldown_frac}")
    if final_lr_frac is not None:
        _check_number("final_lr_frac", final_lr_frac)
        if not 0.0 <= final_lr_frac <= 1.0:  # also rejects nan
            raise ScheduleError(f"final_lr_frac must be in [0, 1], got {final_lr_frac}")
    parse_cooldown_shape(cooldown_shape)

    if warmup_steps > max_steps:
        raise ScheduleError(f"warmup_steps={warmup_steps} is longer than the run (max_steps={max_steps})")
    if schedule in ("cosine", "linear") and warmup_steps == max_steps:
        raise ScheduleError(f"warmup_steps={warmup_steps} equals max_steps={max_steps}: "
                            f"no steps are left for the {schedule} decay")
    if schedule == "cosine" and cycle_steps is not None and cycle_steps <= warmup_steps:
        raise ScheduleError(f"cycle_steps={cycle_steps} must be longer than warmup_steps={warmup_steps}")
    if schedule == "wsd":
        cooldown = resolve_cooldown_steps(max_steps, cooldown_frac, cooldown_steps)
        source = (f"cooldown_steps={cooldown}" if cooldown_steps is not None
                  else f"cooldown_frac={cooldown_frac} of max_steps={max_steps} = {cooldown} steps")
        if cooldown < 1:
            raise ScheduleError(f"{source}: the wsd cooldown needs at least 1 step")
        if cooldown > max_steps:
            raise ScheduleError(f"{source}: the cooldown is longer than the run (max_steps={max_steps})")
        if max_steps - cooldown < warmup_steps:
            raise ScheduleError(f"{source}: the cooldown would start at step {max_steps - cooldown}, inside the "
                                f"warmup (warmup_steps={warmup_steps}); it needs cooldown <= "
                                f"max_steps - warmup_steps = {max_steps - warmup_steps}")


def lr_multiplier(step, *, schedule, max_steps, warmup_steps=0, cooldown_frac=0.2, cooldown_steps=None,
                  cooldown_shape="linear", final_lr_frac=None, cycle_steps=None):
    """The multiplier of the peak LR at `step` for these settings (see the module docstring).

    final_lr_frac=None means the schedule's default: cosine 0.1, wsd 0.0, linear 0.0.
    The settings are validated on every call (a few comparisons: microseconds, plain Python), so a bad
    config cannot silently yield a wrong LR; call `validate_schedule` at start-up to fail before training.
    """
    settings = dict(schedule=schedule, max_steps=max_steps, warmup_steps=warmup_steps, cooldown_frac=cooldown_frac,
                    cooldown_steps=cooldown_steps, cooldown_shape=cooldown_shape, final_lr_frac=final_lr_frac,
                    cycle_steps=cycle_steps)
    return lr_multipliers([step], **settings)[0]


def lr_multipliers(steps, **settings):
    """lr_multiplier at each of `steps`, the settings validated once: a run's whole schedule in one call."""
    validate_schedule(**settings)
    if min(steps, default=0) < 0:
        raise ScheduleError(f"step must be non-negative, got {min(steps)}")
    return [_multiplier(step, **settings) for step in steps]


def _multiplier(step, *, schedule, max_steps, warmup_steps=0, cooldown_frac=0.2, cooldown_steps=None,
                cooldown_shape="linear", final_lr_frac=None, cycle_steps=None):
    if schedule == "constant":
        return constant(step, warmup_steps)
    final = DEFAULT_FINAL_LR_FRAC[schedule] if final_lr_frac is None else final_lr_frac
    if schedule == "cosine":
        return cosine(step, max_steps, warmup_steps, final, cycle_steps)
    if schedule == "linear":
        return linear(step, max_steps, warmup_steps, final)
    cooldown = resolve_cooldown_steps(max_steps, cooldown_frac, cooldown_steps)
    return wsd(step, max_steps, warmup_steps, cooldown, cooldown_shape, final)


SCHEDULE_KEYS = ("schedule", "max_steps", "warmup_steps", "cooldown_frac", "cooldown_steps", "cooldown_shape",
                 "final_lr_frac", "cycle_steps")


def schedule_args(cfg):
    """The schedule's settings out of a train.py config, as lr_multiplier and validate_schedule take them."""
    return {key: cfg[key] for key in SCHEDULE_KEYS}


def learning_rate(cfg, step):
    """The LR of `step` for a train.py config. Schedule-free AdamW warms up and averages by itself: it gets the
    peak LR throughout."""
    return learning_rates(cfg, [step])[0]


def learning_rates(cfg, steps):
    """learning_rate at each of `steps` (the schedule validated once)."""
    if cfg["optimizer"] == "adamw_schedulefree":
        return [cfg["lr"]] * len(steps)
    return [cfg["lr"] * m for m in lr_multipliers(steps, **schedule_args(cfg))]


# ----------------------------------------------------------------------------------------------------------
# the convex-optimisation view: a last-iterate bound for any schedule (Schaipp, Hägele et al. 2025)


def last_iterate_bound(multipliers, D=1.0, G=1.0):
    """The bound on E f(x_T) - f* of SGD's last iterate (convex, G-Lipschitz, distance D to the optimum) with step
    sizes eta_t = multipliers[t-1], t = 1..T (a base LR of 1), of Schaipp, Hägele et al. 2025 (arXiv 2501.18965):

        t1 = D² / (2·Σ_t η_t),   t2 = G²·Σ_t η_t² / (2·Σ_t η_t),
        t3 = ½·Σ_{k<T} (η_k / Σ_{t>k} η_t) · (G²·Σ_{t≥k} η_t² / Σ_{t≥k} η_t).

    t1 falls as 1/γ and t2, t3 grow as γ when the base LR γ scales every η_t, so the bound's best base LR is
    lr = √(t1 / (t2 + t3)) and the bound there (the rate) is 2·√(t1·(t2 + t3)); the ratio of two schedules'
    lr and their ranking by rate do not depend on D or G. Returns dict(t1, t2, t3, bound, lr, rate)."""
    eta = np.asarray(multipliers, dtype=float)
    if eta.ndim != 1 or not len(eta) or not np.all(np.isfinite(eta)) or eta.min() < 0 or eta[-1] <= 0:
        raise ScheduleError("the bound needs finite multipliers >= 0 whose last is positive")
    suffix = np.cumsum(eta[::-1])[::-1]  # Σ_{t≥k} η_t, for every k
    suffix_sq = np.cumsum((eta**2)[::-1])[::-1]
    t1 = D**2 / (2 * suffix[0])
    t2 = G**2 * suffix_sq[0] / (2 * suffix[0])
    t3 = 0.5 * G**2 * np.sum(eta[:-1] / suffix[1:] * suffix_sq[:-1] / suffix[:-1])
    return dict(t1=t1, t2=t2, t3=t3, bound=t1 + t2 + t3, lr=math.sqrt(t1 / (t2 + t3)),
                rate=2 * math.sqrt(t1 * (t2 + t3)))


def schedule_bound(**settings):
    """last_iterate_bound of the multipliers lr_multiplier gives steps 0 .. max_steps - 1 (the updates of the run)."""
    return last_iterate_bound([lr_multiplier(s, **settings) for s in range(settings["max_steps"])])


def bound_predictions(lengths=(300, 600, 1200), warmup_steps=30,
                      shapes=("linear", "1-sqrt", "cosine", "square", "1-x^0.3", "1-x^0.7")):
    """Lines of text: what the bound predicts for the cpu scale's runs. (a) the best peak LR of wsd (20 % linear and
    1-sqrt cooldowns) over cosine's (to 10 %), as C3 measures it; (b) the 20 % cooldown shapes ranked by the bound
    at each one's best LR (the rate), relative to linear's, and in brackets the bound at linear's best LR: C4 runs
    every shape at one LR. Both are ratios of bounds, free of D and G."""
    lines = []
    for n in lengths:
        common = dict(max_steps=n, warmup_steps=warmup_steps)
        cosine_lr = schedule_bound(schedule="cosine", **common)["lr"]
        lines.append(f"{n} steps: best peak LR of wsd / cosine: " + ", ".join(
            f"{shape} {schedule_bound(schedule='wsd', cooldown_shape=shape, **common)['lr'] / cosine_lr:.3f}"
            for shape in ("linear", "1-sqrt")))
    for n in lengths:
        bounds = {shape: schedule_bound(schedule="wsd", max_steps=n, warmup_steps=warmup_steps, cooldown_shape=shape)
                  for shape in shapes}
        linear = bounds["linear"]

        def vs_linear(b):  # at its own best LR, and at linear's (t1 scales as 1/lr, t2 + t3 as lr)
            at_linear_lr = b["t1"] / linear["lr"] + (b["t2"] + b["t3"]) * linear["lr"]
            return f"{b['rate'] / linear['rate'] - 1:+.2%} ({at_linear_lr / linear['rate'] - 1:+.2%})"
        lines.append(f"{n} steps: 20 % cooldowns by bound, best first (vs linear; at linear's LR): " + ", ".join(
            f"{shape} {vs_linear(bounds[shape])}" for shape in sorted(bounds, key=lambda shape: bounds[shape]["rate"])))
    return lines


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--help"], ["-h"]):
        sys.exit(f"error: schedules.py takes no settings, got {' '.join(sys.argv[1:])} (--help says what it prints)")
    print(__doc__.strip() if sys.argv[1:] else "\n".join(bound_predictions()))
