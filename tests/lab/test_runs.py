"""lab/runs.py: what a run is from its config, which runs are one setting at several seeds, their spread, the
paired verdict, and the data the runs read."""
import math
import statistics

import pytest

from lab import scaling
from lab.config import ConfigError
from lab.runs import (ADDED_LATER, best_per_method, cooldown_frac, cycle, data_fingerprint, final_ppl, finished_groups,
                      method, on_shared_seeds, one_data, optimizer_label, paired_gap, seed, seed_groups, setting,
                      setting_of, shape_order, spread, verdict)
from lab.settings import DEFAULTS, SETTINGS
from synthetic_runs import write_run


def test_runs_are_classified_by_their_config_not_their_folder():
    def run(**settings):
        return dict(info=dict(config={**dict(optimizer="adamw", schedule="wsd", cooldown_shape="1-sqrt"), **settings}))
    assert method(run()) == "wsd/1-sqrt"
    assert method(run(schedule="cosine")) == "cosine"
    assert method(run(schedule="constant", optimizer="adamw_schedulefree")) == "schedule-free"
    assert sorted(["1-x^2", "square", "1-x^0.7", "linear", "1-sqrt"], key=shape_order) == [
        "linear", "1-sqrt", "square", "1-x^0.7", "1-x^2"]
    assert [shape_order(name) for name in ("linear", "wsd/1-sqrt", "wsd/1-x^0.7", "exp")] == [
        (0, 0.0), (1, 0.0), (6, 0.7), (6, math.inf)]  # a name of no shape: last


def logged(name="r", losses=(3.0, 2.0), swa=None, **settings):
    """A run as scaling.load_runs gives it: its settings, and val_loss at step 0 and (with val_loss_swa) at
    max_steps, unless it stopped before (one loss)."""
    config = dict(DEFAULTS, max_steps=100, **settings)
    records = [dict(step=0, val_loss=losses[0])]
    records += [dict(step=100, val_loss=loss, val_loss_swa=swa) for loss in losses[1:]]
    return dict(name=name, info=dict(config=config), metrics=records)


def test_a_runs_labels_cycle_cooldown_and_final_perplexity():
    assert optimizer_label(logged(optimizer="adamw_schedulefree", beta1=0.9, beta2=0.95)) == "schedule-free (0.9, 0.95)"
    assert optimizer_label(logged(schedule="cosine")) == "cosine"
    assert cycle(logged(cycle_steps=None)) == 100 and cycle(logged(cycle_steps=80)) == 80
    assert cooldown_frac(logged(cooldown_frac=0.2, cooldown_steps=None)) == 0.2
    assert cooldown_frac(logged(cooldown_frac=0.2, cooldown_steps=5)) == 0.05  # steps win over the fraction
    assert final_ppl(logged(losses=(3.0, 2.0), swa=1.5)) == math.exp(2.0)
    assert final_ppl(logged(losses=(3.0, 2.0), swa=1.5), "val_loss_swa") == math.exp(1.5)
    assert final_ppl(logged(losses=(3.0,))) is None  # stopped before max_steps


def test_finished_groups_keep_the_selected_runs_that_reached_the_end():
    runs = [logged("a", lr=1e-3), logged("b", lr=2e-3), logged("c", lr=1e-3), logged("d", losses=(3.0,), lr=1e-3),
            logged("e", lr=1e-3, schedule="cosine")]
    groups = finished_groups(runs, key=lambda run: run["info"]["config"]["lr"],
                             select=lambda run: run["info"]["config"]["schedule"] == "wsd")
    assert {lr: [r["name"] for r in group] for lr, group in groups.items()} == {1e-3: ["a", "c"], 2e-3: ["b"]}
    assert list(finished_groups(runs, key=lambda run: run["name"])) == ["a", "b", "c", "e"]  # select: all


def test_seeds_group_one_setting_and_nothing_else(tmp_path):
    for name, seed_, data_seed, lr in (("a", 1337, None, 1e-3), ("b", 1338, None, 1e-3), ("c", 1337, 1338, 1e-3),
                                       ("d", 1337, None, 2e-3)):
        write_run(tmp_path, "s", name, schedule="cosine", max_steps=200, lr=lr, seed=seed_, data_seed=data_seed)
    runs = scaling.load_runs(tmp_path)["s"]
    groups = seed_groups(runs)
    assert [[r["name"] for r in g] for g in groups] == [["a", "c", "b"], ["d"]]  # by (seed, data seed)
    assert [seed(r) for r in groups[0]] == [(1337, 1337), (1337, 1338), (1338, 1338)]
    assert setting(runs[0]) == setting(runs[1]) != setting(runs[3])
    assert [r["name"] for r in best_per_method(runs)["cosine"]] == ["d"]  # the synthetic optimum: 2e-3
    # a tie (weight decay is not in the synthetic losses): the setting seen first stays the best
    tied = [logged("x", weight_decay=0.1), logged("y", weight_decay=0.0)]  # the same final loss
    assert [r["name"] for r in best_per_method(tied)["wsd/1-sqrt"]] == ["x"]


