"""sweep.py: the time estimates, a miniature suite run end to end (results
written, skipped when done, resumed after an interruption, refused when the settings changed), and c9_merge's
merges of a trunk's checkpoints written as results."""
import json
import math
import os
import signal
import subprocess
import sys

import pytest
import torch

import sweep
from helpers import REPO, fingerprint_of
from lab import checkpoint, data, settings, suites
from lab.config import ConfigError
from model import GPT, GPTConfig, flops_per_token
from sweep_mini import mini_suite, tiny_scale


def write_trunk(trunk_dir, data_dir, steps):
    """A finished trunk as train.py leaves it: config.json and a checkpoint of a (different) tiny model per step."""
    trunk_dir.mkdir(parents=True)
    config = dict(settings.DEFAULTS, out_dir=str(trunk_dir), data_dir=str(data_dir), schedule="constant", seq_len=16,
                  eval_tokens=96, eval_batch_size=4, dtype="float32", batch_size=2, max_steps=steps[-1])
    mconf = GPTConfig(vocab_size=320, block_size=16, n_layer=1, n_head=2, n_embd=16, ffw_size=32)
    info = dict(config=config, origin=None, model_config=mconf.__dict__, params=0, flops_per_token=flops_per_token(
        mconf, 16))
    (trunk_dir / "config.json").write_text(json.dumps(info))
    for step in steps:
        torch.manual_seed(step)
        checkpoint.save(dict(model=GPT(mconf).state_dict(), step=step, model_config=mconf.__dict__), trunk_dir, step)


def test_merges_of_the_trunk_are_written_as_results_then_skipped(tmp_path, tiny_data, capsys):
    runs = [suites.Run("trunk", {}), *(suites.Run(f"b{n}", dict(max_steps=n, cooldown_steps=2), trunk="trunk",
                                                branch_step=n - 2) for n in (4, 8))]
    write_trunk(tmp_path / "out" / "c9" / "trunk", tiny_data, [2, 3, 4, 6, 7, 8])
    sweep.merge_trunk("c9", runs, tmp_path / "results", tmp_path / "out", "cpu")
    results = tmp_path / "results" / "c9"
    assert sorted(p.name for p in results.iterdir()) == ["merge-1-sqrt", "merge-linear", "merge-uniform"]
    for shape in sweep.MERGES:
        info = json.loads((results / f"merge-{shape}" / "config.json").read_text())
        assert info["merge"] == dict(shape=shape, trunk=str(tmp_path / "out" / "c9" / "trunk"), windows=[[2, 4], [6, 8]])
        assert info["config"]["schedule"] == "constant"  # the trunk's, as plot.py reads it
        first, second = records(results / f"merge-{shape}" / "metrics.jsonl")
        assert (first["step"], first["merged_steps"], second["merged_steps"]) == (4, [2, 3, 4], [6, 7, 8])
        assert first["tokens"] == 4 * 2 * 16 and first["val_ppl"] == pytest.approx(math.exp(first["val_loss"]))
        assert sum(first["coefficients"]) == pytest.approx(1.0)
        assert (tmp_path / "out" / "c9" / f"merge-{shape}" / "merged_8.pt").is_file()
    # K = 2, 1 step apart: linear w = (1, 1/2) -> c = (0, 1/2, 1/2); uniform 1/3 each
    assert records(results / "merge-linear" / "metrics.jsonl")[1]["coefficients"] == pytest.approx([0, 0.5, 0.5])
    assert records(results / "merge-uniform" / "metrics.jsonl")[0]["coefficients"] == pytest.approx([1 / 3] * 3)
    logged = [records(results / f"merge-{shape}" / "metrics.jsonl") for shape in sweep.MERGES]
    assert len({r["val_loss"] for merge in logged for r in merge}) == 6  # other coefficients, other weights
    assert len({tuple(r["val_loss_last"] for r in merge) for merge in logged}) == 1  # the same trunk checkpoints
    capsys.readouterr()
    sweep.merge_trunk("c9", runs, tmp_path / "results", tmp_path / "out", "cpu")
    assert capsys.readouterr().out.count("done, skipped") == 3


