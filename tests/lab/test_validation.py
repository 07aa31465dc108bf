"""lab/validation.py: what runs share (a run on a fitted trunk is never held out), copies dropped, the pooled seed
noise and unstable settings, the band by hand, the cells (errors, coverage, within the noise), and what a fit set
cannot determine, checked before any fit."""
import json
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from lab import laws, validation
from lab.config import ConfigError
from lab.settings import DEFAULTS

BASE = dict(DEFAULTS, model="cpu_tiny", max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=50, batch_size=16,
            seq_len=64, schedule="constant")


def run(name, final=1.5, **settings):
    """An in-memory run as load_runs gives it: its config, LRs and val losses (ending at `final`)."""
    cfg = dict(BASE, **settings)
    steps = np.arange(50, cfg["max_steps"] + 1, 50)
    return dict(name=name, cfg=cfg, steps=steps, losses=np.linspace(final + 1.0, final, len(steps)), data=None,
                trained=True, lrs=laws.schedule_lrs(cfg, cfg["max_steps"]))


def test_what_runs_share_decides_whether_a_run_is_held_out():
    trunk = run("trunk")
    branch = run("branch", schedule="wsd", cooldown_steps=100)  # off the trunk at 300 (update 300 is still at the peak)
    twin = run("twin", schedule="wsd", cooldown_steps=100)  # the same run trained again from scratch
    other_lr = run("other lr", lr=1e-3)  # the trunk's seed and data order, but not one update in common
    other_seed = run("other seed", seed=7)
    other_order = run("other data order", data_seed=7)  # the trunk's initialization, other batches
    assert validation.shared_updates(branch, trunk) == 301 and validation.shared_updates(other_lr, trunk) == 0
    assert validation.relation(branch, [trunk]) == "shares a trunk"
    assert validation.relation(twin, [branch]) == "fitted"
    assert validation.relation(other_lr, [trunk]) == "same stream"
    assert validation.relation(other_seed, [trunk]) == "held out"
    assert validation.relation(other_order, [trunk]) == "held out"
    known = [dict(r, data="f" * 64) for r in (run("a"), run("b", data_dir="moved"))]
    assert validation.relation(known[1], known[:1]) == "fitted"  # the same data, moved: the same stream
    assert validation.relation(dict(known[1], data="e" * 64), known[:1]) == "held out"  # other data
    assert validation.relation(trunk, known[:1]) == "fitted"  # data unknown: it may be the same, never held out


def test_copies_of_a_run_are_dropped_keeping_the_one_with_the_longest_log():
    branch = run("branch", schedule="wsd", cooldown_steps=100)
    branch = dict(branch, steps=branch["steps"][-3:], losses=branch["losses"][-3:])  # a branch logs its own part
    scratch = run("from scratch", schedule="wsd", cooldown_steps=100)
    kept = validation.drop_copies([branch, scratch, run("trunk")])
    assert [r["name"] for r in kept] == ["from scratch", "trunk"]


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


def test_seed_noise_is_pooled_per_family_and_length_and_unstable_settings_are_set_apart():
    runs = [run("a1", 1.50, seed=1), run("a2", 1.53, seed=2),  # constant 400 at 3e-3: |diff| 2.0 % (of 1.5)
            run("b1", 1.60, seed=1, lr=1e-3), run("b2", 1.60, seed=2, lr=1e-3), run("b3", 1.68, seed=3, lr=1e-3),
            run("c1", 1.50, seed=1, lr=9e-3), run("c2", 1.80, seed=2, lr=9e-3),  # 20 %: unstable
            run("d1", 1.40, seed=1, schedule="wsd")]  # one seed: no pair
    noise, unstable = validation.seed_noise(runs)
    # b: pairs |1.6/1.6 - 1| = 0, |1.6/1.68 - 1| = 4.7619 %, twice: mean 3.1746 %, 3 pairs; a: 1.9608 %, 1 pair
    b = (0 + 2 * (1 - 1.6 / 1.68)) / 3
    assert noise[("constant", 400)][0] == pytest.approx(((1 - 1.50 / 1.53) + 3 * b) / 4, rel=1e-9)
    assert noise[("constant", 400)][1] == 4 and set(noise) == {("constant", 400)}
    assert unstable == {validation.setting(runs[5])}


def test_the_band_by_hand(monkeypatch):
    monkeypatch.setattr(laws, "predict_losses", lambda fit, cfg, steps: np.array([fit["value"]]))
    pair = [run("p1", 1.00, seed=1), run("p2", 1.01, seed=2)]  # one setting at two seeds: the fitted seed noise
    fitted = [(dict(value=1.20), [pair[0]]), (dict(value=1.26), [pair[1]])]
    point, low, high = validation.predict_with_band(fitted, BASE, [400])
    noise = (1 - 1.00 / 1.01) / (2 / math.sqrt(math.pi))  # mean |difference| / 1.128: a standard deviation
    fit = 0.03 / 1.23  # half the fits' spread, relative: the standard error of their mean
    total = fit**2 + noise**2
    dof = total**2 / (fit**4 / 1 + noise**4 / 1)  # Welch-Satterthwaite: one degree of freedom each
    half = student_t.ppf(0.95, dof) * math.sqrt(total) * 1.23
    assert point[0] == pytest.approx(1.23) and low[0] == pytest.approx(1.23 - half) and high[0] == pytest.approx(
        1.23 + half)
    alone = validation.predict_with_band(fitted[:1], BASE, [400])  # one fit, no seed pair: no band at all
    assert alone[1][0] == alone[2][0] == pytest.approx(1.20)


def row(cell, error, inside, relation="held out", unstable=False):
    return dict(cell=cell, error=error, inside=inside, relation=relation, unstable=unstable, lr_fitted=True,
                spread=0.01, curve=abs(error), curve_max=abs(error), curve_from_warmup=abs(error))


def test_cells_score_errors_against_the_noise_and_count_the_band_s_coverage():
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
    with pytest.raises(ConfigError, match=r"^the runs of seed 1337 have 1 val losses at steps >= fit_from=400, "
                                          r"fewer than the floor law's parameters$"):
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


def test_runs_are_read_from_train_py_s_files_and_a_wrong_lr_log_is_refused(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    cfg = dict(BASE, schedule="wsd")
    (folder / "config.json").write_text(json.dumps(dict(config=cfg, data=dict(fingerprint="ab" * 32))))
    records = [dict(step=0, val_loss=5.0), dict(step=10, lr=laws.schedule_lrs(cfg, 10)[9], train_loss=3.0),
               dict(step=50, val_loss=2.0), dict(step=400, val_loss=1.5)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = validation.load_run(folder)
    assert loaded["steps"].tolist() == [50, 400] and loaded["losses"].tolist() == [2.0, 1.5]  # after the warmup
    assert loaded["data"] == "ab" * 32 and loaded["trained"]
    records[1]["lr"] *= 2
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"its logged lr at step 10 is not its config's schedule$"):
        validation.load_run(folder)
