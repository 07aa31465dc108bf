"""train.py end to end on a tiny model: learning, logged schedule, checkpoints, branching, resume, errors."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import train
from helpers import REPO, TINY_MODEL, fake_clock, fingerprint_of, write_char_folder
from lab import checkpoint, data, settings
from lab.config import ConfigError
from lab.data import DataError
from schedules import ScheduleError, lr_multiplier


TIMING = {"tokens_per_s": None, "mfu": None, "elapsed_s": None}  # `record | TIMING` ignores the timing fields


def run(tmp_path, name, data, *extra):
    out = tmp_path / name
    train.main([*TINY_MODEL, f"--data_dir={data}", f"--out_dir={out}", *extra])
    return out


def out_dir_holding(out, source, step):
    """A new out_dir with only `source`'s checkpoint of `step`: resuming there replays `source` from that step."""
    out.mkdir()
    shutil.copytree(checkpoint.path_for(source, step), checkpoint.path_for(out, step))
    return out


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def tokens(folder, split):
    return (folder / f"{split}_0000.bin").stat().st_size // 2


def train_losses(out):
    return {r["step"]: r["train_loss"] for r in metrics(out) if "train_loss" in r}


def test_run_learns_and_logs_its_schedule(tmp_path, tiny_data):
    out = run(tmp_path, "run", tiny_data, "--max_steps=80", "--lr=3e-3", "--schedule=wsd", "--cooldown_frac=0.25",
              "--cooldown_shape=1-sqrt", "--log_interval=1", "--eval_interval=25", "--batch_size=32")
    records = metrics(out)
    vals = {r["step"]: r["val_loss"] for r in records if "val_loss" in r}
    assert sorted(vals) == [0, 25, 50, 60, 75, 80]  # every eval_interval, the cooldown start and the end
    assert vals[80] < vals[0] - 2  # from ~ln(320) = 5.8 down to byte-level structure
    assert vals[80] < vals[60]  # the cooldown helps
    schedule = dict(schedule="wsd", max_steps=80, warmup_steps=4, cooldown_frac=0.25, cooldown_shape="1-sqrt")
    trained = [r for r in records if "lr" in r]
    assert [r["step"] for r in trained] == list(range(1, 81))
    for r in trained:  # the LR of the update that produced step s is the schedule at index s - 1
        assert r["lr"] == 3e-3 * lr_multiplier(r["step"] - 1, **schedule)
        assert r["tokens"] == r["step"] * 32 * 64
    info = json.loads((out / "config.json").read_text())
    assert info["config"]["max_steps"] == 80 and info["tokenizer"] == "bytes" and info["origin"] is None
    assert info["data"] == dict(dir=str(tiny_data), fingerprint=fingerprint_of(tiny_data), tokenizer="bytes",
                                vocab_size=257, tokens=dict(train=tokens(tiny_data, "train"), val=4096), source=None)
    weights = checkpoint.load(out / "ckpt_0000080")["model"]
    assert weights["lm_head.weight"].data_ptr() == weights["tok_emb.weight"].data_ptr()  # still tied
    assert info["params"] == sum({w.data_ptr(): w.numel() for w in weights.values()}.values())


def test_branch_from_checkpoint_matches_uninterrupted_run(tmp_path, tiny_data):
    common = ["--max_steps=30", "--schedule=wsd", "--cooldown_steps=10", "--log_interval=1", "--eval_interval=10"]
    full = run(tmp_path, "full", tiny_data, *common, "--ckpt_interval=10", "--keep_ckpt_steps=[10, 20]")
    branch = run(tmp_path, "branch", tiny_data, *common, f"--init_from={full / 'ckpt_0000020'}")
    expected = {s: v for s, v in train_losses(full).items() if s > 20}
    assert train_losses(branch) == expected  # bitwise: same data, optimizer state, schedule
    assert metrics(branch)[-1]["val_loss"] == metrics(full)[-1]["val_loss"]
    origin = {"checkpoint": str(full / "ckpt_0000020"), "out_dir": str(full), "step": 20}
    assert json.loads((branch / "config.json").read_text())["origin"] == origin
    first = metrics(branch)[0]  # the branch point, evaluated, with where it came from
    assert first["step"] == 20 and first["origin"] == origin
    assert first["val_loss"] == next(r["val_loss"] for r in metrics(full) if r["step"] == 20)
    assert (full / "ckpt_0000020").exists()  # the source run is left untouched


