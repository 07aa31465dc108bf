"""lab/precision.py: what dtype=auto means on each kind of device (the probes' answers injected, so that these tests
pass on a CPU with bf16 units and on one without), the emulation warning, the resolved dtype in config.json and
in a resume's checks, MFU against the faster precision's peak, and an MFU that never exceeds 100 %."""
import json

import pytest
import torch

import train
from helpers import TINY_MODEL, fake_clock
from lab import perf, precision
from lab.config import ConfigError

BF16_FAST = {"float32": 1.0e11, "bfloat16": 4.0e11}  # AVX512-BF16 / AMX: bf16 matmuls ~4x fp32
BF16_EMULATED = {"float32": 1.0e11, "bfloat16": 3.0e9}  # AVX2: bf16 emulated, ~33x slower
BF16_MARGINAL = {"float32": 1.0e11, "bfloat16": 1.2e11}  # faster, but not enough to pay for autocast's casts


@pytest.mark.parametrize("device_type, cuda_bf16, speeds, expected", [
    ("cuda", True, None, "bfloat16"),
    ("cuda", False, None, "float16"),  # V100, T4: fp16 with the GradScaler
    ("cpu", False, BF16_FAST, "bfloat16"),
    ("cpu", False, BF16_EMULATED, "float32"),
    ("cpu", False, BF16_MARGINAL, "float32"),
    ("mps", False, None, "float32"),
])
def test_auto_follows_the_device(device_type, cuda_bf16, speeds, expected):
    dtype, rule = precision.choose(device_type, cuda_bf16, speeds)
    assert dtype == expected and rule


def test_explicit_dtypes_are_kept_and_emulated_bf16_is_named():
    cpu = torch.device("cpu")
    emulated = precision.resolve("bfloat16", cpu, BF16_EMULATED)
    assert emulated.dtype == "bfloat16" and emulated.requested == "bfloat16"
    assert emulated.warning.startswith("bfloat16 is emulated on this CPU") and "~33x slower" in emulated.warning
    assert precision.resolve("bfloat16", cpu, BF16_FAST).warning is None
    assert precision.resolve("auto", cpu, BF16_EMULATED).warning is None  # auto never picks a slow precision
    assert precision.resolve("float32", cpu, BF16_FAST).dtype == "float32"
    assert precision.resolve("auto", torch.device("cuda"), cuda_bf16=False).dtype == "float16"
    with pytest.raises(ValueError, match="dtype must be one of auto, float32, bfloat16, float16, got 'fp8'"):
        precision.resolve("fp8", cpu, BF16_FAST)


def test_the_peak_is_the_faster_precision_and_never_below_what_the_run_reaches():
    cpu = torch.device("cpu")
    for requested in ("float32", "bfloat16", "auto"):
        assert precision.peak_flops(precision.resolve(requested, cpu, BF16_EMULATED), cpu, None) == 1.0e11
        assert precision.peak_flops(precision.resolve(requested, cpu, BF16_FAST), cpu, None) == 4.0e11
    assert precision.peak_flops(precision.resolve("auto", cpu, BF16_FAST), cpu, 2.0) == 2.0e12  # peak_tflops wins
    assert precision.raised_peak(1.0e11, 1.5e11, cpu) == 1.5e11  # a probe on a busy machine read low
    assert precision.raised_peak(1.0e11, 0.5e11, cpu) == 1.0e11
    assert precision.raised_peak(1.0e12, 2.0e12, torch.device("cuda")) == 1.0e12  # a datasheet peak stays


def probes(monkeypatch, speeds):
    monkeypatch.setattr(perf, "matmul_speeds", lambda shapes, seconds=0.3: dict(speeds))


def train_tiny(out_dir, data_dir, *extra):
    train.main([*TINY_MODEL, f"--data_dir={data_dir}", f"--out_dir={out_dir}", "--max_steps=6",
                "--eval_interval=3", "--log_interval=1", "--ckpt_interval=3", "--warmup_steps=1", "--dtype=auto", *extra])
    return json.loads((out_dir / "config.json").read_text())


