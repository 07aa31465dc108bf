"""predict.py: S1, S2 and the multi-power law's loss drop on schedules small enough to add up by hand; each law
recovering the parameters of curves it generated; the command line's errors and output; --optimize."""
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

import predict
from helpers import REPO
from lab import settings
from lab.config import ConfigError, parse_args
from schedules import learning_rate, validate_schedule

# A run of 400 steps is long enough for a cooldown and a cosine, short enough for fits that take seconds.
BASE = dict(settings.DEFAULTS, max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=20, batch_size=16, seq_len=64)
MPL = dict(L0=0.8, A=0.9, alpha=0.45, B=90.0, C=1.5, beta=0.55, gamma=0.65)
TISSUE = dict(L0=0.8, A=0.9, alpha=0.45, C=0.4)


def eval_steps(cfg, first=None):
    first = cfg["warmup_steps"] if first is None else first
    return np.array([s for s in range(0, cfg["max_steps"] + 1, cfg["eval_interval"]) if s >= max(first, 1)])


def synthetic_run(law, params, first=None, **settings):
    """An in-memory run (as load_run returns it) whose val losses are the law's own predictions."""
    cfg = dict(BASE, **settings)
    steps = eval_steps(cfg, first)
    fit = dict(law=law, params=params)
    return dict(name=f"{cfg['schedule']}-{cfg['max_steps']}", cfg=cfg, steps=steps,
                losses=predict.predict_losses(fit, cfg, steps))


def write_run(folder, **settings):
    """A run folder in train.py's format, its val losses the multi-power law's (MPL): config.json with the
    resolved config, metrics.jsonl with a record every 10 steps (lr of the step's last update, train_loss) and
    val_loss at step 0 and at every evaluation."""
    cfg = dict(BASE, out_dir=str(folder), **settings)
    steps = eval_steps(cfg)
    val = {0: 5.5, **dict(zip(steps.tolist(), predict.predict_losses(dict(law="mpl", params=MPL), cfg, steps)))}
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(config=cfg, origin=None)))
    records = [dict(step=0, tokens=0, val_loss=val[0])]
    for step in range(10, cfg["max_steps"] + 1, 10):
        record = dict(step=step, lr=learning_rate(cfg, step - 1), train_loss=val.get(step, 2.0) + 0.1)
        records.append(dict(record, val_loss=val[step]) if step in val else record)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


# ---------------------------------------------------------------------------------------------------------
# the features and formulas, by hand


def test_areas_momentum_and_loss_drop_by_hand():
    # updates u = 0..3 with LRs 0.5 (warmup, W = 1), 1.0 (the peak: no drop), 0.5, 0.25; val losses at s = 3 and 4
    f = predict.curve_features([0.5, 1.0, 0.5, 0.25], warmup_steps=1, peak_lr=1.0, steps=[3, 4], decay=0.5)
    assert f["area"] == pytest.approx([2.0, 2.25])  # S_W + S1: 0.5 + 1 + 0.5, then + 0.25
    assert f["drops"] == pytest.approx([0.5, 0.25])  # eta(1) - eta(2), eta(2) - eta(3); u = 1 drops nothing
    assert f["since"] == pytest.approx(np.array([[0.5, 0.0], [0.75, 0.25]]))  # S_k(s): the area from u to s - 1
    # Tissue's momentum with lambda 0.5: m(1) = 0, m(2) = 0.5, m(3) = 0.5 * 0.5 + 0.25 = 0.5; S2 = their sums
    assert f["s2"] == pytest.approx([0.5, 1.0])
    # MPL with B = C = beta = gamma = 1, G(x) = x / (x + 1):
    # s = 3: 0.5 * G(0.5/0.5 = 1) = 0.25;  s = 4: 0.5 * G(0.75/0.5 = 1.5) + 0.25 * G(0.25/0.25 = 1) = 0.3 + 0.125
    p = dict(L0=1.0, A=1.0, alpha=1.0, B=1.0, C=1.0, beta=1.0, gamma=1.0)
    assert predict.mpl_loss(p, f) == pytest.approx([1 + 1 / 2.0 - 0.25, 1 + 1 / 2.25 - 0.425])
    tissue = dict(L0=1.0, A=1.0, alpha=1.0, C=1.0)
    assert predict.tissue_loss(tissue, f) == pytest.approx([1 + 0.5 - 0.5, 1 + 1 / 2.25 - 1.0])


def test_the_first_step_after_the_warmup_drops_from_the_peak():
    f = predict.curve_features([0.5, 0.8], warmup_steps=1, peak_lr=1.0, steps=[2], decay=0.5)
    assert f["drops"] == pytest.approx([0.2]) and f["since"] == pytest.approx(np.array([[0.8]]))
    assert f["s2"] == pytest.approx([0.2])