def test_a_config_written_before_a_setting_existed_is_the_setting_at_the_value_it_trained_with():
    new = dict(DEFAULTS, lr=1e-3, **ADDED_LATER)
    old = {k: v for k, v in new.items() if k not in ADDED_LATER}  # a config.json of a train.py without the levers
    assert set(ADDED_LATER) <= set(SETTINGS) and set(ADDED_LATER).isdisjoint(old)
    assert setting_of(old) == setting_of(new)
    for key, value in (("float8", True), ("fused_loss", "liger"), ("fused_optimizer", False)):
        assert setting_of(old) != setting_of(dict(new, **{key: value}))  # a lever that was on is another setting
    # where it ran, how it was launched and logged is not what it trains; the seeds are its samples
    for key, value in (("dist_timeout_s", 600), ("wandb_log", True), ("peak_tflops", 1.0), ("out_dir", "x"),
                       ("seed", 7), ("data_seed", 7)):
        assert setting_of(dict(new, **{key: value})) == setting_of(new)
    assert setting_of(dict(new, lr=2e-3)) != setting_of(new)
    assert setting_of(dict(new, swa_window=100)) != setting_of(new)  # plot.py's SWA curves: another setting


def test_spread_is_the_mean_and_sample_deviation():
    assert spread([1.0, 3.0]).std == statistics.stdev([1.0, 3.0])  # two seeds have a spread
    runs = [logged(losses=(3.0, 2.0), swa=1.5), logged(losses=(3.0, 2.5), swa=2.0)]
    assert spread(runs, "val_loss_swa").mean == statistics.fmean([math.exp(1.5), math.exp(2.0)])
    s = spread([1.0, 2.0, 4.0])
    assert (s.mean, s.std, s.n) == (statistics.fmean([1, 2, 4]), statistics.stdev([1, 2, 4]), 3)
    assert str(s) == f"{7 / 3:.3f} ± {statistics.stdev([1, 2, 4]):.3f}"
    assert str(spread([2.5])) == "2.500" and spread([2.5]).std is None


def test_paired_gaps_match_seeds_and_the_verdict_weighs_their_error(tmp_path):
    for shape in ("linear", "1-sqrt"):
        for seed_ in (1337, 1338, 1339):
            write_run(tmp_path, "s", f"{shape}{seed_}", schedule="wsd", cooldown_shape=shape, max_steps=200,
                      lr=1e-3, seed=seed_)
    runs = scaling.load_runs(tmp_path)["s"]
    linear, sqrt = ([r for r in runs if r["info"]["config"]["cooldown_shape"] == s] for s in ("linear", "1-sqrt"))
    gaps = paired_gap(linear, sqrt)
    assert len(gaps) == 3 and all(math.isclose(g, gaps[0]) for g in gaps) and gaps[0] > 0
    final = {r["name"]: r["metrics"][-1]["val_loss"] for r in runs}
    assert gaps[0] == math.exp(final["linear1337"] - final["1-sqrt1337"]) - 1
    assert paired_gap(linear, sqrt[:1]) == gaps[:1]  # only the seeds both have
    assert verdict(gaps, ("linear", "1-sqrt")).startswith(f"1-sqrt better ({statistics.fmean(gaps):+.2%}, 95 % CI ")
    assert verdict([0.01, -0.012, 0.003], ("a", "b")).startswith("within noise (+0.03%, 95 % CI ")
    # 3 seeds: t = 4.30; the mean -2.03 %, its standard error 0.033 %: the interval is -2.18 % to -1.89 %
    assert verdict([-0.02, -0.021, -0.02], ("a", "b")) == "a better (-2.03%, 95 % CI -2.18% to -1.89%, 3 seeds)"
    # 2 seeds: t = 12.7; gaps 1 % and 3 % agree in sign but the interval, 2 % +- 12.7 %, holds zero
    assert verdict([0.01, 0.03], ("a", "b")).startswith("within noise (+2.00%, 95 % CI -10.71% to +14.71%")
    assert verdict([0.01], ("a", "b")) is None


def test_groups_are_compared_on_the_seeds_all_of_them_have(tmp_path):
    for shape, seeds in (("linear", (1337, 1338)), ("1-sqrt", (1337, 1338, 1339))):
        for seed_ in seeds:
            write_run(tmp_path, "s", f"{shape}{seed_}", schedule="wsd", cooldown_shape=shape, max_steps=200,
                      lr=1e-3, seed=seed_)
    groups = on_shared_seeds(seed_groups(scaling.load_runs(tmp_path)["s"]))
    assert [[r["name"] for r in g] for g in groups] == [["1-sqrt1337", "1-sqrt1338"], ["linear1337", "linear1338"]]
    assert on_shared_seeds([]) == []


def test_the_data_a_run_read_is_its_recorded_fingerprint_and_one_data_is_asked_of_the_runs():
    assert data_fingerprint(dict(config={}, data=dict(fingerprint="a" * 64))) == "a" * 64
    for unknown in (dict(config={}), dict(config={}, data=None), dict(data={}), [], None):  # not recorded, unreadable
        assert data_fingerprint(unknown) is None

    def runs(*fingerprints):
        return [dict(dir=f"run{i}", info=dict(config={}, **({} if f is None else dict(data=dict(fingerprint=f)))))
                for i, f in enumerate(fingerprints)]
    assert one_data(runs("a" * 64, "a" * 64, None)) == ("data aaaaaaaaaaaaaaaa (2 runs), 1 runs of unknown data (no "
                                                        "fingerprint recorded)")
    assert one_data(runs("b" * 64)) == "data bbbbbbbbbbbbbbbb (1 runs)"
    assert one_data(runs(None, None)) == "2 runs of unknown data (no fingerprint recorded)"
    assert one_data([]) == ""
    for fingerprints in (("a" * 64, None, "a" * 64, "b" * 64), ("a" * 64, None, "a" * 64, "b" * 64, "c" * 64)):
        with pytest.raises(ConfigError) as info:  # two data or more: the first two, each by its first run
            one_data(runs(*fingerprints))
        assert str(info.value) == ("the runs read different data: run0 read aaaaaaaaaaaaaaaa, run3 read "
                                   "bbbbbbbbbbbbbbbb; give each data's results apart (their own folders)")