def test_cooldown_branch_off_constant_trunk_equals_single_wsd_run(tmp_path, tiny_data):
    """The paper's trick: constant LR to step k, then a cooldown branch == one wsd run cooling from k."""
    trunk = run(tmp_path, "trunk", tiny_data, "--max_steps=30", "--schedule=constant", "--log_interval=1",
                "--keep_ckpt_steps=[18]")
    branch = run(tmp_path, "branch", tiny_data, "--max_steps=24", "--schedule=wsd", "--cooldown_steps=6",
                 "--log_interval=1", f"--init_from={trunk / 'ckpt_0000018'}")
    single = run(tmp_path, "single", tiny_data, "--max_steps=24", "--schedule=wsd", "--cooldown_steps=6",
                 "--log_interval=1")
    assert {s: v for s, v in train_losses(single).items() if s <= 18} == \
        {s: v for s, v in train_losses(trunk).items() if s <= 18}
    assert train_losses(branch) == {s: v for s, v in train_losses(single).items() if s > 18}


def test_a_requeued_command_continues_its_run_exactly_and_leaves_a_finished_run_alone(tmp_path, tiny_data):
    """What a scheduler's requeue does: SIGTERM, then the same command again. With init_from=auto the command that
    started the run continues it, with the losses of a run that never stopped (bitwise); run once more after the
    run finished, it says so and exits 0, training nothing and writing nothing."""
    out = tmp_path / "run"
    steps = ["--max_steps=12", "--log_interval=1", "--eval_interval=100", "--ckpt_interval=100"]
    command = [*TINY_MODEL, f"--data_dir={tiny_data}", *steps, f"--out_dir={out}", "--init_from=auto"]
    # the first run sends itself SIGTERM while it trains step 5 (tests/torchrun_fault.py), and stops after step 6
    stopped = subprocess.run([sys.executable, str(REPO / "tests" / "torchrun_fault.py"), *command], capture_output=True,
                             text=True, env=dict(os.environ, FAULT="sigterm:0:5"))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped by a signal after step 6; checkpoint saved, continue with --init_from=resume or auto" in \
        stopped.stdout
    assert [step for step, _ in checkpoint.list_checkpoints(out)] == [6] and metrics(out)[-1]["step"] == 6
    train.main(command)  # the requeued job
    reference = run(tmp_path, "reference", tiny_data, *steps)
    assert train_losses(out) == train_losses(reference)
    assert [r | TIMING for r in metrics(out)] == [r | TIMING for r in metrics(reference)]
    assert [(e["event"], e["step"]) for e in json.loads((out / "config.json").read_text())["history"]] == [
        ("start", 0), ("resume", 6)]
    files = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.rglob("*") if path.is_file()}
    again = subprocess.run([sys.executable, str(REPO / "train.py"), *command], capture_output=True, text=True)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, f"{out} holds a finished run (step 12): nothing to train\n", "")
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.rglob("*") if path.is_file()} == files


def test_checkpoints_are_pruned_but_permanent_ones_kept(tmp_path, tiny_data):
    out = run(tmp_path, "run", tiny_data, "--max_steps=12", "--ckpt_interval=2", "--keep_last_ckpts=2",
              "--keep_ckpt_steps=[4]", "--eval_interval=100")
    assert [s for s, _ in checkpoint.list_checkpoints(out)] == [4, 10, 12]
    state = checkpoint.load(out / "ckpt_0000012")
    assert state["step"] == 12
    assert state["data"] == {"seed": 1337, "next_step": 12, "fingerprint": fingerprint_of(tiny_data)}
    assert set(state) >= {"model", "optimizer", "config", "rng", "model_config"}