def test_a_constant_lr_has_no_loss_drop_and_a_cooldown_does():
    constant = predict.run_features(dict(BASE, schedule="constant"), eval_steps(BASE))
    assert len(constant["drops"]) == 0 and not constant["s2"].any()
    lrs = [learning_rate(dict(BASE, schedule="constant"), u) for u in range(400)]
    assert constant["area"][-1] == pytest.approx(sum(lrs))
    fit = dict(law="mpl", params=MPL)
    steps = eval_steps(BASE)
    wsd, flat = (predict.predict_losses(fit, dict(BASE, schedule=s), steps) for s in ("wsd", "constant"))
    assert wsd[steps <= 320] == pytest.approx(flat[steps <= 320])  # the same until the 20 % cooldown starts
    assert wsd[-1] < flat[-1] - 0.05


# ---------------------------------------------------------------------------------------------------------
# fits


@pytest.mark.parametrize("law, params", [("mpl", MPL), ("tissue", TISSUE)])
def test_each_law_recovers_the_parameters_of_its_own_curves(law, params):
    runs = [synthetic_run(law, params, schedule="constant"),
            synthetic_run(law, params, first=300, schedule="wsd", cooldown_frac=0.25, eval_interval=10),
            synthetic_run(law, params, schedule="cosine")]
    fit = predict.fit_law(law, runs)
    for name, value in params.items():
        assert fit["params"][name] == pytest.approx(value, rel=0.03), name
    unseen = synthetic_run(law, params, schedule="wsd", cooldown_shape="linear", cooldown_frac=0.1)
    assert np.abs(predict.relative_errors(fit, unseen)).max() < 1e-3


def test_a_fit_sees_a_cooldown_only_through_its_lrs():
    # the same val losses under another schedule are another curve: the fit must not explain both
    runs = [synthetic_run("mpl", MPL, schedule="constant"), synthetic_run("mpl", MPL, schedule="wsd")]
    runs[1]["cfg"] = dict(runs[1]["cfg"], schedule="constant")  # claims a constant LR, holds a cooldown's losses
    fit = predict.fit_law("mpl", runs)
    assert max(np.abs(predict.relative_errors(fit, run)).max() for run in runs) > 0.01


# ---------------------------------------------------------------------------------------------------------
# the command line


