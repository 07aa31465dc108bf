"""
Peak FLOP/s of the device, for model FLOPs utilisation (MFU) in train.py's logs and in bench.py.

GPU peaks are the vendors' dense figures (a table; `peak_tflops` in the config overrides it). A CPU has no
datasheet figure we can trust, so its peak is measured: the best of a few matmuls in the run's dtype, at the
shapes the model's linear layers have (`model_matmul_shapes`), since a CPU's speed depends a lot on the shape.
"""

import time

import torch

# Dense tensor-core TFLOP/s per GPU, bf16/fp16 (float32 runs use TF32 on these, about half).
GPU_PEAK_TFLOPS = {"H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0, "V100": 125.0}


def model_matmul_shapes(config, tokens):
    """(M, K, N) of the forward matmuls of a GPT (model.GPTConfig) fed `tokens` tokens at once, and of the
    two backward matmuls of each (input gradient M x N x K, weight gradient K x M x N), without repeats."""
    d, f, V = config.n_embd, config.ffw_size, config.vocab_size
    forward = [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, f), (tokens, f, d), (tokens, d, V)]
    shapes = []
    for m, k, n in forward:
        for shape in ((m, k, n), (m, n, k), (k, m, n)):
            if shape not in shapes:
                shapes.append(shape)
    return shapes


def measure_matmul_flops(dtype, shape, seconds=0.3):
    """Best FLOP/s of (M, K) @ (K, N) matmuls, shape = (M, K, N), on the CPU in `dtype` over about `seconds`."""
    m, k, n = shape
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        a @ b
        elapsed = time.perf_counter() - t0
        best = max(best, 2 * m * k * n / elapsed)
        if t0 > deadline:
            return best


def peak_flops(device, dtype, override_tflops, shapes, seconds=0.3):
    """Peak FLOP/s to divide achieved FLOP/s by, or None when unknown (MFU is then not reported).

    On a CPU: the best of matmul probes at `shapes` (model_matmul_shapes), `seconds` shared among them.
    """
    if override_tflops:
        return override_tflops * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12 * (0.5 if dtype == torch.float32 else 1.0)
        return None
    if device.type == "cpu":
        return max(measure_matmul_flops(dtype, shape, seconds / len(shapes)) for shape in shapes)
    return None
