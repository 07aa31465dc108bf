"""Tests for swa.py: the online SWA average against hand-computed means, window restarts, fp32 averages of a bf16
model, bitwise resume, EMA against its recurrence, swapped_weights, offline averaging of a fake run, and merges
with a cooldown's coefficients (WSM) against hand-computed ones."""
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import REPO, fingerprint_of
from lab import checkpoint
from lab.config import ConfigError
from lab.data import Dataset
from lab.settings import DEFAULTS
from model import GPT, GPTConfig
from swa import EMA, SWA, average_checkpoints, main, merge_weights, swapped_weights, unwrap

# A running fp32 mean of n snapshots rounds once per fold, each time by at most 2^-24 relative to the
# magnitudes involved, so it stays within n * 2^-24 * max|w| of the exact (float64) mean; weights here are
# below 1 in magnitude and n <= 10, so 1e-6 is a bound with room to spare (and well below bf16's 2^-9).
ATOL = 1e-6


def tiny_gpt(seed=0, vocab_size=64, dtype=torch.float32):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16, ffw_size=32)
    return GPT(config).to(dtype)


@torch.no_grad()
def take_step(model, step):
    """A stand-in for an optimizer step: a deterministic move of every parameter, different at each step."""
    generator = torch.Generator().manual_seed(step)
    for p in model.parameters():
        p.add_(0.01 * torch.randn(p.shape, generator=generator).to(p.dtype))


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def mean_of(snapshots):
    return {k: torch.stack([s[k].double() for s in snapshots]).mean(0) for k in snapshots[0]}


def assert_close(average, expected):
    assert set(average) == set(expected)
    for k in expected:
        assert average[k].dtype == torch.float32
        torch.testing.assert_close(average[k].double(), expected[k], rtol=0, atol=ATOL)


def run_swa(model, swa, steps, on_step=None):
    """Train for `steps`, folding as train.py does; returns the snapshot at every step (step 0: the init)."""
    snaps = {0: snapshot(model)}
    for step in steps:
        take_step(model, step)
        swa.update(step, model)
        snaps[step] = snapshot(model)
        if on_step:
            on_step(step)
    return snaps


def test_online_average_equals_hand_computed_mean():
    model = tiny_gpt()
    swa = SWA(model, interval=3, window=30)
    snaps = run_swa(model, swa, range(1, 31))
    assert swa.completed_window() == (0, 10)
    assert_close(swa.completed(), mean_of([snaps[s] for s in range(3, 31, 3)]))
    # the average really moved: it differs from both the last weights and the first snapshot
    emb = swa.completed()["tok_emb.weight"]
    assert (emb - snaps[30]["tok_emb.weight"]).abs().max() > 1e-3
    # tied embedding/head: one averaged tensor under both names
    assert swa.completed()["lm_head.weight"] is emb


def test_windows_restart_exactly_at_window_ends():
    model = tiny_gpt()
    swa = SWA(model, interval=2, window=6)
    seen = {}

    def record(step):
        completed = swa.completed()
        seen[step] = None if completed is None else {k: v.clone() for k, v in completed.items()}

    snaps = run_swa(model, swa, range(1, 19), record)
    assert all(seen[s] is None for s in range(1, 6))  # nothing to evaluate before the first window ends
    window1, window2, window3 = (mean_of([snaps[s] for s in steps]) for steps in ((2, 4, 6), (8, 10, 12),
                                                                                  (14, 16, 18)))
    for step in range(6, 12):
        assert_close(seen[step], window1)
    for step in range(12, 18):  # window 3's folds reuse window 1's buffer: window 2's average must stay intact
        assert_close(seen[step], window2)
    assert_close(seen[18], window3)
    assert swa.completed_window() == (2, 3)


def test_swa_created_inside_a_window_completes_with_what_it_saw():
    model = tiny_gpt()
    for step in range(1, 9):
        take_step(model, step)
    swa = SWA(model, interval=2, window=6)  # e.g. a branch from step 8 of a run without SWA
    snaps = run_swa(model, swa, range(9, 13))
    assert_close(swa.completed(), mean_of([snaps[10], snaps[12]]))