def test_flops_estimate_counts_training_and_evaluation():
    s = sweep.SCALES["cpu"]
    cfg = sweep.run_config(s, "c", suites.Run("r", dict(model="cpu_tiny", max_steps=600)), "out", None)
    per_token = flops_per_token(GPTConfig(vocab_size=320, block_size=256, n_layer=5, n_head=4, n_embd=128,
                                          ffw_size=320), 256)["chinchilla"]
    # 600 steps x 4096 tokens; evaluations at 0, 50, ..., 600 and one more (the cooldown start) of 32768 tokens
    assert sweep.estimate_flops(cfg, 257) == per_token * (600 * 4096 + 14 * 32768 / 3)
    # a branch from step 480, with SWA: evaluations at 500, 550, 600, its start and its cooldown start, doubled
    assert sweep.estimate_flops(dict(cfg, swa=True), 257, start=480) == per_token * (120 * 4096 + 5 * 2 * 32768 / 3)


def estimated_seconds(scale, gflops, capsys, tmp_path):
    entries = sweep.main(["all", f"--scale={scale}", "--plan", f"--gflops={gflops}", f"--results={tmp_path}",
                          "--device=cpu"])
    total = sum(sweep.estimate_flops(cfg, 257, run.branch_step or 0) for _, run, cfg in entries) / (gflops * 1e9)
    assert f"estimated {sweep.duration(total)}" in capsys.readouterr().out
    return total


def test_cpu_scale_takes_under_three_hours_and_quick_under_thirty_minutes(capsys, tmp_path):
    # 195 GFLOP/s: what the 2 cores gave the cpu scale as two one-thread sweep processes (2 h 31 min, README; the
    # issue's target of 2 hours is not met). The bound catches a plan that grows, not a slow machine.
    assert 2 * 60 * 60 < estimated_seconds("cpu", 195, capsys, tmp_path) < 2.75 * 60 * 60
    assert 10 * 60 < estimated_seconds("quick", 150, capsys, tmp_path) < 30 * 60
    assert not list(tmp_path.iterdir())  # a plan writes nothing


def test_compile_is_the_scales_unless_given_and_is_not_what_a_run_is(tmp_path, capsys):
    def planned(scale, *option):
        entries = sweep.main(["c4_cooldown_shapes", f"--scale={scale}", "--plan", "--gflops=100", "--device=cpu",
                              f"--results={tmp_path}", f"--out_root={tmp_path}", *option])
        return {cfg["compile"] for _, _, cfg in entries}
    assert planned("quick") == {False} and planned("paper") == {True}  # configs/paper.py compiles
    assert "torch.compile off" in capsys.readouterr().out.splitlines()[1]
    assert planned("quick", "--compile=True") == {True} and planned("paper", "--compile=False") == {False}
    assert "torch.compile on" in capsys.readouterr().out.splitlines()[1]
    cfg = sweep.run_config(sweep.SCALES["quick"], "c", suites.Run("r", dict(max_steps=100)), "out", None)
    assert sweep.differences(dict(cfg, compile=True), cfg) == []  # a run started eager may resume compiled
    assert not list(tmp_path.iterdir())


def test_bad_command_lines_are_one_line_errors():
    with pytest.raises(ConfigError, match="name one suite: c1_cosine_lengths, .* or all"):
        sweep.main(["c9_nothing", "--plan"])
    with pytest.raises(ConfigError, match=r"^scale='gpu': must be one of cpu, long, quick, paper$"):
        sweep.main(["all", "--scale=gpu", "--plan"])


# ---- a miniature suite, end to end ----

def mini_args(tiny_data, folder):
    return ["mini", "--scale=tiny", f"--data_dir={tiny_data}", f"--results={folder}/results", f"--out_root={folder}/out",
            "--gflops=10"]