@pytest.mark.parametrize("args, error, message", [
    (["--max_stepz=5"], ConfigError, "unknown config key 'max_stepz' (did you mean 'max_steps'?)"),
    (["--lr=fast"], ConfigError, "config key 'lr' expects float, got 'fast'"),
    (["--compile=1"], ConfigError, "config key 'compile' expects bool"),
    (["configs/nope.py"], ConfigError, "config file 'configs/nope.py' does not exist"),
    (["--model=7b"], ConfigError, "model='7b': must be one of 33m, 53m, "),
    (["--n_head=3"], ConfigError, "n_embd 64 is not divisible by n_head 3"),
    (["--batch_size=6", "--micro_batch_size=4"], ConfigError,
     "micro_batch_size=4 does not divide the 6 sequences per process (batch_size=6 over 1 processes)"),
    (["--max_steps=10", "--cooldown_steps=20"], ScheduleError, "cooldown_steps=20"),
    (["--cooldown_shape=1-cube"], ScheduleError, "1-cube"),
    (["--optimizer=sgd"], ConfigError, "optimizer='sgd': must be one of adamw, adamw_schedulefree"),
    (["--optimizer=adamw_schedulefree"], ConfigError, "set schedule=constant"),
    (["--init_from=missing.pt"], checkpoint.CheckpointError, "checkpoint missing.pt does not exist"),
    (["--init_from=resume"], checkpoint.CheckpointError, "holds no checkpoint"),
    (["--eval_tokens=100000"], DataError, "eval_tokens=100000 needs 1562 windows of seq_len + 1 = 65 validation "
                                          "tokens but the dataset has 4096 tokens (63 windows)"),
])
def test_bad_config_is_one_clear_error(tmp_path, tiny_data, args, error, message):
    with pytest.raises(error) as info:
        train.main([*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'out'}", "--max_steps=10", *args])
    assert message in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing written before the error


def test_out_dir_of_another_run_is_refused_and_kept(tmp_path, tiny_data):
    out = run(tmp_path, "run", tiny_data, "--max_steps=8")
    before = (out / "metrics.jsonl").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        run(tmp_path, "run", tiny_data, "--max_steps=12")
    assert (out / "metrics.jsonl").read_bytes() == before and (out / "ckpt_0000008").exists()


def test_checkpoint_of_another_model_shape_is_refused(tmp_path, tiny_data):
    out = run(tmp_path, "run", tiny_data, "--max_steps=8")
    with pytest.raises(checkpoint.CheckpointError, match=r"does not match this run's model: n_layer=2 \(this run: 3\)"):
        run(tmp_path, "other", tiny_data, "--max_steps=12", "--n_layer=3", f"--init_from={out / 'ckpt_0000008'}")


def test_corrupt_checkpoint_names_the_previous_good_one(tmp_path, tiny_data):
    out = run(tmp_path, "run", tiny_data, "--max_steps=6", "--ckpt_interval=3", "--eval_interval=100")
    shard = next((out / "ckpt_0000006").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:1000])  # truncated
    with pytest.raises(checkpoint.CheckpointError) as info:
        run(tmp_path, "run", tiny_data, "--max_steps=9", "--init_from=resume")
    assert "ckpt_0000006 is corrupt" in str(info.value) and "ckpt_0000003" in str(info.value)


def test_command_line_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "configs/cpu_tiny.py", "--lrr=1",
                             f"--out_dir={tmp_path / 'x'}"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: unknown config key 'lrr' (did you mean 'lr'?)\n"
    missing = tmp_path / "nodata" / "stdlib-bytes"
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "configs/cpu_tiny.py", f"--data_dir={missing}",
                             f"--out_dir={tmp_path / 'x'}"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: no prepared dataset in {missing}")
    assert f"`python prepare_data.py --dataset=stdlib --tokenizer=bytes --out_dir={missing}`" in result.stderr