def test_average_of_a_bf16_model_is_fp32():
    model = tiny_gpt(dtype=torch.bfloat16)
    swa = SWA(model, interval=1, window=7)
    snaps = run_swa(model, swa, range(1, 8))
    expected = mean_of([snaps[s] for s in range(1, 8)])
    assert_close(swa.completed(), expected)
    # the mean of 7 bf16 values is not a bf16 value: rounding it to bf16 would break the tolerance
    rounded = expected["tok_emb.weight"].to(torch.bfloat16).double()
    assert (rounded - expected["tok_emb.weight"]).abs().max() > 10 * ATOL


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_states_equal(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("resume_at", [7, 12, 16])  # mid-window before/after a completed window; at a window end
def test_resume_continues_bitwise(tmp_path, resume_at):
    model, resumed_model = tiny_gpt(), tiny_gpt()
    swa, ema = SWA(model, interval=2, window=6), EMA(model, decay=0.9, interval=2)

    def update_both(step):
        ema.update(step, model)

    run_swa(model, swa, range(1, resume_at + 1), update_both)
    torch.save(dict(model=model.state_dict(), swa=swa.state_dict(), ema=ema.state_dict()), tmp_path / "ckpt.pt")
    run_swa(model, swa, range(resume_at + 1, 25), update_both)

    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed_model.load_state_dict(state["model"])
    resumed_swa, resumed_ema = SWA(resumed_model, 2, 6), EMA(resumed_model, 0.9, 2)
    resumed_swa.load_state_dict(state["swa"])
    resumed_ema.load_state_dict(state["ema"])
    # at once, before any update: the completed window the checkpoint held (none before step 6)
    assert resumed_swa.completed_window() == (None if resume_at < 6 else ((resume_at // 6) - 1, 3))
    if resume_at >= 6:
        completed = resumed_swa.completed()  # with the tied head's alias besides the saved tensors
        assert all(torch.equal(completed[k], v) for k, v in state["swa"]["completed"].items())
    else:
        assert resumed_swa.completed() is None
    run_swa(resumed_model, resumed_swa, range(resume_at + 1, 25), lambda s: resumed_ema.update(s, resumed_model))
    assert_states_equal(swa.state_dict(), resumed_swa.state_dict())
    assert_states_equal(ema.state_dict(), resumed_ema.state_dict())


def test_resume_refuses_other_settings():
    model, other = tiny_gpt(), torch.nn.Linear(3, 3)
    keep = ": keep the setting or start without the average$"
    for mine, saved, message in (
            (SWA(model, 2, 10), SWA(model, 2, 6), "SWA average used window=6, this run window=10"),
            (SWA(model, 3, 6), SWA(model, 2, 6), "SWA average used interval=2, this run interval=3"),
            (EMA(model, 0.99, 1), EMA(model, 0.9, 1), "EMA average used decay=0.9, this run decay=0.99"),
            (EMA(model, 0.9, 2), EMA(model, 0.9, 1), "EMA average used interval=1, this run interval=2")):
        with pytest.raises(checkpoint.CheckpointError, match=f"^the checkpoint's {message}{keep}"):
            mine.load_state_dict(saved.state_dict())
    for mine, saved, what in ((SWA(model, 2, 6), SWA(other, 2, 6), "SWA"),
                              (EMA(model, 0.9, 1), EMA(other, 0.9, 1), "EMA")):
        with pytest.raises(checkpoint.CheckpointError, match=f"^the checkpoint's {what} average does not hold this "
                                                             "model's tensors$"):
            mine.load_state_dict(saved.state_dict())
    completed = SWA(model, 1, 1)
    completed.update(1, model)
    state = completed.state_dict()
    state["completed"] = SWA(other, 1, 1).state_dict()["current"]  # the running window right, the completed one not
    with pytest.raises(checkpoint.CheckpointError, match="^the checkpoint's SWA average does not hold this model"):
        SWA(model, 1, 1).load_state_dict(state)


def test_the_state_saved_before_the_first_update_and_after_a_window_is_empty():
    model = tiny_gpt()
    swa = SWA(model, interval=1, window=2)
    empty = dict(interval=1, window=2, count=0, window_index=None, completed_info=None, completed=None)
    assert {k: v for k, v in swa.state_dict().items() if k != "current"} == empty and swa.completed_window() is None
    run_swa(model, swa, [1, 2])  # window 0 completes at step 2: nothing is running
    state = swa.state_dict()
    assert (state["count"], state["window_index"], state["completed_info"]) == (0, None, (0, 2))


def test_an_swa_resumed_before_any_window_completed_has_no_average():
    model = tiny_gpt()
    resumed = SWA(model, interval=1, window=2)
    resumed.load_state_dict(SWA(model, interval=1, window=2).state_dict())
    assert resumed.completed() is None and resumed.completed_window() is None


def test_a_window_holds_only_its_own_steps_even_when_updates_skip_its_end():
    """Updates at steps 2 and 4 of window 0 (steps 1-6), none at its end, then 8, 10, 12: window 1 is the mean of
    those three alone."""
    model = tiny_gpt()
    swa = SWA(model, interval=2, window=6)
    snaps = run_swa(model, swa, [2, 4, 8, 10, 12])
    assert swa.completed_window() == (1, 3)
    assert_close(swa.completed(), mean_of([snaps[8], snaps[10], snaps[12]]))


def test_bad_settings():
    with pytest.raises(ConfigError, match="multiple of swa_interval"):
        SWA(tiny_gpt(), interval=5, window=12)
    with pytest.raises(ConfigError, match="ema_decay"):
        EMA(tiny_gpt(), decay=1.0, interval=1)
    for interval, window in ((0, 6), (2, 0), (4, 6)):
        with pytest.raises(ConfigError, match=f"^swa_window={window} must be a positive multiple of "
                                              f"swa_interval={interval}$"):
            SWA(tiny_gpt(), interval=interval, window=window)
    model = tiny_gpt()
    ema = EMA(model, decay=0.0, interval=1)  # allowed: the average is the latest weights
    take_step(model, 1)
    ema.update(1, model)
    assert_states_equal(ema.average(), snapshot(model))


def test_ema_equals_its_recurrence():
    model = tiny_gpt()
    ema = EMA(model, decay=0.8, interval=3)
    expected = {k: v.double() for k, v in snapshot(model).items()}  # starts from the weights at creation
    for step in range(1, 14):
        take_step(model, step)
        ema.update(step, model)
        if step % 3 == 0:
            expected = {k: 0.8 * expected[k] + 0.2 * v.double() for k, v in snapshot(model).items()}
    assert ema.updates == 4
    assert_close(ema.average(), expected)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch while importing its compiler
def test_compiled_and_ddp_style_wrappers_are_unwrapped():
    model = tiny_gpt()
    wrapper = torch.nn.Module()
    wrapper.module = torch.compile(model)  # DDP keeps the model in .module; compile in ._orig_mod (lazy: no compile)
    assert unwrap(wrapper) is model
    swa = SWA(wrapper, interval=1, window=1)
    take_step(model, 1)
    swa.update(1, wrapper)
    assert set(swa.completed()) == set(model.state_dict())
    assert all(torch.equal(swa.completed()[k], v) for k, v in model.state_dict().items())


def test_swapped_weights_evaluates_the_average_and_restores_bitwise():
    model = tiny_gpt(dtype=torch.bfloat16)
    swa = SWA(model, interval=1, window=4)
    run_swa(model, swa, range(1, 5))
    take_step(model, 5)
    training = snapshot(model)
    x = torch.randint(0, 64, (2, 16))
    with swapped_weights(model, swa.completed()):
        inside = snapshot(model)
        loss_inside = model(x, x)[1]
    for k, v in swa.completed().items():
        assert torch.equal(inside[k], v.to(torch.bfloat16))
    assert_states_equal(training, snapshot(model))
    assert not torch.equal(loss_inside, model(x, x)[1])
    with pytest.raises(RuntimeError, match="boom"), swapped_weights(model, swa.completed()):
        raise RuntimeError("boom")  # an error during evaluation must not leave the average in the model
    assert_states_equal(training, snapshot(model))
    with pytest.raises(ValueError, match="no averaged weights"), swapped_weights(model, None):
        pass


# ---- offline averaging of a finished run ----

SEQ_LEN, EVAL_TOKENS = 16, 16 * 6


def fake_run(tmp_path, steps=(100, 200, 300, 400)):
    """A run dir with a bytes dataset, config.json and one checkpoint (a different tiny model) per step."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    shards = {}
    for split, tokens in (("train", 4000), ("val", 1000)):
        rng.integers(0, 257, tokens, dtype=np.uint16).tofile(data_dir / f"{split}_0000.bin")
        shards[split] = [{"file": f"{split}_0000.bin", "tokens": tokens}]
    meta = dict(format="uint16-shards-v1", tokenizer="bytes", vocab_size=257, eot_token=256, dtype="uint16",
                shard_tokens=10**8, shards=shards, tokens={"train": 4000, "val": 1000})
    (data_dir / "meta.json").write_text(json.dumps(meta))
    run = tmp_path / "run"
    run.mkdir()
    config = dict(DEFAULTS, out_dir=str(run), data_dir=str(data_dir), seq_len=SEQ_LEN, eval_tokens=EVAL_TOKENS,
                  eval_batch_size=4, dtype="float32")
    (run / "config.json").write_text(json.dumps(dict(config=config)))
    models = {}
    for step in steps:
        models[step] = tiny_gpt(seed=step, vocab_size=320)
        checkpoint.save(dict(model=models[step].state_dict(), step=step, config=config,
                             model_config=models[step].config.__dict__), run, step)
    return run, data_dir, models


def val_loss(model, data_dir):
    """The loss over the validation windows (lab/data.py's choice, as train.py evaluates them), computed here in one
    batch (train.py's evaluate batches it)."""
    inputs, targets = Dataset(data_dir).val_windows(EVAL_TOKENS, SEQ_LEN)
    with torch.no_grad():
        logits, _ = model(inputs)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1)).item()


def test_offline_average_of_checkpoints(tmp_path, capsys):
    run, data_dir, models = fake_run(tmp_path)
    out = tmp_path / "swa.pt"
    losses = main([f"--run={run}", "--start_step=150", "--end_step=400", f"--out={out}", "--device=cpu"])
    saved = torch.load(out, weights_only=True)
    assert saved["step"] == 400 and saved["average"]["steps"] == [200, 300, 400]
    assert saved["model_config"] == models[400].config.__dict__
    assert_close(saved["model"], mean_of([models[s].state_dict() for s in (200, 300, 400)]))
    averaged = GPT(GPTConfig(**saved["model_config"]))
    averaged.load_state_dict(saved["model"])
    assert losses["average"] == pytest.approx(val_loss(averaged, data_dir), abs=1e-5)
    assert losses["last"] == pytest.approx(val_loss(models[400], data_dir), abs=1e-5)
    assert losses["average"] != pytest.approx(losses["last"], abs=1e-4)
    printed = capsys.readouterr().out
    assert "steps 200, 300, 400" in printed
    assert f"val loss {losses['average']:.4f} of the average" in printed
    assert f"{losses['last']:.4f} of the last checkpoint (step 400)" in printed
    # the weight file is a checkpoint as far as sample.py is concerned
    assert checkpoint.load(out)["step"] == 400
    # a start step on a checkpoint includes it: the run's first checkpoint counts as much as the others
    first_out = tmp_path / "swa_first.pt"  # a new file: swa.py never replaces one
    first = main([f"--run={run}", "--start_step=100", "--end_step=200", f"--out={first_out}", "--device=cpu"])
    saved = torch.load(first_out, weights_only=True)
    assert first["steps"] == saved["average"]["steps"] == [100, 200] and first["coefficients"] == [0.5, 0.5]
    assert_close(saved["model"], mean_of([models[100].state_dict(), models[200].state_dict()]))


def test_offline_evaluation_reads_the_data_the_run_read(tmp_path):
    """The run's data_dir prepared again (other tokens, another fingerprint) is refused unless --data_dir says so."""
    run, data_dir, _ = fake_run(tmp_path, steps=(100, 200))
    read = fingerprint_of(data_dir)
    info = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(info, data=dict(fingerprint=read))))
    main([f"--run={run}", "--device=cpu"])
    (data_dir / "val_0000.bin").write_bytes((np.arange(1000, dtype="<u2") % 257).tobytes())
    with pytest.raises(ConfigError) as refused:
        main([f"--run={run}", "--device=cpu"])
    assert str(refused.value) == (f"{run} read data {read[:16]}, but its data_dir {data_dir} now holds "
                                  f"{fingerprint_of(data_dir)[:16]}: give --data_dir=<the data it read>, or another "
                                  f"on purpose")
    assert main([f"--run={run}", "--device=cpu", f"--data_dir={data_dir}"])["steps"] == [100, 200]


def test_offline_bad_inputs(tmp_path):
    run, _, _ = fake_run(tmp_path, steps=(100, 200))
    with pytest.raises(ConfigError, match=r"no checkpoint of .* lies in steps \[300, end\]; it has 100, 200"):
        main([f"--run={run}", "--start_step=300", "--device=cpu"])
    with pytest.raises(ConfigError, match=r"--out=.*missing/swa.pt: folder .*missing does not exist"):
        main([f"--run={run}", f"--out={tmp_path / 'missing' / 'swa.pt'}", "--device=cpu"])
    with pytest.raises(ConfigError, match="dtype='half': must be one of auto, float32, bfloat16, float16"):
        main([f"--run={run}", "--device=cpu", "--dtype=half"])
    (tmp_path / "kept.pt").write_text("yours")  # --out never replaces a file: a checkpoint, a weight file
    with pytest.raises(ConfigError, match=r"^--out=.*kept.pt exists: give a new file$"):
        main([f"--run={run}", f"--out={tmp_path / 'kept.pt'}", "--device=cpu"])
    assert (tmp_path / "kept.pt").read_text() == "yours"
    (run / "config.json").write_text('{"config": ')  # cut short
    with pytest.raises(ConfigError, match=r"cannot read .*config.json"):
        main([f"--run={run}", "--device=cpu"])
    # through the command line: one line on stderr, no traceback
    result = subprocess.run([sys.executable, "swa.py", f"--run={tmp_path / 'nothing'}"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr == f"error: no run in '{tmp_path / 'nothing'}' (no config.json): give --run=<a train.py " \
                            f"out_dir>\n"


# ---- merging checkpoints with a cooldown's coefficients (WSM) ----

def test_merge_coefficients_by_hand():
    # linear, checkpoints 2 steps apart over a cooldown of K = 6: w_1 = mean(1, 5/6) = 11/12, w_2 = mean(4/6, 3/6)
    # = 7/12, w_3 = mean(2/6, 1/6) = 3/12; c = (1 - w_1, w_1 - w_2, w_2 - w_3, w_3)
    assert merge_weights([0, 2, 4, 6], "linear") == pytest.approx([1 / 12, 4 / 12, 4 / 12, 3 / 12], abs=1e-15)
    # uneven spacing, K = 3: w_1 = 1 (the update of step 0), w_2 = mean(2/3, 1/3) = 1/2
    assert merge_weights([0, 1, 3], "linear") == pytest.approx([0, 1 / 2, 1 / 2], abs=1e-15)
    # 1-sqrt, 1 step apart, K = 4: w_i = 1 - sqrt((i-1)/4) = 1, 1/2, 1 - sqrt(1/2), 1 - sqrt(3)/2
    r2, r3 = math.sqrt(0.5), math.sqrt(3) / 2
    assert merge_weights([0, 1, 2, 3, 4], "1-sqrt") == pytest.approx([0, 0.5, r2 - 0.5, r3 - r2, 1 - r3], abs=1e-15)
    # 1-sqrt, 2 steps apart, K = 4: w_1 = mean(1, 1/2) = 3/4, w_2 = mean(1 - sqrt(2/4), 1 - sqrt(3/4))
    w2 = 1 - (r2 + r3) / 2
    assert merge_weights([0, 2, 4], "1-sqrt") == pytest.approx([1 / 4, 3 / 4 - w2, w2], abs=1e-15)
    assert merge_weights([5, 6, 7], "uniform") == [1.0, 1.0, 1.0] and merge_weights([300], "1-sqrt") == [1.0]
    for shape in ("linear", "1-sqrt", "cosine", "square", "1-x^0.3", "mirror_cosine"):
        for steps in ([240, 260, 280, 300], list(range(960, 1201, 20)), [0, 1, 5, 6, 50]):
            coefficients = merge_weights(steps, shape)
            assert sum(coefficients) == pytest.approx(1.0, abs=1e-12) and min(coefficients) >= 0


def save_checkpoints(model, folder, steps):
    """Checkpoint the model after a take_step at each of `steps`; returns the paths."""
    paths = []
    for step in steps:
        take_step(model, step)
        paths.append(checkpoint.save(dict(model=model.state_dict(), step=step, model_config=model.config.__dict__),
                                     folder, step))
    return paths


def test_uniform_merge_is_the_swa_windows_mean_bitwise(tmp_path):
    model, online = tiny_gpt(), tiny_gpt()
    paths = save_checkpoints(model, tmp_path, [1, 2, 3])
    swa = SWA(online, interval=1, window=3)
    for step in (1, 2, 3):  # the same weights, folded online
        take_step(online, step)
        swa.update(step, online)
    uniform = average_checkpoints(paths, merge_weights([1, 2, 3], "uniform"))[0]
    assert all(torch.equal(uniform[k], v) for k, v in swa.completed().items())
    assert all(torch.equal(uniform[k], v) for k, v in average_checkpoints(paths)[0].items())
    normalised = average_checkpoints(paths, [1 / 3] * 3)[0]  # the coefficients as printed: within rounding
    for k, v in uniform.items():
        torch.testing.assert_close(normalised[k], v, rtol=0, atol=1e-7)
    zero_first = average_checkpoints(paths, [0.0, 1.0, 1.0])[0]  # a merge's c_0 of 0: the mean of the others
    assert_close(zero_first, mean_of([checkpoint.load(path)["model"] for path in paths[1:]]))
    for weights in ([1.0, -0.5, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]):  # negative, no total, one short
        with pytest.raises(ValueError, match="^" + re.escape(f"3 checkpoints need as many weights >= 0 with a positive "
                                                             f"sum, got {weights}") + "$"):
            average_checkpoints(paths, weights)


def test_offline_averages_of_bf16_checkpoints_are_fp32_and_of_one_model_only(tmp_path):
    paths = save_checkpoints(tiny_gpt(dtype=torch.bfloat16), tmp_path / "bf16", [1, 2])
    assert {t.dtype for t in average_checkpoints(paths)[0].values()} == {torch.float32}
    other = save_checkpoints(tiny_gpt(vocab_size=32), tmp_path / "other", [3])
    first, second = (checkpoint.load(path)["model_config"] for path in (paths[0], other[0]))
    with pytest.raises(checkpoint.CheckpointError, match="^" + re.escape(f"{other[0]} holds another model ({second}) "
                                                                         f"than {paths[0]} ({first})") + "$"):
        average_checkpoints([paths[0], other[0]])


def test_merged_weights_are_the_hand_weighted_sum(tmp_path, capsys):
    run, data_dir, models = fake_run(tmp_path)
    out = tmp_path / "merged.pt"
    merged = main([f"--run={run}", "--start_step=200", "--end_step=400", "--merge=linear", f"--out={out}",
                   "--device=cpu"])
    # K = 200, 100 steps apart: w_1 = 1 - 49.5/200 = 0.7525, w_2 = 1 - 149.5/200 = 0.2525
    assert merged["steps"] == [200, 300, 400] and merged["coefficients"] == pytest.approx([0.2475, 0.5, 0.2525])
    states = {s: models[s].state_dict() for s in (200, 300, 400)}
    expected = {k: 0.2475 * states[200][k].double() + 0.5 * states[300][k].double() + 0.2525 * states[400][k].double()
                for k in states[200]}
    saved = torch.load(out, weights_only=True)
    assert_close(saved["model"], expected)
    assert saved["average"]["merge"] == "linear" and saved["average"]["coefficients"] == merged["coefficients"]
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    assert merged["average"] == pytest.approx(val_loss(model, data_dir), abs=1e-5)
    printed = capsys.readouterr().out
    assert "coefficients (linear): 200: 0.2475, 300: 0.5000, 400: 0.2525" in printed
    assert f"val loss {merged['average']:.4f} of the linear merge of steps 200-400" in printed


def test_a_bad_merge_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"--merge=bad: neither 'uniform' nor a cooldown shape \(unknown"):
        main([f"--run={tmp_path}", "--merge=bad"])
    result = subprocess.run([sys.executable, "swa.py", f"--run={tmp_path}", "--merge=1-x^-1"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --merge=1-x^-1: neither 'uniform' nor a cooldown shape (cooldown_shape")