@pytest.fixture
def mini(monkeypatch, tiny_data, tmp_path):
    monkeypatch.setitem(sweep.SCALES, "tiny", tiny_scale())
    monkeypatch.setitem(sweep.SUITES, "mini", mini_suite)
    return lambda where="a": sweep.main(mini_args(tiny_data, tmp_path / where))


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_mini_suite_writes_results_then_skips_them(mini, tmp_path, capsys):
    mini()
    results = tmp_path / "a" / "results" / "mini"
    assert sorted(p.name for p in results.iterdir()) == ["constant", "constant-to16-cd4", "cosine_16"]
    for run in results.iterdir():
        assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl"]
    trunk = json.loads((results / "constant" / "config.json").read_text())["config"]
    assert (trunk["schedule"], trunk["max_steps"], trunk["keep_ckpt_steps"]) == ("constant", 12, [12])
    branch = records(results / "constant-to16-cd4" / "metrics.jsonl")
    assert branch[0]["step"] == 12 and branch[0]["origin"]["step"] == 12 and branch[-1]["step"] == 16
    assert branch[0]["val_loss"] == next(r["val_loss"] for r in records(results / "constant" / "metrics.jsonl")
                                         if r["step"] == 12 and "val_loss" in r)
    assert records(results / "cosine_16" / "metrics.jsonl")[-1]["step"] == 16
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sweep: ")]
    assert [line.split(" |")[0] for line in progress] == [f"sweep: {n}/3 runs done" for n in (0, 1, 2, 3)]
    assert progress[-1].endswith("~00:00 left by the plan")  # before each run, and at the end
    mini()
    out = capsys.readouterr().out
    assert all(f"mini/{name}: done, skipped" in out for name in ("cosine_16", "constant", "constant-to16-cd4"))
    assert "starting" not in out and "total: 0 runs to do (3 done)" in out


def test_an_interrupted_run_resumes_where_it_stopped(mini, tmp_path, monkeypatch, capsys):
    batch = data.Dataset.train_batch

    def stop_at_step_5(self, step, *args, **kwargs):  # a SIGTERM arrives while step 5 is in flight
        if step == 5 and not stopped:
            stopped.append(step)
            os.kill(os.getpid(), signal.SIGTERM)
        return batch(self, step, *args, **kwargs)
    stopped = []
    monkeypatch.setattr(data.Dataset, "train_batch", stop_at_step_5)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(sweep.Interrupted, match="mini/cosine_16 stopped before step 16: run the same command again"):
        mini()
    assert not (tmp_path / "a" / "results" / "mini" / "cosine_16").exists()
    assert signal.getsignal(signal.SIGTERM) == handler  # train's handler does not outlive the run
    mini()
    assert "mini/cosine_16: resuming from step 6" in capsys.readouterr().out
    mini("b")  # the same suite, never interrupted
    for run in ("cosine_16", "constant", "constant-to16-cd4"):
        resumed, single = ({r["step"]: r for r in records(tmp_path / w / "results" / "mini" / run / "metrics.jsonl")}
                           for w in ("a", "b"))
        assert max(resumed) == max(single) == (12 if run == "constant" else 16)
        # the same model at every evaluation; training losses average over the steps since the previous log
        # line, which the stop at step 6 moved, so they agree once the logs align again after step 8
        assert [resumed[s].get("val_loss") for s in single] == [single[s].get("val_loss") for s in single]
        assert [resumed[s].get("train_loss") for s in single if s > 8] == [single[s].get("train_loss") for s in single if s > 8]


