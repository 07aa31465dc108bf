"""lab/streams.py: reading runs (what is kept, what is left out and why), what runs share (a run on a fitted trunk
is never held out), copies dropped, which runs are one setting at several seeds, and the seed noise: pooled per
family and length, each pair of trunks once, unstable settings set apart."""
import json

import numpy as np
import pytest

from lab import laws, streams
from lab.config import ConfigError
from lab.runs import ADDED_LATER
from synthetic_runs import LAW_BASE as BASE
from synthetic_runs import loaded_run as run


def test_what_runs_share_decides_whether_a_run_is_held_out():
    trunk = run("trunk")
    branch = run("branch", schedule="wsd", cooldown_steps=100)  # off the trunk at 300 (update 300 is still at the peak)
    twin = run("twin", schedule="wsd", cooldown_steps=100)  # the same run trained again from scratch
    other_lr = run("other lr", lr=1e-3)  # the trunk's seed and data order, but not one update in common
    other_seed = run("other seed", seed=7)
    other_order = run("other data order", data_seed=7)  # the trunk's initialization, other batches
    assert streams.shared_updates(branch, trunk) == 301 and streams.shared_updates(other_lr, trunk) == 0
    assert streams.relation(branch, [trunk]) == "shares a trunk"
    assert streams.relation(twin, [branch]) == "fitted"
    assert streams.relation(other_lr, [trunk]) == "same stream"
    assert streams.relation(other_seed, [trunk]) == "held out"
    assert streams.relation(other_order, [trunk]) == "held out"
    known = [dict(r, data="f" * 64) for r in (run("a"), run("b", data_dir="moved"))]
    assert streams.relation(known[1], known[:1]) == "fitted"  # the same data, moved: the same stream
    assert streams.relation(dict(known[1], data="e" * 64), known[:1]) == "held out"  # other data
    assert streams.relation(trunk, known[:1]) == "fitted"  # data unknown: it may be the same, never held out


def test_copies_of_a_run_are_dropped_keeping_the_one_with_the_longest_log():
    branch = run("branch", schedule="wsd", cooldown_steps=100)
    branch = dict(branch, steps=branch["steps"][-3:], losses=branch["losses"][-3:])  # a branch logs its own part
    scratch = run("from scratch", schedule="wsd", cooldown_steps=100)
    kept = streams.drop_copies([branch, scratch, run("trunk")])
    assert [r["name"] for r in kept] == ["from scratch", "trunk"]
    # copies that logged as much: the first read (find_run_dirs' sorted order) is kept, whatever comes after
    assert [r["name"] for r in streams.drop_copies([scratch, run("again", schedule="wsd", cooldown_steps=100)])
            ] == ["from scratch"]


def test_seed_noise_is_pooled_per_family_and_length_and_unstable_settings_are_set_apart():
    runs = [run("a1", 1.50, seed=1), run("a2", 1.53, seed=2),  # constant 400 at 3e-3: |diff| 2.0 % (of 1.5)
            run("b1", 1.60, seed=1, lr=1e-3), run("b2", 1.60, seed=2, lr=1e-3), run("b3", 1.68, seed=3, lr=1e-3),
            run("c1", 1.50, seed=1, lr=9e-3), run("c2", 1.80, seed=2, lr=9e-3),  # 20 %: unstable
            run("d1", 1.40, seed=1, schedule="wsd")]  # one seed: no pair
    noise, unstable = streams.seed_noise(runs)
    # b: pairs |1.6/1.6 - 1| = 0, |1.6/1.68 - 1| = 4.7619 %, twice: mean 3.1746 %, 3 pairs; a: 1.9608 %, 1 pair
    b = (0 + 2 * (1 - 1.6 / 1.68)) / 3
    assert noise[("constant", 400)][0] == pytest.approx(((1 - 1.50 / 1.53) + 3 * b) / 4, rel=1e-9)
    assert noise[("constant", 400)][1] == 4 and set(noise) == {("constant", 400)}
    assert unstable == {streams.setting(runs[5])}


