"""perf.py: the GPU table matches device names exactly, an unknown GPU has no peak, the CPU probe."""
import pytest
import torch

import perf


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


def test_cpu_probes_measure_both_precisions_without_moving_the_random_state():
    state = torch.get_rng_state()
    speeds = perf.matmul_speeds([(64, 64, 64), (128, 64, 32)], seconds=0.05)
    assert set(speeds) == {"float32", "bfloat16"} and all(1e8 < v < 1e14 for v in speeds.values())
    assert torch.equal(torch.get_rng_state(), state)  # a run's initialization does not depend on the probe