def test_sample_prints_text_from_a_run(tmp_path, tiny_data, capsys):
    import sample
    from model import GPT, GPTConfig
    out = run(tmp_path, "run", tiny_data, "--max_steps=8")
    capsys.readouterr()  # drop the training log
    sample.main([f"--ckpt={out}", "--start=def ", "--max_new_tokens=20", "--temperature=0"])
    text = capsys.readouterr().out.split("\n" + "-" * 40)[0]
    state = checkpoint.load(out / "ckpt_0000008")
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    from lab.evaluation import autocast_for
    run_dtype = json.loads((out / "config.json").read_text())["config"]["dtype"]  # dtype=auto samples in it
    with autocast_for(torch.device("cpu"), getattr(torch, run_dtype)):
        ids = model.eval().generate(torch.tensor([list(b"def ")]), 20, temperature=0)[0].tolist()
    assert len(ids) == 24
    assert text == bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
    # bad input: one clear line each, before any sampling
    for args, message in ((["--top_k=0"], "top_k=0: must be >= 1 or None"),
                          (["--temperature=-1"], "temperature=-1.0: must be >= 0"),
                          (["--device=cuda:64"], "device=cuda:64: "),  # no CUDA here, or fewer GPUs than 65
                          (["--dtype=fp8"], "dtype='fp8': must be one of auto, float32, bfloat16, float16")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            sample.main([f"--ckpt={out}", *args])
    (out / "config.json").write_text('{"tokenizer": "bytes2"}')
    with pytest.raises(ConfigError, match="unknown tokenizer 'bytes2'"):
        sample.main([f"--ckpt={out}"])


def test_sample_decodes_a_char_level_nanogpt_run_with_its_vocabulary(tmp_path, capsys):
    """nanoGPT's shakespeare_char layout: the run learns meta.pkl's 27 characters, records them, and sample.py encodes
    the prompt and decodes the tokens with them, as nanoGPT's sample.py does."""
    import pickle
    import sample
    from model import GPT, GPTConfig
    chars = write_char_folder(tmp_path / "chars", "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40)
    out = run(tmp_path, "run", tmp_path / "chars", "--max_steps=6", "--eval_tokens=192", "--seq_len=32")
    info = json.loads((out / "config.json").read_text())
    assert info["tokenizer"] == "chars" and info["vocab_size"] == 27 and info["data"]["vocabulary"] == chars
    itos = pickle.loads((tmp_path / "chars" / "meta.pkl").read_bytes())["itos"]
    capsys.readouterr()
    sample.main([f"--ckpt={out}", "--start=First", "--max_new_tokens=12", "--temperature=0"])
    text = capsys.readouterr().out.split("\n" + "-" * 40)[0]
    state = checkpoint.load(out / "ckpt_0000006")
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    prompt = [chars.index(c) for c in "First"]
    ids = model.eval().generate(torch.tensor([prompt]), 12, temperature=0)[0].tolist()
    assert text == "".join(itos[i] for i in ids if i in itos) and text.startswith("First")
    with pytest.raises(ConfigError, match=r"^start holds characters outside the run's vocabulary of 27: 'QZ'$"):
        sample.main([f"--ckpt={out}", "--start=ZQ"])


def test_two_processes_and_micro_batches_match_one_process(tmp_path, tiny_data):
    """The global batch is the same whatever the split: torchrun x2 (gloo) and micro-batches of 4 agree with one
    process up to float32 summation order (measured differences ~1e-7; tolerance 1e-5), SWA averages included;
    both resume exactly."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=8", "--log_interval=1", "--eval_interval=4",
              "--dtype=float32", "--swa=True", "--swa_interval=1", "--swa_window=4"]
    single = run(tmp_path, "single", tiny_data, *common)
    accum = run(tmp_path, "accum", tiny_data, *common, "--micro_batch_size=4", "--keep_ckpt_steps=[4]")
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def torchrun(*args):
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                 str(REPO / "train.py"), *common, *args], capture_output=True, text=True, env=env,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "x2" in result.stdout  # the run really used two processes

    torchrun(f"--out_dir={tmp_path / 'ddp'}", "--keep_ckpt_steps=[4]")
    reference = metrics(single)
    for other in (metrics(accum), metrics(tmp_path / "ddp")):
        assert [r["step"] for r in other] == [r["step"] for r in reference]
        for mine, theirs in zip(other, reference):
            for key in ("train_loss", "val_loss", "val_loss_swa"):
                if key in theirs:
                    assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=0)
    # two processes resume exactly too
    out_dir_holding(tmp_path / "ddp_resumed", tmp_path / "ddp", 4)
    torchrun(f"--out_dir={tmp_path / 'ddp_resumed'}", "--init_from=resume")
    assert train_losses(tmp_path / "ddp_resumed") == {s: v for s, v in train_losses(tmp_path / "ddp").items() if s > 4}
    assert metrics(tmp_path / "ddp_resumed")[-1] | TIMING == metrics(tmp_path / "ddp")[-1] | TIMING
    # and so does gradient accumulation
    accum_resumed = out_dir_holding(tmp_path / "accum_resumed", accum, 4)
    run(tmp_path, "accum_resumed", tiny_data, *common, "--micro_batch_size=4", "--init_from=resume")
    assert train_losses(accum_resumed) == {s: v for s, v in train_losses(accum).items() if s > 4}


def test_schedule_free_learns_evaluates_its_average_and_resumes_exactly(tmp_path, tiny_data):
    common = ["--optimizer=adamw_schedulefree", "--schedule=constant", "--beta1=0.95", "--beta2=0.99",
              "--lr=3e-3", "--log_interval=1", "--eval_interval=10", "--dtype=float32"]
    full = run(tmp_path, "full", tiny_data, *common, "--max_steps=20", "--keep_ckpt_steps=[10]")
    records = metrics(full)
    assert records[-1]["val_loss"] < records[0]["val_loss"] - 1.0
    assert [r["lr"] for r in records[1:5]] == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)])  # its own warmup
    # the logged val loss is that of the averaged (eval-mode) weights, which are also what the checkpoint holds
    state = checkpoint.load(full / "ckpt_0000020")
    from model import GPT, GPTConfig
    from lab.data import Dataset
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    x, y = Dataset(tiny_data).val_windows(2048, 64)
    with torch.no_grad():
        assert model(x, y)[1].item() == pytest.approx(records[-1]["val_loss"], rel=1e-6)
    # resuming from step 10 repeats steps 11-20 bitwise
    resumed = out_dir_holding(tmp_path / "resumed", full, 10)
    run(tmp_path, "resumed", tiny_data, *common, "--max_steps=20", "--init_from=resume")
    assert train_losses(resumed) == {s: v for s, v in train_losses(full).items() if s > 10}


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data):
    with pytest.raises(FloatingPointError) as info:
        run(tmp_path, "run", tiny_data, "--max_steps=40", "--lr=1e6", "--grad_clip=0", "--ckpt_interval=1",
            "--log_interval=10", "--dtype=float32")
    bad_step = int(re.search(r"non-finite (?:training loss at|weights after) step (\d+);", str(info.value))[1])
    (last_step, last), = checkpoint.list_checkpoints(tmp_path / "run")[-1:]
    assert last_step < bad_step and f"the last good checkpoint {last} is kept" in str(info.value)
    weights = checkpoint.load(last)["model"]
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_shard_of_the_wrong_size_is_refused(tmp_path, tiny_data):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken)
    with open(broken / "train_0000.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(DataError, match=r"train_0000.bin has \d+ bytes but meta.json says \d+ tokens"):
        run(tmp_path, "run", broken, "--max_steps=8")


def test_weight_averages_are_logged_saved_and_resume_exactly(tmp_path, tiny_data):
    common = ["--max_steps=30", "--schedule=constant", "--log_interval=5", "--eval_interval=10", "--swa=True",
              "--swa_interval=2", "--swa_window=10", "--ema=True", "--ema_decay=0.9"]
    full = run(tmp_path, "full", tiny_data, *common, "--keep_ckpt_steps=[15]")
    plain = run(tmp_path, "plain", tiny_data, "--max_steps=30", "--schedule=constant", "--log_interval=5",
                "--eval_interval=10")
    evals = [r for r in metrics(full) if "val_loss" in r]
    assert [("val_loss_swa" in r, "val_loss_ema" in r) for r in evals] == [(False, True)] + [(True, True)] * 3
    # evaluating the averages leaves training untouched
    assert [r["val_loss"] for r in evals] == [r["val_loss"] for r in metrics(plain) if "val_loss" in r]
    assert evals[-1]["val_loss_swa"] != evals[-1]["val_loss"] != evals[-1]["val_loss_ema"]
    swa_file = torch.load(full / "swa.pt", weights_only=True)
    assert swa_file["step"] == 30 and swa_file["average"]["snapshots"] == 5
    resumed = out_dir_holding(tmp_path / "resumed", full, 15)
    run(tmp_path, "resumed", tiny_data, *common, "--init_from=resume")
    timing = ("tokens_per_s", "mfu", "elapsed_s")
    after = [{k: v for k, v in r.items() if k not in timing} for out in (full, resumed) for r in metrics(out)
             if r["step"] > 15]
    assert len(after) == 6 and after[:3] == after[3:]  # losses and averages' losses, bitwise
    # a weight file is not a training checkpoint: one clear error, not a KeyError deep in the set-up
    with pytest.raises(checkpoint.CheckpointError, match="swa.pt holds no optimizer, scaler, rng, config: a weight file"):
        run(tmp_path, "from_weights", tiny_data, *common, "--max_steps=40", f"--init_from={full / 'swa.pt'}")
    # replacing the run removes its averages too: they would pass for the new run's
    run(tmp_path, "full", tiny_data, "--max_steps=6", "--schedule=constant", "--overwrite=True")
    assert not (full / "swa.pt").exists() and not (full / "ema.pt").exists()
    assert metrics(full)[0]["step"] == 0 and metrics(full)[-1]["step"] == 6


def test_batch_splits_over_processes_then_micro_batches():
    cfg = dict(settings.DEFAULTS, batch_size=30)
    assert settings.micro_batching(cfg, world_size=2) == (15, 1)  # 15 sequences each, one forward
    assert settings.micro_batching(dict(cfg, micro_batch_size=5), world_size=3) == (5, 2)
    paper = dict(cfg, batch_size=200, micro_batch_size=25)
    assert [settings.micro_batching(paper, n) for n in (1, 2, 4, 8)] == [(25, 8), (25, 4), (25, 2), (25, 1)]
    at_most = dict(paper, micro_batch_size=50)  # the paper configs': 4 x 50 on one GPU, 1 x 25 on each of 8
    assert [settings.micro_batching(at_most, n) for n in (1, 2, 4, 8)] == [(50, 4), (50, 2), (50, 1), (25, 1)]
    with pytest.raises(ConfigError, match=r"batch_size=30 does not split evenly over 4 processes"):
        settings.check_config(cfg, world_size=4)
    with pytest.raises(ConfigError, match=r"micro_batch_size=4 does not divide the 10 sequences per process "
                                          r"\(batch_size=30 over 3 processes\)"):
        settings.check_config(dict(cfg, micro_batch_size=4), world_size=3)


def test_tokens_per_s_leaves_out_checkpoint_time(tmp_path, tiny_data, monkeypatch):
    """A checkpoint written after a log line used to count in the next window's time. On a fake clock each update
    takes 1 s and each checkpoint 100 s: every window of 2 updates is 2 s, whatever the machine's speed."""
    now, save = fake_clock(monkeypatch, 1.0), checkpoint.save

    def slow_save(*args):
        now[0] += 100.0
        return save(*args)

    monkeypatch.setattr(checkpoint, "save", slow_save)
    out = run(tmp_path, "run", tiny_data, "--max_steps=8", "--log_interval=2", "--ckpt_interval=2",
              "--eval_interval=100")
    timed = metrics(out)[1:]
    assert [r["step"] for r in timed] == [2, 4, 6, 8]
    assert [r["tokens_per_s"] for r in timed] == [2 * 8 * 64 / 2.0] * 4  # 8 sequences of 64 tokens a step
    assert [r["elapsed_s"] for r in timed] == [2.0, 104.0, 206.0, 308.0]  # the wall time: checkpoints included


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path, tiny_data, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")  # as torchrun sets it; no process group is made
    from lab import perf  # the probe's answer of a CPU with bf16 units, whatever this one has: dtype=auto is bfloat16
    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: {"float32": 1e11, "bfloat16": 4e11})
    out = tmp_path / "out"
    train.main([*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={out}", "--batch_size=16",
                "--micro_batch_size=2", "--max_steps=100", "--dry_run=True", "--dtype=auto"])
    lines = capsys.readouterr().out.splitlines()
    assert not out.exists()
    assert lines[1].startswith("processes: 4 (WORLD_SIZE), device cpu, bfloat16 (auto: the CPU's bf16 matmuls are 4.0x")
    assert lines[2] == "micro-batch: 2 sequences x grad_accum 2 per process (batch 16 x 64 tokens = 1,024 tokens per step)"
    assert re.fullmatch(r"parameters: 0\.\d+M \(0\.\d+M without the embedding\)", lines[3])
    assert re.fullmatch(r"FLOPs per token: [\d.]+M \(Chinchilla count\), [\d.]+M \(6N\), forward and backward", lines[4])
    assert lines[5].startswith("tokens: 0.102M in 100 steps, ")
    assert re.match(r"memory: ~[\d.]+ GB per device \(weights [\d.e-]+ GB, gradients [\d.e-]+ GB, optimizer "
                    r"[\d.e-]+ GB, activations [\d.e-]+ GB\)", lines[6])
    assert lines[-1].startswith("time: ~") and "MFU" in lines[-1]
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="batch_size=16 does not split evenly over 3 processes"):
        train.main([*TINY_MODEL, f"--data_dir={tiny_data}", "--batch_size=16", "--dry_run=True"])


