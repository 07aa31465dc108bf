"""bench/gpu.py, the prepared GPU run: its plan without a GPU (--dry), bad input, and its machinery (lever runs
against a baseline of the same call, the A/B with another seed, results.json over two calls) run on a CPU with a
tiny model."""
import json
import sys

import pytest

from bench import gpu
from lab.config import ConfigError

TINY = ("--eval_tokens=2048 --n_layer=2 --n_embd=64 --n_head=2 --ffw_size=128 --batch_size=8 --seq_len=64 "
        "--dtype=float32")


def test_the_plan_names_every_command_and_runs_nothing(tmp_path, capsys):
    assert gpu.main(["--dry=True", "--nanogpt=/nanoGPT", f"--out={tmp_path}"]) == {}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "planned: 9 commands, ~7.9 min on an H200 (parts tests, check, nanogpt, levers)"
    assert lines[1].startswith("tests tests: env NANOGPT=/nanoGPT ")  # the GPU tests' nanoGPT comparison runs too
    assert lines[1].endswith("-m pytest -q -m gpu -p no:cacheprovider tests")
    assert " gpu_check.py --data_dir=data/stdlib-gpt2 --device=cuda " in lines[2]
    assert lines[3].endswith("-m bench.nanogpt --nanogpt=/nanoGPT --device=cuda --pairs=1 --steps=40 --skip=10")
    levers = [line.split(":")[0] for line in lines[4:]]
    assert levers == ["levers baseline", *(f"levers {name}" for name in gpu.FIRST_LEVERS.split(","))]
    assert all("configs/124m_cooldown.py --device=cuda" in line for line in lines[4:])
    assert lines[-1].endswith("--max_steps=20 --warmup_steps=10 --log_interval=5 --eval_interval=20 "
                              "--ckpt_interval=1000000 --eval_tokens=102400 --float8=True")
    assert not list(tmp_path.iterdir())


def test_without_a_nanogpt_checkout_that_part_is_skipped_and_bad_names_are_one_line(capsys):
    gpu.main(["--dry=True"])
    out = capsys.readouterr().out
    assert out.startswith("nanogpt: skipped, no --nanogpt=<a checkout of karpathy/nanoGPT>\n")
    assert f"tests tests: {sys.executable} -m pytest" in out  # no NANOGPT: the GPU tests skip that comparison
    with pytest.raises(ConfigError, match="^unknown part or lever 'speed': parts tests, check, nanogpt, levers, ab; "):
        gpu.main(["--parts=speed"])
    with pytest.raises(ConfigError, match="^unknown part or lever 'fp4=True'"):
        gpu.main(["--levers=fp4=True"])


def test_levers_and_the_ab_run_and_report_on_a_cpu(tmp_path, tiny_data, capsys):
    common = ["--device=cpu", "--config=configs/cpu_tiny.py", f"--data_dir={tiny_data}", f"--out={tmp_path}",
              f"--train_args={TINY}", "--lever_steps=6"]
    gpu.main([*common, "--parts=levers,ab", "--levers=fused_loss=liger", "--ab_steps=6"])
    gpu.main([*common, "--parts=levers", "--levers=fused_optimizer=False"])
    results = json.loads((tmp_path / "results.json").read_text())
    levers = results["levers"]
    assert set(levers) == {"baseline", "fused_optimizer=False", "fused_loss=liger"}  # both calls' levers
    for name in ("fused_optimizer=False", "fused_loss=liger"):
        assert levers[name]["speedup"] > 0 and levers[name]["micro_batch"] == "8 x 1"
        # on a CPU these levers compute what the baseline does: the same losses
        assert levers[name]["loss_difference"] == 0
    assert levers["fused_optimizer=False"]["fell_back"] == []  # AdamW's foreach kernels run on a CPU too
    assert levers["fused_loss=liger"]["fell_back"] == ["fused_loss=liger needs a CUDA GPU: torch's cross-entropy instead"]
    # the A/B: a lever that fell back is never kept; the three runs' val losses at every sixth of the steps
    ab = results["ab"]
    assert list(ab) == ["baseline", "seed 1338", "levers kept"]
    assert ab["levers kept"]["val_loss"] == ab["baseline"]["val_loss"]
    assert all(sorted(map(int, r["val_loss"])) == [0, 1, 2, 3, 4, 5, 6] for r in ab.values())
    assert ab["seed 1338"]["val_loss"] != ab["baseline"]["val_loss"]
    out = capsys.readouterr().out
    assert "levers fused_loss=liger: " in out and "fell back: fused_loss=liger needs a CUDA GPU" in out
    assert (tmp_path / "logs" / "baseline.log").is_file()


def test_the_bench_writes_only_a_folder_of_its_own(tmp_path):
    (tmp_path / "notes.txt").write_text("yours")
    with pytest.raises(ConfigError, match=rf"^{tmp_path} holds notes.txt, which bench/gpu.py did not write: give it a "
                                          r"folder of its own"):
        gpu.main(["--device=cpu", f"--out={tmp_path}", "--parts=levers", "--levers=fused_optimizer=False"])
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "yours"