def test_config_json_records_requested_and_resolved_and_warns_once(tmp_path, tiny_data, monkeypatch, capsys):
    probes(monkeypatch, BF16_EMULATED)
    info = train_tiny(tmp_path / "auto", tiny_data)
    assert info["config"]["dtype"] == "float32" and info["precision"]["requested"] == "auto"
    assert info["precision"]["matmul_tflops"] == {"float32": 0.1, "bfloat16": 0.003}
    out = capsys.readouterr().out
    assert "dtype float32 (auto: the CPU's bf16 matmuls are 0.03x its fp32 ones" in out and "warning" not in out

    info = train_tiny(tmp_path / "bf16", tiny_data, "--dtype=bfloat16")
    assert info["config"]["dtype"] == "bfloat16" and info["precision"]["requested"] == "bfloat16"
    out = capsys.readouterr().out
    assert out.count("warning: bfloat16 is emulated on this CPU") == 1 and "~33x slower than float32" in out


def test_a_resume_continues_in_the_runs_resolved_dtype(tmp_path, tiny_data, monkeypatch, capsys):
    probes(monkeypatch, BF16_FAST)  # trained where bf16 is fast: auto is bfloat16
    constant = ("--schedule=constant", "--warmup_steps=1")  # raising max_steps changes no step's LR
    train_tiny(tmp_path / "run", tiny_data, *constant, "--max_steps=3")
    probes(monkeypatch, BF16_EMULATED)  # resumed where bf16 is emulated: a new run's auto would be float32
    with pytest.raises(ConfigError, match=r"cannot resume a run with other settings: dtype='float32' \(the run's: "
                                          r"'bfloat16'\).*dtype=auto continues in the run's own"):
        train_tiny(tmp_path / "run", tiny_data, *constant, "--init_from=resume", "--dtype=float32")
    capsys.readouterr()
    info = train_tiny(tmp_path / "run", tiny_data, *constant, "--init_from=resume")  # auto: the run's bfloat16
    assert info["config"]["dtype"] == "bfloat16" and info["precision"]["requested"] == "auto"
    assert [e["event"] for e in info["history"]] == ["start", "resume"] and info["history"][1]["changed"] == {
        "max_steps": [3, 6]}
    out = capsys.readouterr().out
    assert "dtype bfloat16 (auto: the precision of the run it continues)" in out
    assert out.count("warning: bfloat16 is emulated on this CPU") == 1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "auto"])
def test_the_logged_mfu_is_against_the_faster_precisions_peak(tmp_path, tiny_data, monkeypatch, dtype):
    """On a fake clock (1000 s a step) and an emulated bf16 (the probes: 1e11 FLOP/s fp32, 3e9 bf16), whatever the
    precision: MFU is the run's FLOP/s over the fp32 peak, not over bf16's own emulated rate (33x higher)."""
    fake_clock(monkeypatch, 1000.0)
    probes(monkeypatch, BF16_EMULATED)
    info = train_tiny(tmp_path / dtype, tiny_data, f"--dtype={dtype}", "--max_steps=4")
    records = [json.loads(l) for l in (tmp_path / dtype / "metrics.jsonl").read_text().splitlines()]
    achieved = 8 * 64 / 1000.0 * info["flops_per_token"]["chinchilla"]  # 512 tokens a step
    assert [r["mfu"] for r in records if "mfu" in r] == [pytest.approx(achieved / 1.0e11, rel=1e-12)] * 4


def test_mfu_stays_at_most_one_when_the_probe_reads_low(tmp_path, tiny_data, monkeypatch):
    probes(monkeypatch, {"float32": 1e6, "bfloat16": 1e5})  # far below what any CPU does: a probe under load
    train_tiny(tmp_path / "low", tiny_data, "--max_steps=4")
    records = [json.loads(l) for l in (tmp_path / "low" / "metrics.jsonl").read_text().splitlines()]
    assert [r["mfu"] for r in records if "mfu" in r][0] == 1.0  # the peak is raised to the run's own rate