def test_results_of_other_data_are_refused_before_any_run(mini, tiny_data, tmp_path, capsys):
    """A result (or an out_dir) that read other data: one line naming both fingerprints, before anything trains;
    a result from before fingerprints were recorded is taken as this data's, and counted in a note."""
    ours = fingerprint_of(tiny_data)
    other = tmp_path / "a" / "results" / "c1_cosine_lengths" / "cosine_300"
    other.mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"config": {}, "data": {"fingerprint": "f" * 64}}))
    with pytest.raises(ConfigError) as info:
        mini()
    assert str(info.value) == (f"{other} read other data (ffffffffffffffff) than data_dir={tiny_data} holds "
                               f"({ours[:16]}): give this data its own --results and --out_root")
    assert not (tmp_path / "a" / "out").exists()  # nothing trained
    (other / "config.json").write_text(json.dumps({"config": {}}))  # as the committed results: no fingerprint
    capsys.readouterr()
    sweep.check_results_data([tmp_path / "a" / "results", tmp_path / "a" / "out"], data.Dataset(tiny_data))
    assert capsys.readouterr().out == (f"note: 1 runs in {tmp_path / 'a' / 'results'} and {tmp_path / 'a' / 'out'} "
                                       f"record no data fingerprint (made before they were recorded): taken as runs "
                                       f"on data_dir={tiny_data} ({ours[:16]})\n")


def test_changed_settings_are_refused_and_divergence_is_kept(mini, tmp_path, monkeypatch, capsys):
    mini()
    monkeypatch.setitem(sweep.SUITES, "mini", lambda s: [suites.Run("cosine_16", dict(schedule="cosine", max_steps=16,
                                                                                     lr=1e-3))])
    with pytest.raises(ConfigError, match=r"mini/cosine_16 holds a run with other settings \(lr=0.002 \(planned 0.001\)\)"):
        mini()
    monkeypatch.setitem(sweep.SUITES, "mini", lambda s: [suites.Run("huge_lr", dict(schedule="constant", max_steps=16,
                                                                                   lr=1e30))])
    mini()
    result = tmp_path / "a" / "results" / "mini" / "huge_lr"
    assert "non-finite" in (result / "error.txt").read_text() and records(result / "metrics.jsonl")[-1]["step"] < 16
    assert "diverged (kept with error.txt): mini/huge_lr" in capsys.readouterr().out


def test_a_suite_under_torchrun_is_run_as_rank_0_decides(mini, tmp_path, tiny_data):
    """Rank 0 alone decides skip/resume/start and publishes; the other process follows: the results equal one
    process's, each run is announced once, and a second invocation skips every run on both processes."""
    mini()

    def torchrun():
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                 str(REPO / "tests" / "sweep_mini.py"), *mini_args(tiny_data, tmp_path / "ddp")],
                                capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    out = torchrun()
    for run in ("cosine_16", "constant", "constant-to16-cd4"):
        assert out.count(f"mini/{run}: starting") == 1
        one, two = (records(tmp_path / w / "results" / "mini" / run / "metrics.jsonl") for w in ("a", "ddp"))
        assert [r["step"] for r in two] == [r["step"] for r in one]
        for mine, theirs in zip(two, one):
            for key in ("train_loss", "val_loss"):
                if key in theirs:
                    assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=0)
    assert not list((tmp_path / "ddp" / "results" / "mini").glob("*.partial"))
    out = torchrun()
    assert all(out.count(f"mini/{run}: done, skipped") == 1 for run in ("cosine_16", "constant", "constant-to16-cd4"))
    assert "starting" not in out


