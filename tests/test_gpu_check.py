"""gpu_check.py runs end to end on a CPU (tiny model): its report, and a resume that repeats the steps exactly."""
import re

import gpu_check
from helpers import TINY_MODEL


def test_the_gpu_check_reports_speed_memory_and_an_exact_resume(tmp_path, tiny_data, capsys, monkeypatch):
    from lab import perf  # the probe's answer of a CPU with bf16 units, whatever this one has: dtype=auto is bfloat16
    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: {"float32": 1e11, "bfloat16": 4e11})
    gpu_check.main(["configs/cpu_tiny.py", *TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'check'}",
                    "--steps=6", "--resume_steps=4", "--log_interval=2", "--eval_tokens=2048", "--dtype=auto"])
    lines = capsys.readouterr().out.splitlines()[-6:]
    assert lines[0] == ("gpu check on cpu: cpu_tiny (0.1M), bfloat16, compile=False, micro-batch 8 x 1, 512 "
                        "tokens/step, 1 process")
    assert re.fullmatch(r"tokens/s: [\d,]+ \(median of 4 log windows after the first\)", lines[1])
    assert re.fullmatch(r"MFU: [\d.]+% by the Chinchilla count, [\d.]+% by the nanoGPT 6N\+12LHQT count", lines[2])
    assert re.fullmatch(r"peak memory: not measured on cpu; [\d.]+ GB estimated", lines[3])
    assert re.fullmatch(r"val_loss: [\d.]+, [\d.]+, [\d.]+ \(steps 0, 6, 10\)", lines[4])
    assert lines[5] == ("resume from step 6: 2 logged steps, largest train_loss gap to the uninterrupted run "
                        "0.00e+00")
    assert (tmp_path / "check_resumed" / "ckpt_0000010").exists()
