"""predict.py: the recommended fit of the committed runs (its set, its cache), a prediction's band line, the user's
own runs (--fit), the validation's files, --optimize, and every input error in one line before any fit."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import predict
from helpers import REPO
from lab import laws, settings, streams, validation
from lab.config import ConfigError, parse_args
from schedules import learning_rate, resolve_cooldown_steps, validate_schedule

BASE = dict(settings.DEFAULTS, max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=20, batch_size=16, seq_len=64)
FLOOR = dict(A=5.0, alpha=0.2, F=0.08, eta_c=4e-3, q=0.3, x0=8.0)


def write_run(folder, offset=0.0, **settings):
    """A run folder in train.py's format whose val losses are the floor law's (times 1 + offset: a seed's own
    level): config.json, and metrics.jsonl with a record every 10 steps (the lr of its last update) and val_loss
    at step 0 and at every evaluation."""
    cfg = dict(BASE, out_dir=str(folder), **settings)
    steps = np.arange(cfg["eval_interval"], cfg["max_steps"] + 1, cfg["eval_interval"])
    losses = laws.predict_losses(dict(law="floor", params=FLOOR), cfg, steps) * (1 + offset)
    val = {0: 5.5, **dict(zip(steps.tolist(), losses))}
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(config=cfg, origin=None)))
    records = [dict(step=0, tokens=0, val_loss=val[0])]
    for step in range(10, cfg["max_steps"] + 1, 10):
        record = dict(step=step, lr=learning_rate(cfg, step - 1), train_loss=val.get(step, 2.0) + 0.1)
        records.append(dict(record, val_loss=val[step]) if step in val else record)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def write_recipe(root, seeds=(1, 2), **settings):
    """Per seed: a wsd run, a cosine run and a wsd run at another peak LR, each seed 0.3 % apart."""
    for i, seed in enumerate(seeds):
        for name, extra in (("wsd", {}), ("cosine", dict(schedule="cosine")), ("low", dict(lr=1e-3))):
            write_run(root / f"{name}_seed{seed}", offset=0.003 * i, seed=seed, **dict(extra, **settings))
    return root


# ---------------------------------------------------------------------------------------------------------
# the recommended fit


def test_the_recommended_fit_is_four_committed_runs_per_seed_and_its_cache_is_theirs(tmp_path, monkeypatch):
    runs = predict.committed_runs()
    fit_runs = predict.recipe_runs(runs, predict.FIT_SEEDS)
    assert [streams.seeds(r) for r in fit_runs] == [(1337, 1337)] * 4 + [(1338, 1338)] * 4
    assert {r["cfg"]["lr"] for r in fit_runs} == {1.5e-3, 3e-3}  # at most 3 peak LRs
    assert {r["cfg"]["max_steps"] for r in fit_runs} == {600, 1200}  # at most 3 lengths
    cooldowns = {resolve_cooldown_steps(r["cfg"]["max_steps"], r["cfg"]["cooldown_frac"], r["cfg"]["cooldown_steps"])
                 for r in fit_runs if r["cfg"]["schedule"] == "wsd"}
    assert cooldowns == {60, 120, 499} and {r["cfg"]["schedule"] for r in fit_runs} == {"wsd", "cosine"}
    for run in fit_runs:
        assert run["steps"][-1] == run["cfg"]["max_steps"] and run["cfg"]["model"] == "cpu_tiny"
    fits, how = predict.recommended_fits("floor", runs)
    assert how == "cached"  # results/predict/recommended_fit.json was fitted to exactly these runs
    cache = json.loads((REPO / predict.CACHE).read_text())["floor"]
    assert cache["runs"] == [r["name"] for r in fit_runs] and cache["fit_from"] == predict.FIT_FROM
    assert [fit for fit, _ in fits.values()] == [cache["fits"]["1337"], cache["fits"]["1338"]]
    changed = [dict(r, losses=r["losses"] * 1.01) if r is fit_runs[3] else r for r in runs]
    assert predict.fingerprint(predict.recipe_runs(changed, predict.FIT_SEEDS), "floor", 300) != cache["fingerprint"]
    assert predict.fingerprint(fit_runs, "floor", 300) == cache["fingerprint"]
    edited = tmp_path / "laws.py"  # lab/laws.py with one more line: the cached fits are not its fits
    edited.write_bytes(Path(laws.__file__).read_bytes() + b"# another law\n")
    monkeypatch.setattr(laws, "__file__", str(edited))
    assert predict.fingerprint(fit_runs, "floor", 300) != cache["fingerprint"]
    monkeypatch.undo()
    # the runs of both seeds trained by two train.py versions: still each setting at two seeds (the band's noise),
    # three pairs of trunks (the two wsd runs at 3e-3 share 700 updates)
    assert validation.fitted_noise(list(fits.values()))[1] == 3
    for seeds in ((1337, 1339), (1338, 1339)):  # the validation's other fits: 1339's runs are of the newer train.py
        assert validation.fitted_noise([(None, predict.recipe_runs(runs, seeds))])[1] == 3


def test_a_prediction_ends_with_its_final_loss_and_band(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    predict.main(["--schedule=wsd", "--max_steps=2400", "--cooldown_shape=linear", "--eval_interval=600"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("floor law, the recommended fit (cached): seed 1337: 4 runs; seed 1338: 4 runs")
    final, low, high = map(float, re.fullmatch(r"final val_loss: (\d\.\d{4}) \(band: (\d\.\d{4})-(\d\.\d{4})\)",
                                               lines[-1]).groups())
    assert low < final < high
    fits, _ = predict.recommended_fits("floor", predict.committed_runs())
    asked = dict(next(iter(fits.values()))[1][0]["cfg"], schedule="wsd", max_steps=2400, cooldown_shape="linear",
                 cooldown_steps=None, eval_interval=600)
    each = [laws.predict_losses(fit, asked, [600, 1200, 1800, 2400]) for fit, _ in fits.values()]
    assert final == pytest.approx(np.mean([p[-1] for p in each]), abs=5e-5)  # the mean of the seeds' fits
    for i, (step, line) in enumerate(zip((600, 1200, 1800, 2400), lines[-6:-2])):
        assert line.startswith(f"  step {step}: {np.mean([p[i] for p in each]):.4f} (")
    assert lines[-2] == ("note: 2400 steps is past the longest fitted run (1200): the band holds the seed noise of the "
                         "fitted runs, and seeds drift further apart in longer runs (docs/predict.md)")
    predict.main(["--schedule=wsd", "--max_steps=1200", "--eval_interval=600"])  # within the fitted lengths: no note
    assert capsys.readouterr().out.strip().splitlines()[-2].startswith("  step 1200: ")
    predict.main(["--schedule=wsd", "--max_steps=2400", "--eval_interval=250"])  # from step 250, before fit_from=300
    assert capsys.readouterr().out.strip().splitlines()[-3:-1] == [
        "note: the law was fitted to val losses from step 300 on (fit_from): it does not describe the steps before",
        "note: 2400 steps is past the longest fitted run (1200): the band holds the seed noise of the fitted runs, and "
        "seeds drift further apart in longer runs (docs/predict.md)"]
    predict.main(["--schedule=wsd", "--max_steps=1200", "--eval_interval=300"])  # from step 300: no note
    assert capsys.readouterr().out.strip().splitlines()[-2].startswith("  step 1200: ")


# ---------------------------------------------------------------------------------------------------------
# the user's runs


def test_user_runs_are_fitted_per_seed_and_predict_with_a_band(tmp_path, capsys):
    write_recipe(tmp_path)
    predict.main([f"--fit={tmp_path}", "--schedule=wsd", "--max_steps=400", "--cooldown_shape=linear"])
    out = capsys.readouterr().out
    assert "floor law fitted to --fit: seed 1: 3 runs; seed 2: 3 runs" in out
    final, low, high = map(float, re.search(r"final val_loss: (\S+) \(band: (\S+)-(\S+)\)\n$", out).groups())
    truth = laws.predict_losses(dict(law="floor", params=FLOOR), dict(BASE, cooldown_shape="linear"), [400])[0]
    assert final == pytest.approx(truth * 1.0015, rel=2e-3)  # the two seeds' levels, 0 and 0.3 % above the law
    assert low < truth and truth * 1.003 < high  # both seeds' levels inside the band
    assert high - low < 0.03  # 2 x t(0.95, 1.8 degrees of freedom) x 0.31 % (test_validation has the formula)


def test_one_seed_is_fitted_with_a_warning_that_its_band_is_the_prediction_itself(tmp_path, capsys):
    write_recipe(tmp_path, seeds=(1,))
    predict.main([f"--fit={tmp_path}", "--max_steps=400"])
    out = capsys.readouterr().out
    assert out.startswith("warning: the fit runs are of one seed: the band holds neither fit uncertainty nor seed "
                          "noise (only the law's misfit of the fitted runs' final losses); fit runs of two seeds for a "
                          "band\n")
    last = out.strip().splitlines()[-1]
    final, low, high = re.fullmatch(r"final val_loss: (\S+) \(band: (\S+)-(\S+)\)", last).groups()
    assert final == low == high


def test_the_user_s_runs_are_fitted_from_ten_warmups_unless_fit_from_says_and_unusable_ones_named(tmp_path):
    write_recipe(tmp_path / "runs", seeds=(1,))
    args = dict(parse_args([], predict.SETTINGS), fit=[str(tmp_path / "runs")])
    fits, warnings, runs = predict.user_fits(args)
    assert [fit["fit_from"] for fit, _ in fits.values()] == [200]  # 10 x warmup_steps=20
    assert len(runs) == 3 and warnings == ["warning: the fit runs are of one seed: the band holds neither fit "
                                           "uncertainty nor seed noise (only the law's misfit of the fitted runs' "
                                           "final losses); fit runs of two seeds for a band"]
    fits, _, _ = predict.user_fits(dict(args, fit_from=0))
    assert [fit["fit_from"] for fit, _ in fits.values()] == [0]
    stopped = write_run(tmp_path / "stopped" / "a", max_steps=400)
    (stopped / "metrics.jsonl").write_text("".join(line + "\n" for line in (stopped / "metrics.jsonl").read_text()
                                                   .splitlines()[:5]))  # killed at step 40
    write_run(tmp_path / "stopped" / "b", optimizer="adamw_schedulefree")
    with pytest.raises(ConfigError) as info:
        predict.user_fits(dict(args, fit=[str(tmp_path / "stopped")]))
    assert str(info.value) == (f"no usable finished run under --fit (skipped {tmp_path / 'stopped' / 'a'}: it did not "
                               f"reach max_steps; skipped {tmp_path / 'stopped' / 'b'}: its optimizer "
                               f"adamw_schedulefree sets its own LR)")


def test_the_validation_writes_its_table_json_and_figure(tmp_path, capsys):
    write_recipe(tmp_path / "runs", seeds=(1, 2, 3))
    predict.main([f"--fit={tmp_path / 'runs'}", "--validate", f"--out={tmp_path / 'out'}"])
    out = capsys.readouterr().out
    document = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert set(document["fits"]) == {"1", "2", "3"} and len(document["rows"]) == 9
    assert {tuple(r["seeds"]) for r in document["rows"]} == {(2, 3), (1, 3), (1, 2)}  # never its own seed
    assert all(r["relation"] == "held out" for r in document["rows"])
    assert all(abs(r["error"]) < 0.01 for r in document["rows"])  # the law made these curves
    table = (tmp_path / "out" / "validation.md").read_text()
    assert "\n| relation | family | steps | peak lr | runs |" in table and table in out
    assert (tmp_path / "out" / "predict_validation.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "predict_validation.pdf").stat().st_size > 10_000


def test_the_written_table_keeps_the_fits_warnings_and_marks_losses_no_fit_predicts(tmp_path, monkeypatch, capsys):
    write_recipe(tmp_path / "runs", seeds=(1, 2, 3))
    fit_each_seed = validation.fit_each_seed
    said = "warning: the floor fit of seed 1 did not converge (stopped): its parameters may be far from the best"
    monkeypatch.setattr(validation, "fit_each_seed", lambda *args: (fit_each_seed(*args)[0], [said]))
    predictions = validation.fit_predictions  # one run's curve predicted as nan, as a degenerate fit can
    monkeypatch.setattr(validation, "fit_predictions", lambda fitted, cfg, steps: predictions(fitted, cfg, steps) * (
        np.nan if cfg["schedule"] == "cosine" else 1.0))
    predict.main([f"--fit={tmp_path / 'runs'}", "--validate", f"--out={tmp_path / 'out'}"])
    table = (tmp_path / "out" / "validation.md").read_text().splitlines()
    assert table[0] == said  # the file says what the screen said: a reader of the table sees the fits failed
    cosine = next(line for line in table if line.startswith("| held out | cosine |"))
    assert cosine.split(" | ")[5:7] == ["n/a / n/a", "n/a / n/a (n/a)"] and cosine.split(" | ")[10] == "no"
    assert re.fullmatch(r"\d\.\d\d% \(3\) \|", cosine.split(" | ")[11])  # the stand-in: measured runs, finite
    assert "| wsd | 400 |" in "\n".join(table) and "n/a" not in next(line for line in table if "| wsd |" in line)
    assert table[-1] == "n/a: a fit predicts no finite loss at some of the cell's steps (a fit that did not converge)"
    assert capsys.readouterr().out.startswith(said)


# ---------------------------------------------------------------------------------------------------------
# input errors: one line, before any fit


def test_bad_input_is_one_line_before_any_fit(tmp_path):
    write_run(tmp_path / "a", schedule="wsd")
    write_run(tmp_path / "b", schedule="wsd", batch_size=32)
    with pytest.raises(ConfigError, match=rf"^runs {tmp_path / 'a'} and {tmp_path / 'b'} differ in batch_size "
                                          r"\(16 vs 32\): fit runs of one model, data and batch$"):
        predict.main([f"--fit={tmp_path}"])
    for name, fingerprint in (("c", "c" * 64), ("d", "d" * 64), ("e", None)):  # the same settings, other data
        write_run(tmp_path / "data" / name, schedule="wsd", seed=ord(name))
        config = tmp_path / "data" / name / "config.json"
        if fingerprint:
            config.write_text(json.dumps(dict(json.loads(config.read_text()), data={"fingerprint": fingerprint})))
    with pytest.raises(ConfigError, match=rf"^runs {tmp_path / 'data' / 'c'} and {tmp_path / 'data' / 'd'} differ in "
                                          r"data \('cccccccccccccccc' vs 'dddddddddddddddd'\): fit runs of one model"):
        predict.main([f"--fit={tmp_path / 'data'}"])
    write_run(tmp_path / "flat" / "one", schedule="constant")
    write_run(tmp_path / "flat" / "two", schedule="constant", lr=1e-3)
    with pytest.raises(ConfigError, match=r"^the fit runs never lower the LR after the warmup \(constant LR only\)"):
        predict.main([f"--fit={tmp_path / 'flat'}"])
    with pytest.raises(ConfigError, match=r"nothing. is not a folder$"):
        predict.main([f"--fit={tmp_path / 'nothing'}"])
    for argv, message in ((["--law=power"], r"^law='power': must be one of floor, mpl, tissue$"),
                          (["--schedule=cosine_wsd"], r"^schedule='cosine_wsd': must be one of cosine, wsd, linear, constant$"),
                          (["--cooldown_shape=1-x^-1"], r"cooldown_shape"),
                          (["--cooldown_frac=1.5"], r"^cooldown_frac=1.5: must be in \(0, 1\]$"),
                          (["--lr=-1"], r"^lr=-1.0: must be > 0 or None$"),
                          (["--fit_from=-5"], r"^fit_from=-5: must be >= 0"),
                          (["--learning_rate=1e-3"], r"^unknown config key 'learning_rate': nanoGPT's learning_rate is lr here")):
        with pytest.raises(ConfigError, match=message):
            predict.main([f"--fit={tmp_path / 'a'}", *argv])
    done = subprocess.run([sys.executable, "predict.py", f"--fit={tmp_path / 'a'}", "--law=power"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr == "error: law='power': must be one of floor, mpl, tissue\n"


# ---------------------------------------------------------------------------------------------------------
# schedule design


def final_loss(fits, cfg, cooldown, exponent):
    asked = dict(cfg, schedule="wsd", cooldown_steps=cooldown, cooldown_shape=f"1-x^{exponent:.3g}")
    return validation.predict_with_band(fits, asked, [cfg["max_steps"]])[0][0]


def test_optimize_finds_the_best_cooldown_of_an_exhaustive_search():
    # two fits: the mean of their predictions is minimised (the band's edges would have other minima)
    fits = [(dict(law="floor", params=FLOOR, misfit=0.0), []),
            (dict(law="floor", params=dict(FLOOR, F=0.1, x0=6.0), misfit=0.0), [])]
    cfg = dict(BASE, max_steps=300, schedule="cosine")
    best = predict.optimal_cooldown(fits, cfg)
    assert best == dict(cfg, schedule="wsd", cooldown_steps=best["cooldown_steps"],
                        cooldown_shape=best["cooldown_shape"])  # a wsd schedule; the rest of cfg as asked
    found = final_loss(fits, cfg, best["cooldown_steps"], float(best["cooldown_shape"][4:]))
    grid = {(c, a): final_loss(fits, cfg, c, a) for c in range(10, 281, 15) for a in np.geomspace(0.1, 10, 13)}
    (cooldown, exponent), _ = min(grid.items(), key=lambda item: item[1])
    # then every whole-step cooldown and 21 exponents around the coarse grid's best
    fine = {(c, a): final_loss(fits, cfg, c, a) for c in range(max(cooldown - 14, 1), min(cooldown + 15, 281))
            for a in np.geomspace(exponent / 1.5, exponent * 1.5, 21)}
    # the landscape is flat near its minimum (neighbouring whole-step cooldowns 1e-6 apart): within 1e-5 of the
    # exhaustive search's best, a thousandth of the seed noise; the coarse grid's best alone is 2e-4 off
    assert found <= min(fine.values()) + 1e-5
    assert found < final_loss(fits, cfg, 60, 0.5) - 1e-4  # better than the default 20 % 1-sqrt
    argv = predict.train_command(best).split()[2:]  # the printed settings are a schedule train.py runs
    printed = parse_args(argv, settings.SETTINGS)
    validate_schedule(**{k: printed[k] for k in predict.SCHEDULE_KEYS})
    assert printed["cooldown_steps"] == best["cooldown_steps"] and printed["cooldown_shape"] == best["cooldown_shape"]


def test_the_best_cooldown_stays_inside_the_run_and_its_shapes():
    # no floor: lowering the LR only slows progress, so the shortest and gentlest cooldown searched is best
    no_floor = [(dict(law="floor", params=dict(FLOOR, F=0.0), misfit=0.0), [])]
    best = predict.optimal_cooldown(no_floor, dict(BASE, max_steps=300))
    assert (best["cooldown_steps"], best["cooldown_shape"]) == (1, "1-x^0.1")
    # a floor that relaxes over 300 steps at the peak LR: the longest cooldown, from the end of the warmup
    slow = [(dict(law="floor", params=dict(FLOOR, F=3.0, x0=300.0), misfit=0.0), [])]
    assert predict.optimal_cooldown(slow, dict(BASE, max_steps=300))["cooldown_steps"] == 280
    assert predict.optimal_cooldown(no_floor, dict(BASE, max_steps=21))["cooldown_steps"] == 1  # one step left
    with pytest.raises(ConfigError) as info:
        predict.optimal_cooldown(no_floor, dict(BASE, max_steps=20))
    assert str(info.value) == "max_steps=20 leaves no step after the warmup (warmup_steps=20) to cool down"


@pytest.mark.parametrize("x, cooldown, shape", [((0.0, np.log(0.01)), 1, "1-x^0.1"),  # below one step, A < 0.1
                                                  ((2.0, np.log(100.0)), 280, "1-x^10"),  # past the run, A > 10
                                                  ((0.5, np.log(2.0)), 150, "1-x^2")])
def test_the_search_spans_one_step_to_the_whole_run_and_its_proposal_is_clipped_to_them(monkeypatch, x, cooldown,
                                                                                        shape):
    searched = {}

    def search(final, ranges, **kwargs):  # scipy's brute, as predict.py calls it: where it searches, what it returns
        searched.update(ranges=ranges, final=final(np.array(x)))
        return np.array(x)
    monkeypatch.setattr(predict, "brute", search)
    fits = [(dict(law="floor", params=FLOOR, misfit=0.0), [])]
    best = predict.optimal_cooldown(fits, dict(BASE, max_steps=300))  # warmup 20: at most 280 steps of cooldown
    assert (best["cooldown_steps"], best["cooldown_shape"]) == (cooldown, shape)
    assert searched["ranges"] == ((1 / 300, 280 / 300), (np.log(0.1), np.log(10.0)))
    assert searched["final"] == final_loss(fits, dict(BASE, max_steps=300), cooldown, float(shape[4:]))


def test_the_command_line_s_schedule_and_what_it_prints():
    first = dict(BASE, optimizer="adamw", cooldown_frac=0.5)  # the first fitted run's config
    args = parse_args(["--schedule=cosine", "--max_steps=600", "--cycle_steps=300"], predict.SETTINGS)
    assert predict.asked_schedule(args, first) == dict(
        first, schedule="cosine", max_steps=600, warmup_steps=20, cooldown_frac=0.2, cooldown_steps=None,
        cooldown_shape="1-sqrt", final_lr_frac=None, cycle_steps=300, lr=3e-3, eval_interval=20)
    asked = predict.asked_schedule(parse_args(["--lr=1e-3", "--warmup_steps=5", "--eval_interval=7"],
                                              predict.SETTINGS), dict(first, optimizer="adamw_schedulefree"))
    assert (asked["optimizer"], asked["lr"], asked["warmup_steps"], asked["eval_interval"]) == ("adamw", 1e-3, 5, 7)
    with pytest.raises(ConfigError, match=r"^cooldown_steps=500: the cooldown is longer than the run \(max_steps=200\)$"):
        predict.asked_schedule(parse_args(["--cooldown_steps=500"], predict.SETTINGS), first)  # train.py's default
    with pytest.raises(ConfigError) as info:  # a first run's own setting that no schedule can use
        predict.asked_schedule(parse_args([], predict.SETTINGS), dict(first, eval_interval=0))
    assert str(info.value) == "eval_interval must be > 0, got 0"
    assert predict.describe(dict(BASE, schedule="wsd", max_steps=600, cooldown_shape="linear")) == (
        "wsd linear cooldown 480->600")  # the default 20 % cooldown
    assert predict.describe(dict(BASE, schedule="wsd", cooldown_steps=99, cooldown_shape="1-x^2")) == (
        "wsd 1-x^2 cooldown 301->400")
    assert predict.describe(dict(BASE, schedule="cosine", cycle_steps=200)) == "cosine 400 cycle 200"
    assert predict.describe(dict(BASE, schedule="cosine")) == "cosine 400"
    assert predict.train_command(dict(BASE, schedule="wsd", cooldown_steps=99, cooldown_shape="1-x^2")) == (
        "python train.py --batch_size=16 --seq_len=64 --eval_interval=20 --schedule=wsd --max_steps=400 --lr=0.003 "
        "--warmup_steps=20 --cooldown_steps=99 --cooldown_shape=1-x^2")  # final_lr_frac None: not printed
    # the fitted runs' setup where it is not train.py's default: their model, optimizer, dtype and validation set
    fitted = dict(BASE, model="124m", dtype="bfloat16", weight_decay=0.0, eval_tokens=4096, schedule="wsd")
    assert predict.train_command(fitted).startswith(
        "python train.py --model=124m --batch_size=16 --seq_len=64 --weight_decay=0.0 --dtype=bfloat16 "
        "--eval_tokens=4096 --eval_interval=20 --schedule=wsd --max_steps=400 ")
    assert predict.split_repeated(["--fit=a", "--law=mpl", "--fit=runs=old", "--fit", "-h"]) == (
        {"fit": ["a", "runs=old"]}, ["--law=mpl", "--fit", "-h"])  # a folder's name may hold '=' 


def test_the_recommended_fit_is_cached_with_what_it_was_fitted_to(tmp_path, monkeypatch):
    # a small recipe (three runs of 400 steps per seed) and its own cache file
    write_recipe(tmp_path / "runs", seeds=predict.FIT_SEEDS)
    runs = streams.load_runs([tmp_path / "runs"])
    monkeypatch.setattr(predict, "RECIPE", (dict(schedule="wsd", lr=3e-3), dict(schedule="cosine"), dict(lr=1e-3)))
    monkeypatch.setattr(predict, "FIT_FROM", 100)
    monkeypatch.setattr(predict, "CACHE", tmp_path / "predict" / "fit.json")
    predict.CACHE.parent.mkdir()
    predict.CACHE.write_text(json.dumps({"mpl": {"fingerprint": "x"}}))  # another law's entry
    fits, how = predict.recommended_fits("floor", runs)
    assert how == "fitted now: the cache is missing or was computed from other runs; --validate rewrites it"
    names = {seed: [str(tmp_path / "runs" / f"{n}_seed{seed}") for n in ("wsd", "cosine", "low")]
             for seed in predict.FIT_SEEDS}
    assert list(fits) == [(1337, 1337), (1338, 1338)]
    for (seed, _), (fit, group) in fits.items():
        assert [r["name"] for r in group] == names[seed] and (fit["law"], fit["fit_from"]) == ("floor", 100)
    assert fits[(1337, 1337)][0]["params"]["A"] == pytest.approx(FLOOR["A"], rel=0.05)  # the law's own curves
    predict.write_cache(fits, "floor")
    document = json.loads(predict.CACHE.read_text())
    by_name = {r["name"]: r for r in runs}
    fit_runs = [by_name[name] for seed in predict.FIT_SEEDS for name in names[seed]]  # the recipe's order
    assert document == {"mpl": {"fingerprint": "x"}, "floor": dict(
        fingerprint=predict.fingerprint(fit_runs, "floor", 100), fit_from=100, runs=names[1337] + names[1338],
        fits={"1337": json.loads(json.dumps(fits[(1337, 1337)][0])), "1338": json.loads(json.dumps(
            fits[(1338, 1338)][0]))})}
    cached, how = predict.recommended_fits("floor", runs)
    assert how == "cached" and list(cached) == list(fits)
    assert [(fit, [r["name"] for r in group]) for fit, group in cached.values()] == [
        (document["floor"]["fits"][str(seed)], names[seed]) for seed in predict.FIT_SEEDS]
    predict.CACHE.unlink()
    assert predict.recommended_fits("floor", runs)[1].startswith("fitted now")


def test_the_registered_predictions_state_the_committed_runs_final_losses():
    """results/predict/preregistered.md: every measured loss it states is the final val loss of the registered run
    its row names, at seed 1341 or 1342; every such run is stated; a row that says its runs are in band has them
    inside the band it gives, and one that says no has one outside."""
    text = (REPO / "results" / "predict" / "preregistered.md").read_text()
    registered = re.findall(r"^\| ([\w.-]+) \| `--schedule", text, re.M)
    assert len(registered) == 8 == len(set(registered))
    finals = {(name, seed): round(float(streams.load_run(
        REPO / "results" / "predict" / f"prereg_{name}_seed{seed}")["losses"][-1]), 4)
        for name in registered for seed in (1341, 1342)}
    stated = set()
    for name, rest in re.findall(r"^\| ([\w.-]+) \| (\d\.\d{4} \(.*)$", text, re.M):
        low, high = map(float, re.match(r"\d\.\d{4} \((\d\.\d{4})-(\d\.\d{4})\)", rest).groups())
        measured = [float(x) for x in re.findall(r"\| (\d\.\d{4})(?= \|)", rest)]
        assert measured, name
        for value in measured:
            seeds = [seed for seed in (1341, 1342) if finals.get((name, seed)) == value]
            assert seeds, (name, value)
            stated.add((name, seeds[0]))
        inside = [low <= value <= high for value in measured]
        assert ("| yes |" in rest and all(inside)) or ("| no |" in rest and not all(inside)), name
    assert stated == set(finals)