def test_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^no runs to fit: give --fit=DIR"):
        predict.main([])
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", batch_size=32)
    with pytest.raises(ConfigError, match=rf"^runs {tmp_path / 'a'} and {tmp_path / 'b'} differ in batch_size "
                                          r"\(16 vs 32\): fit runs of one model, data and batch$"):
        predict.main([f"--fit={tmp_path}"])
    for name, fingerprint in (("c", "c" * 64), ("d", "d" * 64), ("e", None)):  # the same settings, other data
        write_run(tmp_path / "data" / name)
        config = tmp_path / "data" / name / "config.json"
        if fingerprint:
            config.write_text(json.dumps(dict(json.loads(config.read_text()), data={"fingerprint": fingerprint})))
    with pytest.raises(ConfigError, match=rf"^runs {tmp_path / 'data' / 'c'} and {tmp_path / 'data' / 'd'} differ in "
                                          r"data \('cccccccccccccccc' vs 'dddddddddddddddd'\): fit runs of one model"):
        predict.main([f"--fit={tmp_path / 'data'}"])
    predict.main([f"--fit={tmp_path / 'data' / 'c'}", f"--fit={tmp_path / 'data' / 'e'}"])  # unknown data: not refused
    with pytest.raises(ConfigError, match=r"^unknown law 'power'; expected one of mpl, tissue$"):
        predict.main([f"--fit={tmp_path / 'a'}", "--law=power"])
    with pytest.raises(ConfigError, match=r"nothing. is not a folder$"):
        predict.main([f"--fit={tmp_path / 'nothing'}"])
    done = subprocess.run([sys.executable, "predict.py", f"--fit={tmp_path / 'a'}", "--law=power"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error: unknown law 'power'; expected one of mpl, tissue"


def test_a_prediction_lists_every_evaluation_and_ends_with_the_final_loss(tmp_path, capsys):
    write_run(tmp_path / "constant", schedule="constant")
    write_run(tmp_path / "wsd")
    fits = predict.main([f"--fit={tmp_path}", "--max_steps=500", "--cooldown_shape=linear", "--eval_interval=100"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"final val_loss: \d+\.\d{4}", lines[-1])
    asked = dict(BASE, max_steps=500, cooldown_shape="linear")
    expected = predict.predict_losses(fits[0], asked, [100, 200, 300, 400, 500])
    truth = predict.predict_losses(dict(law="mpl", params=MPL), asked, [100, 200, 300, 400, 500])
    assert expected == pytest.approx(truth, rel=1e-3)  # the law that made the runs, recovered
    assert lines[-6:-1] == [f"  step {s}: {v:.4f}" for s, v in zip((100, 200, 300, 400, 500), expected)]
    assert lines[-1] == f"final val_loss: {expected[-1]:.4f}"
    with pytest.raises(ConfigError, match=r"^cooldown_frac=1.5: must be in \(0, 1\]$"):  # checked as train.py checks it
        predict.main([f"--fit={tmp_path}", "--cooldown_frac=1.5"])


def test_without_a_schedule_it_reports_how_well_the_fit_explains_each_run(tmp_path, capsys):
    write_run(tmp_path / "constant", schedule="constant")
    predict.main([f"--fit={tmp_path}", "--law=tissue"])
    out = capsys.readouterr().out
    assert re.search(r"constant: 20 val losses, relative error mean \d+\.\d\d%, max \d+\.\d\d%", out)
    assert "final val_loss" not in out


def test_check_predicts_other_runs_and_skips_copies_and_other_setups(tmp_path, capsys):
    write_run(tmp_path / "fit" / "constant", schedule="constant")
    write_run(tmp_path / "fit" / "wsd")
    write_run(tmp_path / "other" / "wsd-copy")  # the same run in another suite
    write_run(tmp_path / "other" / "linear", cooldown_shape="linear", cooldown_frac=0.1)
    write_run(tmp_path / "other" / "bigger-batch", batch_size=32)
    figure = tmp_path / "figures" / "check.png"
    figure.parent.mkdir()
    predict.main([f"--fit={tmp_path / 'fit'}", f"--check={tmp_path / 'other'}", f"--figure={figure}"])
    out = capsys.readouterr().out
    assert f"skipped {tmp_path / 'other' / 'wsd-copy'}: a copy of fitted {tmp_path / 'fit' / 'wsd'}" in out
    assert f"skipped {tmp_path / 'other' / 'bigger-batch'}: another model, data or batch" in out
    [row] = [line for line in out.splitlines() if line.startswith("|") and "linear" in line]
    measured, mpl, mpl_error = row.split(" | ")[3:6]  # the MPL made these curves: it predicts them, Tissue less so
    assert float(mpl) == pytest.approx(float(measured), abs=2e-4) and mpl_error in ("+0.00%", "-0.00%")
    assert re.search(r"^mpl: 1 runs at the fitted lr: final val_loss \|relative error\| mean 0\.0\d%", out, re.M)
    assert figure.stat().st_size > 10_000 and figure.with_suffix(".pdf").stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------------------
# schedule design


def final_loss(fit, cfg, cooldown, exponent):
    settings = dict(cfg, schedule="wsd", cooldown_steps=cooldown, cooldown_shape=f"1-x^{exponent:.3g}")
    return predict.predict_losses(fit, settings, [cfg["max_steps"]])[0]


def test_optimize_finds_the_best_cooldown_of_an_exhaustive_search():
    fit, cfg = dict(law="mpl", params=MPL), dict(BASE, max_steps=300)
    best = predict.optimal_cooldown(fit, cfg)
    found = predict.predict_losses(fit, best, [300])[0]
    grid = {(c, a): final_loss(fit, cfg, c, a) for c in range(10, 281, 15) for a in np.geomspace(0.1, 10, 13)}
    (cooldown, exponent), lowest = min(grid.items(), key=lambda item: item[1])
    assert found <= lowest + 2e-4
    assert abs(best["cooldown_steps"] - cooldown) <= 45  # the exhaustive search's optimum region
    assert found < final_loss(fit, cfg, 60, 0.5) - 1e-3  # better than the default 20 % 1-sqrt
    argv = predict.train_command(best).split()[2:]  # the printed settings are a schedule train.py runs
    printed = parse_args(argv, settings.DEFAULTS, settings.TYPES)
    validate_schedule(**{k: printed[k] for k in predict.SCHEDULE_KEYS})
    assert printed["cooldown_steps"] == best["cooldown_steps"] and printed["cooldown_shape"] == best["cooldown_shape"]


def test_without_a_loss_drop_the_optimum_keeps_the_lr_up():
    # B ~ 0: a cooldown only loses area, so the best wsd run keeps almost all of a constant LR's area
    fit, cfg = dict(law="mpl", params=dict(MPL, B=1e-9)), dict(BASE, max_steps=300)
    best = predict.optimal_cooldown(fit, cfg)
    area = sum(learning_rate(best, u) for u in range(300))
    assert area > 0.995 * sum(learning_rate(dict(cfg, schedule="constant"), u) for u in range(300))
    assert math.isclose(predict.predict_losses(fit, best, [300])[0],
                        predict.predict_losses(fit, dict(cfg, schedule="constant"), [300])[0], rel_tol=1e-3)