def test_runs_are_read_from_train_py_s_files_and_a_wrong_lr_log_is_refused(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    cfg = dict(BASE, schedule="wsd")
    (folder / "config.json").write_text(json.dumps(dict(config=cfg, data=dict(fingerprint="ab" * 32))))
    records = [dict(step=0, val_loss=5.0), dict(step=10, lr=laws.schedule_lrs(cfg, 10)[9], train_loss=3.0),
               dict(step=50, val_loss=2.0), dict(step=400, val_loss=1.5)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = streams.load_run(folder)
    assert loaded["steps"].tolist() == [50, 400] and loaded["losses"].tolist() == [2.0, 1.5]  # after the warmup
    assert loaded["data"] == "ab" * 32 and loaded["trained"]
    records[1]["lr"] *= 2
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"its logged lr at step 10 is not its config's schedule$"):
        streams.load_run(folder)


def write_folder(folder, cfg, records, info=None):
    """A run folder in train.py's format: config.json ({'config': cfg} unless `info`) and metrics.jsonl."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(config=cfg) if info is None else info))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def train_log(cfg, every=50, val=lambda step: 3.0 - step / 1000):
    """A training log: the lr of each logged step's last update, and val_loss at every `every` steps."""
    lrs = laws.schedule_lrs(cfg, cfg["max_steps"])
    return [dict(step=0, val_loss=val(0))] + [
        dict(step=s, lr=float(lrs[s - 1]), **({"val_loss": val(s)} if s % every == 0 else {}))
        for s in range(10, cfg["max_steps"] + 1, 10)]


def test_a_run_s_val_losses_are_read_from_the_warmup_on(tmp_path):
    cfg = dict(BASE, warmup_steps=0, max_steps=30)
    records = [dict(step=0, val_loss=4), dict(step=1, val_loss=3), dict(step=2, lr=laws.schedule_lrs(cfg, 2)[1],
                                                                      val_loss=2)]
    loaded = streams.load_run(write_folder(tmp_path / "r", cfg, records))
    assert loaded["name"] == str(tmp_path / "r") and loaded["cfg"] == cfg and loaded["data"] is None
    # step 0 never (no update yet); integer losses in the log are read as floats
    assert loaded["steps"].tolist() == [1, 2] and loaded["steps"].dtype == np.int64
    assert loaded["losses"].tolist() == [3.0, 2.0] and loaded["losses"].dtype == np.float64
    assert loaded["trained"] is True and set(loaded) == {"name", "cfg", "steps", "losses", "trained", "data"}
    at_warmup = dict(BASE, warmup_steps=20)
    loaded = streams.load_run(write_folder(tmp_path / "w", at_warmup, [dict(step=20, val_loss=2.5)]))
    assert loaded["steps"].tolist() == [20] and loaded["trained"] is False  # evaluated at the warmup's end; no lr
    empty = streams.load_run(write_folder(tmp_path / "e", at_warmup, [dict(step=10, val_loss=2.5)]))
    assert empty["steps"].dtype == np.int64 and len(empty["steps"]) == 0


def test_a_logged_lr_is_checked_against_the_schedule_to_its_float32_rounding_for_adamw_alone(tmp_path):
    cfg = dict(BASE, schedule="wsd", max_steps=100)
    log = train_log(cfg)
    log[3]["lr"] *= 1 + 1e-7  # float32's rounding of the logged value: still the config's schedule
    assert streams.load_run(write_folder(tmp_path / "a", cfg, log))["steps"].tolist() == [50, 100]
    log[3]["lr"] *= 1 + 1e-5
    with pytest.raises(ConfigError, match=rf"^run {tmp_path / 'b'}: its logged lr at step 30 is not its config's "
                                          r"schedule$"):
        streams.load_run(write_folder(tmp_path / "b", cfg, log))
    free = dict(cfg, optimizer="adamw_schedulefree")  # schedule-free logs its own LR: not checked
    assert streams.load_run(write_folder(tmp_path / "c", free, log))["trained"] is True
    with pytest.raises(ConfigError) as info:
        streams.load_run(write_folder(tmp_path / "d", cfg, log, info=[cfg]))
    assert str(info.value) == f"{tmp_path / 'd' / 'config.json'} is not a train.py config.json (no 'config')"
    with pytest.raises(ConfigError, match=r"is not a train.py config.json \(no 'config'\)$"):
        streams.load_run(write_folder(tmp_path / "e", cfg, log, info=dict(cfg)))


def test_finished_lr_schedule_runs_are_kept_once_and_every_other_run_is_skipped_with_why(tmp_path):
    wsd = dict(BASE, schedule="wsd")
    runs = tmp_path / "runs"
    kept = write_folder(runs / "a" / "wsd", wsd, train_log(wsd))
    write_folder(runs / "b" / "wsd copy", wsd, train_log(wsd, every=100))  # a sweep's copy, logged less
    cosine = write_folder(runs / "b" / "cosine", dict(BASE, schedule="cosine"), train_log(dict(BASE, schedule="cosine")))
    free = dict(wsd, optimizer="adamw_schedulefree")
    write_folder(runs / "free", free, train_log(free))
    write_folder(runs / "merged", wsd, [dict(step=400, val_loss=1.5)])
    write_folder(runs / "early", wsd, [dict(step=10, lr=float(laws.schedule_lrs(wsd, 10)[9]), val_loss=2.0)])
    write_folder(runs / "stopped", wsd, [r for r in train_log(wsd) if r["step"] <= 200])
    write_folder(runs / "wide", dict(wsd, n_embd=128), train_log(dict(wsd, n_embd=128)))
    write_folder(runs / "c.partial", wsd, train_log(wsd))  # sweep.py's copy being published
    notes = []
    loaded = streams.load_runs([runs, kept], like=dict(cfg=wsd, data=None), notes=notes)
    assert [r["name"] for r in loaded] == [str(kept), str(cosine)]
    assert loaded[0]["lrs"].tolist() == laws.schedule_lrs(wsd, 400).tolist()
    assert notes == [f"skipped {runs / 'early'}: it has no val_loss after the warmup",
                     f"skipped {runs / 'free'}: its optimizer adamw_schedulefree sets its own LR",
                     f"skipped {runs / 'merged'}: its log has no training steps (no lr)",
                     f"skipped {runs / 'stopped'}: it did not reach max_steps",
                     f"skipped {runs / 'wide'}: another model, data or batch"]
    assert [r["name"] for r in streams.load_runs([runs])][-1] == str(runs / "wide")  # no `like`: every setup
    assert streams.find_run_dirs(kept) == [kept]
    assert runs / "c.partial" not in streams.find_run_dirs(runs)  # (drop_copies would hide it: a copy of a/wsd)
    assert streams.find_run_dirs(runs)[:3] == [kept, cosine, runs / "b" / "wsd copy"]
    write_folder(kept / "inner", wsd, train_log(wsd))  # a run folder is read alone, whatever lies below it
    assert streams.find_run_dirs(kept) == [kept]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"^'\S+empty' holds no run folder \(config.json \+ metrics.jsonl\)$"):
        streams.find_run_dirs(tmp_path / "empty")
    with pytest.raises(ConfigError, match=r"^'\S+nothing' is not a folder$"):
        streams.find_run_dirs(tmp_path / "nothing")


