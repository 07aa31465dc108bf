"""lab/perf.py: the GPU table matches device names exactly, an unknown GPU has no peak, the CPU probe."""
import itertools
import time

import pytest
import torch

from lab import perf


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H200", 989.0), ("NVIDIA H200 NVL", 835.0),
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 SXM5 80GB", 989.0),  # the SXM5 board's two spellings
    ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A100-PCIE-40GB", 312.0), ("NVIDIA A100 80GB PCIe", 312.0),
    ("NVIDIA L40S", 362.0), ("NVIDIA L40", 181.0), ("NVIDIA L4", 121.0),  # L4 is not L40, L40 is not L40S
    ("NVIDIA A10G", 70.0), ("NVIDIA A10", 125.0), ("Tesla V100-SXM2-16GB", 125.0),
    ("NVIDIA H100", None), ("NVIDIA H20", None), ("NVIDIA GeForce RTX 4090", None), ("NVIDIA A100X", None),
])
def test_gpu_names_match_exactly(name, tflops):
    assert perf.gpu_peak_tflops(name) == tflops


def test_unknown_peaks_say_what_to_pass():
    assert perf.peak_flops(torch.device("mps"), torch.bfloat16, None) is None
    assert perf.peak_flops(torch.device("mps"), torch.bfloat16, 100.0) == 100e12  # peak_tflops wins
    assert perf.no_peak_note(torch.device("mps")) == ("MFU not reported: no peak FLOP/s known for 'mps'; pass "
                                                      "peak_tflops=<dense bf16 TFLOP/s per device>")


def test_cpu_probes_measure_both_precisions_without_moving_the_random_state(monkeypatch):
    """On a fake clock that moves one tick (1/64 s) per reading, each timed matmul takes one tick."""
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks) / 64)
    small, large = (64, 64, 64), (128, 64, 64)  # 2 * 64**3 and twice as many FLOPs
    state = torch.get_rng_state()
    # 1 s per dtype: both shapes are timed (half a second each), and the faster one counts
    assert perf.matmul_speeds([small, large], seconds=1.0) == dict(float32=2 * 128 * 64 * 64 * 64,
                                                                   bfloat16=2 * 128 * 64 * 64 * 64)
    # 0.05 s per dtype: the first shape uses it up (its loop runs past its deadline), the second is never timed
    assert perf.matmul_speeds([small, large], seconds=0.05) == dict(float32=2 * 64**3 * 64, bfloat16=2 * 64**3 * 64)
    assert torch.equal(torch.get_rng_state(), state)  # a run's initialization does not depend on the probe


def test_the_probe_caps_its_rows_so_an_emulated_bf16_matmul_takes_no_minutes():
    """At the paper's 124M micro-batch (25,600 tokens) one emulated bf16 output-head matmul took minutes on AVX2;
    the probe's rows are capped (PROBE_FLOPS, PROBE_MIN_TOKENS). A CPU preset keeps its own."""
    from model import GPTConfig, PRESETS
    paper = GPTConfig(vocab_size=50304, block_size=512, **PRESETS["124m"])
    shapes = perf.model_matmul_shapes(paper, 50 * 512)
    assert shapes[0] == (perf.PROBE_MIN_TOKENS, 768, 3 * 768)  # the first shape, all an emulating CPU times
    assert (perf.PROBE_MIN_TOKENS, 768, 50304) in shapes  # the model's widths, fewer rows
    assert 2 * perf.PROBE_MIN_TOKENS * 768 * 3 * 768 <= perf.PROBE_FLOPS
    cpu = GPTConfig(vocab_size=320, block_size=256, **PRESETS["cpu_10m"])
    assert (16 * 256, 320, 960) in perf.model_matmul_shapes(cpu, 16 * 256)  # the cpu scale's 16 x 256: unchanged
