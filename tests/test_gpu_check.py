"""gpu_check.py end to end on a CPU (tiny model): its report and a resume that repeats the steps exactly; and the
tests of the GPU path (marked gpu: `pytest -m gpu tests`, skipped without CUDA): a compiled bf16 run with an exact
resume and its memory against the plan, DDP on every visible GPU, the speed levers' losses against PyTorch's ops."""
import json
import re

import numpy as np
import pytest
import torch

import gpu_check
import train
from helpers import TINY_MODEL, close, metrics, torchrun
from lab.config import ConfigError


def test_the_gpu_check_reports_speed_memory_and_an_exact_resume(tmp_path, tiny_data, capsys, monkeypatch):
    from lab import perf  # the probe's answer of a CPU with bf16 units, whatever this one has: dtype=auto is bfloat16
    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: {"float32": 1e11, "bfloat16": 4e11})
    measured = gpu_check.main(["configs/cpu_tiny.py", *TINY_MODEL, f"--data_dir={tiny_data}",
                               f"--out_dir={tmp_path / 'check'}", "--steps=6", "--resume_steps=4", "--log_interval=2",
                               "--eval_tokens=2048", "--dtype=auto"])
    lines = capsys.readouterr().out.splitlines()[-6:]
    assert lines[0] == ("gpu check on cpu: cpu_tiny (0.1M), bfloat16, compile=False, micro-batch 8 x 1, 512 "
                        "tokens/step, 1 process")
    assert re.fullmatch(r"tokens/s: [\d,]+ \(median of 4 log windows after the first\)", lines[1])
    assert re.fullmatch(r"MFU: [\d.]+% by the Chinchilla count, [\d.]+% by the nanoGPT 6N\+12LHQT count", lines[2])
    assert re.fullmatch(r"peak memory: not measured on cpu; [\d.]+ GB estimated", lines[3])
    assert re.fullmatch(r"val_loss: [\d.]+, [\d.]+, [\d.]+ \(steps 0, 6, 10\)", lines[4])
    assert lines[5] == "resume from step 6: largest train_loss gap to the uninterrupted run 0.00e+00"
    assert measured["resume_gap"] == 0 and measured["dtype"] == "bfloat16" and len(measured["val_loss"]) == 3
    assert sorted(p.name for p in (tmp_path / "check").iterdir()) == [".written_by_gpu_check.json", "full", "resumed"]
    assert (tmp_path / "check" / "resumed" / "ckpt_0000010").exists()


def test_the_gpu_check_writes_only_a_folder_of_its_own(tmp_path, tiny_data, capsys):
    """A run of yours as out_dir is refused, nothing of it touched; gpu_check.py's own settings are not given."""
    train.main([*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'mine'}", "--max_steps=2",
                "--schedule=constant", "--warmup_steps=1", "--ckpt_interval=2", "--eval_interval=2"])
    before = {p.relative_to(tmp_path): p.stat().st_mtime_ns for p in (tmp_path / "mine").rglob("*")}
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'mine'} holds ckpt_0000002, config.json, metrics.jsonl, "
                                          r"which gpu_check.py did not write: give it a folder of its own"):
        gpu_check.main(["configs/cpu_tiny.py", *TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'mine'}",
                        "--steps=2", "--resume_steps=1"])
    assert {p.relative_to(tmp_path): p.stat().st_mtime_ns for p in (tmp_path / "mine").rglob("*")} == before
    with pytest.raises(ConfigError, match=r"^gpu_check.py sets max_steps itself \(steps \+ resume_steps\): give "
                                          r"--steps and --resume_steps$"):
        gpu_check.check_config(["configs/cpu_tiny.py", "--max_steps=100"])


def test_the_gpu_check_help_shows_the_values_it_uses(capsys):
    with pytest.raises(SystemExit) as exited:
        gpu_check.main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    lines = {line.split()[0]: line.split(None, 2)[1:] for line in out.splitlines() if line.startswith("  --")}
    assert lines["--data_dir"][0] == "'data/stdlib-gpt2'" and lines["--out_dir"][0] == "'out/gpu_check'"
    assert lines["--schedule"][0] == "'constant'" and lines["--model"][0] == "'124m'"  # configs/124m_cooldown.py's
    assert lines["--max_steps"] == ["60", "gpu_check.py sets it: steps + resume_steps (>= 1)"]
    assert lines["--steps"][0] == "50" and lines["--resume_steps"][0] == "10"


# ---- the GPU path: run where CUDA is, skipped elsewhere (CI has no GPU); bench/gpu.py runs them first ----

def gpt2_dataset(folder, tokens=2_000_000, val_tokens=100_000):
    """Random GPT-2 token ids in prepare_data.py's format: the 50k-class loss and head of the paper's runs."""
    folder.mkdir(parents=True)
    generator = np.random.default_rng(0)
    splits = {"val": val_tokens, "train": tokens}
    for split, count in splits.items():
        generator.integers(0, 50257, count, dtype=np.uint16).tofile(folder / f"{split}_0000.bin")
    (folder / "meta.json").write_text(json.dumps({
        "format": "uint16-shards-v1", "tokenizer": "gpt2", "vocab_size": 50257, "eot_token": 50256, "dtype": "uint16",
        "shards": {s: [{"file": f"{s}_0000.bin", "tokens": n}] for s, n in splits.items()}}))
    return folder


@pytest.mark.gpu
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
def test_124m_in_bf16_resumes_exactly_and_its_memory_is_the_plans(tmp_path, compiled):
    """The paper's 124M on one GPU, 32 sequences of 512 in micro-batches of 16: bf16 where the GPU has it, the
    resumed steps within 1e-4 of the uninterrupted ones (flash attention's backward is not bitwise deterministic),
    and the dry run's estimate within 15 % above and 5 % below torch.cuda.max_memory_allocated."""
    data = gpt2_dataset(tmp_path / "data")
    measured = gpu_check.main(["configs/124m_cooldown.py", "--device=cuda", f"--data_dir={data}",
                               f"--out_dir={tmp_path / 'check'}", f"--compile={compiled}", "--batch_size=32",
                               "--micro_batch_size=16", "--steps=8", "--resume_steps=2", "--log_interval=2",
                               "--eval_tokens=16384"])
    assert measured["dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16")
    assert measured["resume_gap"] <= 1e-4
    assert -0.05 <= measured["estimate_gb"] / measured["peak_memory_gb"] - 1 <= 0.15, measured
    assert measured["val_loss"][-1] < measured["val_loss"][0]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP needs two GPUs or more")
def test_ddp_on_every_visible_gpu_trains_like_one_gpu(tmp_path, tiny_data):
    gpus = torch.cuda.device_count()
    common = [*TINY_MODEL, "--device=cuda", f"--data_dir={tiny_data}", f"--batch_size={4 * gpus}", "--max_steps=6",
              "--log_interval=1", "--eval_interval=3", "--schedule=constant"]
    train.main([*common, f"--out_dir={tmp_path / 'one'}"])
    result = torchrun(gpus, *common, f"--out_dir={tmp_path / 'ddp'}")
    assert result.returncode == 0, result.stderr[-3000:]
    close(metrics(tmp_path / "ddp"), metrics(tmp_path / "one"), rel=2e-3)  # TF32 matmuls, other reduction orders