def test_two_runs_differ_in_their_data_by_fingerprint_where_both_have_one_else_by_data_dir():
    a = run("a")
    assert streams.setup_difference(a, run("b", seed=7, lr=1e-3)) is None  # seeds and LRs are not the setup
    assert streams.setup_difference(a, run("b", n_layer=3)) == ("n_layer", None, 3)
    assert streams.setup_difference(run("a", batch_size=8, seq_len=32), run("b")) == ("batch_size", 8, 16)
    assert streams.setup_difference(a, run("b", data_dir="moved")) == ("data_dir", "data/stdlib-bytes", "moved")
    known = dict(a, data="a" * 64)
    assert streams.setup_difference(known, dict(run("b", data_dir="moved"), data="a" * 64)) is None
    assert streams.setup_difference(known, dict(run("b"), data="b" * 64)) == ("data", "a" * 16, "b" * 16)
    assert streams.setup_difference(known, run("b", data_dir="moved")) == ("data_dir", "data/stdlib-bytes", "moved")


def test_why_a_run_cannot_be_fitted():
    assert streams.unusable(run("a")) is None
    assert streams.unusable(run("a", optimizer="adamw_schedulefree")) == ("its optimizer adamw_schedulefree sets "
                                                                             "its own LR")
    assert streams.unusable(dict(run("a"), trained=False)) == "its log has no training steps (no lr)"
    assert streams.unusable(dict(run("a"), steps=np.array([], dtype=int))) == "it has no val_loss after the warmup"