def test_publish_renames_a_copy_made_beside_the_result(tmp_path, monkeypatch):
    out_dir, result_dir = tmp_path / "out" / "run", tmp_path / "results" / "suite" / "run"
    out_dir.mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl", "ckpt_0000016"):
        (out_dir / name).write_text(name)
    renames = []
    replace = os.replace
    monkeypatch.setattr(sweep.os, "replace", lambda src, dst: renames.append((src, dst)) or replace(src, dst))
    sweep.publish(out_dir, result_dir, error="non-finite loss")
    # the copy is made in results/, so the rename never crosses file systems (--results on another disk)
    assert renames == [(tmp_path / "results" / "suite" / "run.partial", result_dir)]
    assert {p.name: p.read_text() for p in result_dir.iterdir()} == {
        "config.json": "config.json", "metrics.jsonl": "metrics.jsonl", "error.txt": "non-finite loss\n"}
    assert sorted(p.name for p in result_dir.parent.iterdir()) == ["run"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["ckpt_0000016", "config.json", "metrics.jsonl"]


def test_an_unreadable_config_json_is_a_one_line_error(tmp_path):
    config_json = tmp_path / "config.json"
    config_json.write_text('{"config": ')
    with pytest.raises(ConfigError, match=f"cannot read {config_json}: Expecting value"):
        sweep.check_same_settings(dict(settings.DEFAULTS), config_json)
    config_json.write_text('["config"]')
    with pytest.raises(ConfigError, match=f"{config_json} is not a train.py config.json: delete it"):
        sweep.check_same_settings(dict(settings.DEFAULTS), config_json)


def test_a_run_already_kept_by_another_suite_is_copied_not_trained(mini, tiny_data, tmp_path, monkeypatch, capsys):
    mini()
    trunk = mini_suite(None)[1]
    again = [suites.Run("same_cosine", dict(schedule="cosine", max_steps=16)),  # mini's cosine_16
             suites.Run("other_seed", dict(schedule="cosine", max_steps=16, seed=7)),
             suites.Run("same_trunk", trunk.overrides)]  # mini's trunk, whose checkpoints a branch would need
    monkeypatch.setitem(sweep.SUITES, "again", lambda scale: again)
    capsys.readouterr()
    sweep.main(["again", *mini_args(tiny_data, tmp_path / "a")[1:]])
    out = capsys.readouterr().out
    results = tmp_path / "a" / "results"
    assert f"again/same_cosine: the same run as {results / 'mini' / 'cosine_16'}, copied" in out
    assert "again/same_cosine: starting" not in out and "again/other_seed: starting" in out
    assert "again/same_trunk: starting" in out
    copied = results / "again" / "same_cosine"
    assert (copied / "same_as.txt").read_text().startswith(str(results / "mini" / "cosine_16"))
    assert (copied / "metrics.jsonl").read_text() == (results / "mini" / "cosine_16" / "metrics.jsonl").read_text()
    assert not (tmp_path / "a" / "out" / "again" / "same_cosine").exists()  # nothing trained
    # a branch is never taken for a run from scratch, nor a result of other settings
    assert sweep.same_result(sweep.run_config(sweep.SCALES["tiny"], "x", again[1], "out", str(tiny_data)),
                             results) == results / "again" / "other_seed"
    trunk_cfg = json.loads((results / "mini" / "constant-to16-cd4" / "config.json").read_text())["config"]
    assert sweep.same_result(trunk_cfg, results) is None


def test_a_sweep_computes_in_one_precision_per_results_folder(tmp_path, monkeypatch):
    """dtype=auto in a sweep: the precision of the results already in the folder (the committed bf16 results stay
    bf16 on a CPU that emulates it, with a warning), else the device's own choice; never two in one folder."""
    from lab import perf
    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: {"float32": 1e11, "bfloat16": 3e9})
    cfg = dict(settings.DEFAULTS, model="cpu_130k", batch_size=4, seq_len=16)
    cpu = torch.device("cpu")
    fresh = sweep.results_precision(tmp_path / "none", cfg, cpu, 257)
    assert fresh.dtype == "float32" and fresh.warning is None  # bf16 emulated here: a new folder runs in fp32

    def result(suite, run, dtype):
        (tmp_path / "results" / suite / run).mkdir(parents=True)
        (tmp_path / "results" / suite / run / "config.json").write_text(json.dumps(dict(config=dict(dtype=dtype))))
    result("c1", "a", "bfloat16")
    kept = sweep.results_precision(tmp_path / "results", cfg, cpu, 257)
    assert kept.dtype == "bfloat16" and "that of the results in" in kept.rule and "~33x slower" in kept.warning
    assert sweep.results_precision(tmp_path / "results", dict(cfg, dtype="float16"), cpu, 257).dtype == "float16"
    result("c2", "b", "float32")
    with pytest.raises(ConfigError, match="holds runs in several precisions \\(bfloat16, float32\\)"):
        sweep.results_precision(tmp_path / "results", cfg, cpu, 257)