@pytest.mark.parametrize("world_size", [1, 8])
@pytest.mark.parametrize("argv", [["configs/124m_cooldown.py"], ["configs/210m_swa_constant.py"],
                                  ["configs/360m.py", "configs/paper.py", "--model=360m"],
                                  ["configs/1b_cooldown.py"], ["configs/8b_cooldown.py"], ["configs/8b_cosine.py"]],
                         ids=lambda a: a[-1].removeprefix("--model=").removeprefix("configs/"))
def test_the_paper_and_billion_configs_fit_an_80_gb_gpu(argv, world_size, capsys, monkeypatch):
    """The plan of every large config, on 1 GPU and on 8, within 80 GB less 10 GB of headroom; the 8B model
    only with FSDP on 8 (on one GPU its weights and AdamW state alone are ~118 GB)."""
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    train.main([*argv, "--device=cuda", "--dry_run=True"])
    memory = re.search(r"^memory: ~([\d.]+) GB per device", capsys.readouterr().out, re.M)
    fits = float(memory.group(1)) <= 70
    assert fits == (world_size == 8 or "8b" not in argv[0]), memory.group(0)


def test_data_seed_changes_the_data_order_and_nothing_else(tmp_path, tiny_data, monkeypatch):
    seen = []
    batch = data.Dataset.train_batch
    monkeypatch.setattr(data.Dataset, "train_batch",
                        lambda self, step, seed, *args, **kwargs: seen.append(seed) or batch(self, step, seed, *args,
                                                                                              **kwargs))
    common = ["--max_steps=4", "--eval_interval=4", "--log_interval=1", "--schedule=constant"]
    runs = {name: run(tmp_path, name, tiny_data, *common, *extra) for name, extra in
            (("seed", ["--seed=3"]), ("order", ["--seed=3", "--data_seed=4"]), ("both", ["--seed=4"]))}
    assert seen == [3] * 4 + [4] * 4 + [4] * 4  # data_seed, when set, orders the data; else the seed does
    first = {name: checkpoint.load(checkpoint.path_for(out, 4)) for name, out in runs.items()}
    assert first["order"]["data"] == dict(seed=4, next_step=4, fingerprint=fingerprint_of(tiny_data))
    assert first["order"]["config"]["seed"] == 3
    # the same initialization as seed 3 (its loss before any step), the data of seed 4: three different runs
    assert len({json.dumps(train_losses(out)) for out in runs.values()}) == 3
    initial = {name: metrics(out)[0]["val_loss"] for name, out in runs.items()}
    assert initial["seed"] == initial["order"] != initial["both"]


def test_a_resumed_run_continues_the_random_stream(tmp_path, tiny_data, monkeypatch):
    """Nothing in training draws random numbers today; a draw per step (as dropout would) makes the RNG's restore
    observable: the resumed run's draws are the uninterrupted run's, and without the restore they are not."""
    draws, step = [], train.train_step

    def drawing_step(run_, index, loss_sum):
        draws.append((index, torch.rand(1).item()))
        return step(run_, index, loss_sum)

    monkeypatch.setattr(train, "train_step", drawing_step)
    full = run(tmp_path, "full", tiny_data, "--max_steps=8", "--ckpt_interval=4", "--schedule=constant")
    uninterrupted = dict(draws)
    draws.clear()
    resumed = out_dir_holding(tmp_path / "resumed", full, 4)
    run(tmp_path, "resumed", tiny_data, "--max_steps=8", "--init_from=resume", "--schedule=constant")
    assert sorted(dict(draws)) == [4, 5, 6, 7] and dict(draws) == {s: uninterrupted[s] for s in range(4, 8)}
    saved = checkpoint.load(checkpoint.path_for(resumed, 4))["rng"]
    torch.set_rng_state(saved)  # the saved state is the one the draws continue from
    assert torch.rand(1).item() == uninterrupted[4]