def test_the_recipe_s_runs_are_found_by_seed_and_settings_with_the_cooldown_resolved():
    runs = [run("a", schedule="wsd", cooldown_frac=0.25), run("b", schedule="wsd", seed=2, cooldown_frac=0.25),
            run("c", schedule="wsd", data_seed=3, cooldown_frac=0.25)]
    assert streams.matching(runs, dict(schedule="wsd", cooldown_steps=100), 1337)["name"] == "a"  # 0.25 x 400
    assert streams.matching(runs, dict(schedule="wsd", cooldown_steps=100), 2)["name"] == "b"
    with pytest.raises(ConfigError) as info:  # seed 1337 with data order 3: not the recipe's (seed, seed) stream
        streams.matching(runs[2:], dict(schedule="wsd"), 1337)
    assert str(info.value) == ("no run of seed 1337 with {'schedule': 'wsd'} among the runs read: the recipe needs "
                               "one")
    with pytest.raises(ConfigError, match="no run of seed 2 with {'schedule': 'wsd', 'cooldown_steps': 99} among"):
        streams.matching(runs, dict(schedule="wsd", cooldown_steps=99), 2)
    steps_given = [run("d", schedule="wsd", cooldown_frac=0.25, cooldown_steps=60)]  # the steps, not 0.25 x 400
    assert streams.matching(steps_given, dict(schedule="wsd", cooldown_steps=60), 1337)["name"] == "d"


def test_streams_seeds_and_updates_shared():
    assert streams.seeds(run("a")) == (1337, 1337) and streams.seeds(run("a", data_seed=7)) == (1337, 7)
    trunk = run("trunk")
    assert streams.shared_updates(trunk, run("twin")) == 400  # every update: the same run
    assert streams.shared_updates(trunk, run("shorter", max_steps=300)) == 300
    one = dict(run("one"), lrs=np.concatenate([trunk["lrs"][:1], trunk["lrs"][1:] / 2]))
    assert streams.shared_updates(one, trunk) == 1 and streams.relation(one, [trunk]) == "shares a trunk"
    known = dict(trunk, data="f" * 64)
    assert streams.same_stream(known, trunk) and streams.same_stream(trunk, known)  # one fingerprint unknown
    assert not streams.same_stream(known, dict(trunk, data="e" * 64))  # two fingerprints that differ
    assert streams.shared_updates(known, dict(trunk, data="e" * 64)) == 0
    assert not streams.same_stream(run("b", warmup_steps=10), trunk)  # another trajectory


def test_a_schedule_s_family_tells_a_cosine_whose_cycle_ends_early():
    assert streams.family(dict(BASE, schedule="cosine", cycle_steps=200)) == "cosine cycle"
    assert streams.family(dict(BASE, schedule="cosine", cycle_steps=400)) == "cosine"
    assert streams.family(dict(BASE, schedule="cosine", cycle_steps=None)) == "cosine"
    assert streams.family(dict(BASE, schedule="wsd")) == "wsd"
    assert streams.cell(run("a", schedule="cosine", cycle_steps=100)) == ("cosine cycle", 400, 3e-3)


def test_an_unstable_setting_does_not_stop_the_others_from_being_pooled():
    runs = [run("c1", 1.50, seed=1, lr=9e-3), run("c2", 1.80, seed=2, lr=9e-3),  # unstable, first
            run("a1", 1.50, seed=1), run("a2", 1.53, seed=2), run("a3", 1.56, seed=3)]
    noise, unstable = streams.seed_noise(runs)
    pairs = [1 - 1.50 / 1.53, 1 - 1.50 / 1.56, 1 - 1.53 / 1.56]
    assert noise == {("constant", 400): (pytest.approx(sum(pairs) / 3, rel=1e-12), 3)}
    assert type(noise[("constant", 400)][1]) is int  # printed in the table as a count
    assert unstable == {streams.setting(runs[0])}


