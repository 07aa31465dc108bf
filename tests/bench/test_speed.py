"""bench/speed.py on a tiny model for a few steps: the report has every figure and its arithmetic holds together."""
import subprocess
import sys

import pytest

from bench import speed as bench
from helpers import REPO, TINY_MODEL
from lab import perf
from lab.config import parse_args
from model import GPTConfig


def test_nanogpt_formula_matches_a_hand_count():
    # 124M-like shape: 6N + 12 * layers * heads * head_size * seq_len
    mconf = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768, ffw_size=2048)
    assert perf.nanogpt_flops_per_token(mconf, 124_000_000, 1024) == 6 * 124_000_000 + 12 * 12 * 12 * 64 * 1024


def test_loss_agreement_separates_a_gap_from_noise():
    curve = [3.0 - 0.01 * i + (0.02 if i % 2 else -0.02) for i in range(20)]  # a trend plus +-0.02 jitter
    same = bench.loss_agreement(curve, curve)
    assert same["max_gap"] == 0 and same["mean_gap"] == 0
    assert same["step_noise"] == pytest.approx(0.08 / 6 ** 0.5)  # second differences of the jitter: +-0.08
    shifted = bench.loss_agreement([v + 0.1 for v in curve], curve)
    assert shifted["mean_gap"] == pytest.approx(0.1) and shifted["max_gap"] == pytest.approx(0.1)


def test_report_of_a_tiny_run_is_complete_and_consistent(tiny_data):
    argv = TINY_MODEL + [f"--data_dir={tiny_data}", "--steps=3", "--turn_steps=2", "--untimed_steps=1",
                         "--probe_seconds=0.05", "--try_compile=False", "--log_interval=4",
                         "--dtype=bfloat16"]  # not auto: on a CPU without bf16 units auto is float32, with nothing to compare
    r = bench.bench(parse_args(argv, bench.SETTINGS))
    assert r["tokens_per_step"] == 8 * 64 and r["steps"] == 3
    assert r["train_tokens_per_s"] == pytest.approx(r["tokens_per_step"] / (r["step_ms"] / 1e3))
    assert set(r["share"]) == set(bench.PARTS) and sum(r["share"].values()) == pytest.approx(1.0)
    assert all(share >= 0 for share in r["share"].values())
    peak = max(r["peak_tflops"].values()) * 1e12  # the faster precision, whichever the run computes in
    for kind in ("chinchilla", "nanogpt", "six_n"):
        assert r["mfu"][kind] == pytest.approx(r["train_tokens_per_s"] * r["flops_per_token"][kind] / peak)
    assert r["probe_shapes"][0] == (8 * 64, 64, 3 * 64)  # qkv: tokens x n_embd @ n_embd x 3 n_embd
    assert r["eval_over_train"] == pytest.approx(r["eval_tokens_per_s"] / r["train_tokens_per_s"])
    assert r["peak_memory_mb"] > 10
    f = r["fp32"]
    assert len(r["losses"]) == len(f["losses"]) == 3
    assert f["speedup_of_dtype"] == pytest.approx(r["train_tokens_per_s"] / f["train_tokens_per_s"])
    # same weights, same batches: bf16 and fp32 start from the same loss (ln 320 ~ 5.77 at init)
    assert abs(r["losses"][0] - f["losses"][0]) < 0.02 and 5 < r["losses"][0] < 6.5
    assert "compile" not in r


def test_command_line_prints_the_report_and_rejects_unknown_keys(tiny_data):
    argv = ["configs/cpu_tiny.py"] + TINY_MODEL + [f"--data_dir={tiny_data}", "--steps=2", "--turn_steps=2",
                                                   "--untimed_steps=0", "--probe_seconds=0.05", "--fp32=False",
                                                   "--try_compile=False"]
    out = subprocess.run([sys.executable, "-m", "bench.speed", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for field in ("training:", "MFU", "step time:", "data", "forward_backward", "optimizer", "logging",
                  "evaluation:", "peak memory:", "peak:"):
        assert field in out.stdout
    bad = subprocess.run([sys.executable, "-m", "bench.speed", "--stepz=3"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and "did you mean 'steps'" in bad.stderr and "Traceback" not in bad.stderr
    # 2048 tokens of 64 make 32 validation windows: too few for one evaluation batch of 64
    few = subprocess.run([sys.executable, "-m", "bench.speed", *argv, "--eval_batch_size=64"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert few.returncode == 1 and "Traceback" not in few.stderr
    assert "32 validation windows, fewer than eval_batch_size=64" in few.stderr


def test_schedule_free_steps_as_in_train_py(tmp_path, tiny_data):
    """bench/speed.py's steps are train.py's: same weights, batches and optimizer, so the same losses (schedule-free
    AdamW included, which must be put in train mode and keeps its peak LR)."""
    import json

    import train
    settings = TINY_MODEL + [f"--data_dir={tiny_data}", "--optimizer=adamw_schedulefree", "--schedule=constant",
                             "--log_interval=1"]
    r = bench.bench(parse_args(settings + ["--steps=4", "--turn_steps=4", "--untimed_steps=0", "--probe_seconds=0.05",
                                           "--fp32=False", "--try_compile=False"], bench.SETTINGS))
    train.main(settings + [f"--out_dir={tmp_path / 'run'}", "--max_steps=4", "--eval_interval=100"])
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert r["losses"] == pytest.approx([rec["train_loss"] for rec in logged if "train_loss" in rec], abs=1e-6)
    with pytest.raises(bench.ConfigError, match=r"^turn_steps=0: must be >= 1$"):  # bench() checks a config it is given
        bench.bench(dict(parse_args(settings, bench.SETTINGS), turn_steps=0))


def test_help_shows_the_values_the_bench_uses(capsys):
    with pytest.raises(SystemExit) as exited:
        bench.main(["--help"])
    lines = {line.split()[0]: line.split(None, 2)[1:] for line in capsys.readouterr().out.splitlines()
             if line.startswith("  --")}
    assert exited.value.code == 0 and lines["--batch_size"][0] == "16"  # configs/cpu_tiny.py's, not train.py's 32
    assert lines["--model"][1].startswith("cpu_tiny, then cpu_10m") and lines["--steps"][0] == "15"
