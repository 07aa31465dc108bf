"""
Peak FLOP/s of the device, for model FLOPs utilisation (MFU) in train.py's logs and in bench.py.

GPU peaks are the vendors' dense figures (a table; `peak_tflops` in the config overrides it). A CPU has no
datasheet figure we can trust, so its peak is measured: the best of a few square matmuls in the run's dtype.
"""

import time

import torch

# Dense tensor-core TFLOP/s per GPU, bf16/fp16 (float32 runs use TF32 on these, about half).
GPU_PEAK_TFLOPS = {"H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0, "V100": 125.0}


def measure_matmul_flops(dtype, size=1024, seconds=0.3):
    """Best FLOP/s of `size`-square matmuls on the CPU in `dtype`, over about `seconds`."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        a @ b
        elapsed = time.perf_counter() - t0
        best = max(best, 2 * size**3 / elapsed)
        if t0 > deadline:
            return best


def peak_flops(device, dtype, override_tflops=None):
    """Peak FLOP/s to divide achieved FLOP/s by, or None when unknown (MFU is then not reported)."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12 * (0.5 if dtype == torch.float32 else 1.0)
        return None
    if device.type == "cpu":
        return measure_matmul_flops(dtype)
    return None