def test_seeds_of_one_setting_pair_up_across_train_py_versions_and_averages_settings():
    new = run("new", 1.0, seed=2, swa_window=100, dist_timeout_s=600)
    old = run("old", 1.05, seed=1)
    old["cfg"] = {k: v for k, v in old["cfg"].items() if k not in ADDED_LATER}  # written before the GPU levers
    assert streams.setting(old) == streams.setting(new)  # SWA's window changes val_loss_swa, not val_loss
    noise, _ = streams.seed_noise([old, new, run("float8", 1.2, seed=3, float8=True)])
    assert noise == {("constant", 400): (pytest.approx(0.05), 1)}  # the float8 run is another setting
    assert streams.setting(run("a", lr=1e-3)) != streams.setting(new)


def test_runs_are_on_one_trunk_when_they_share_at_least_half_of_the_shorter_one_s_updates():
    def parting_at(name, update, length=400):  # a run of the trunk's stream whose LR leaves the trunk's at `update`
        other = run(name, max_steps=length)
        return dict(other, lrs=np.concatenate([other["lrs"][:update], other["lrs"][update:] / 2]))
    trunk, half, less = run("trunk"), parting_at("half", 200), parting_at("less", 199)
    assert [streams.shared_updates(r, trunk) for r in (half, less)] == [200, 199]
    assert streams.trunks([trunk, half, less]) == dict(trunk="trunk", half="trunk", less="less")
    # half of the shorter run's updates: a 200-step run parting at 100 joins, at 99 not
    assert streams.trunks([trunk, parting_at("short", 100, length=200)]) == dict(trunk="trunk", short="trunk")
    assert streams.trunks([trunk, parting_at("short", 99, length=200)]) == dict(trunk="trunk", short="short")


def test_branches_of_two_trunks_are_one_sample_of_a_cell_s_noise():
    trunk = [run(f"t{i}", 1.50, seed=i) for i in (1, 2)]
    branches = [run(f"b{i}{c}", final, seed=i, schedule="wsd", max_steps=400, cooldown_steps=c)
                for c in (40, 80, 120) for i, final in ((1, 1.40), (2, 1.40 * (1 + c / 4000)))]
    other = [run("o1", 1.40, seed=3, schedule="wsd"), run("o2", 1.47, seed=4, schedule="wsd")]  # 5 % apart
    noise, _ = streams.seed_noise(trunk + branches + other)
    # the three branch pairs (~1, 2, 3 %) are one pair of trunks (their mean), beside the other pair
    branch_pair = np.mean([1 - 1 / (1 + c / 4000) for c in (40, 80, 120)])
    assert noise[("wsd", 400)] == (pytest.approx((branch_pair + (1 - 1.40 / 1.47)) / 2, rel=1e-12), 2)
    assert streams.shared_updates(branches[0], branches[2]) == 321  # up to the 80-step cooldown: one trunk


def test_runs_are_grouped_by_seed_and_data_order_in_order_of_first_appearance():
    runs = [run("a", seed=2), run("b", seed=1), run("c", seed=2, schedule="wsd"), run("d", seed=1, data_seed=3)]
    groups = streams.by_seed(runs)
    assert list(groups) == [(2, 2), (1, 1), (1, 3)]
    assert {k: [r["name"] for r in g] for k, g in groups.items()} == {(2, 2): ["a", "c"], (1, 1): ["b"], (1, 3): ["d"]}


def test_no_setting_at_two_seeds_is_no_noise_and_no_pair():
    assert streams.pooled_noise([], {}) == (0.0, 0)
    one = run("one", seed=1)
    assert streams.pooled_noise([[one, run("two", 1.5 * 1.02, seed=2)]], {"one": "one", "two": "two"}) == (
        pytest.approx(1 - 1 / 1.02), 1)
