"""
Peak FLOP/s of the device, for model FLOPs utilisation (MFU) in train.py's logs and in bench/speed.py.

GPU peaks are the vendors' dense figures (a table; `peak_tflops` in the config overrides it). A CPU has no
datasheet figure we can trust, so its peak is measured: the best of a few fp32 and bf16 matmuls at the shapes
the model's linear layers have (`model_matmul_shapes`, `matmul_speeds`), since a CPU's speed depends a lot on the
shape and on whether it has bf16 units; lab/precision.py takes the faster of the two as the peak.
"""

import re
import time

import torch

# Dense (no sparsity) bf16/fp16 tensor-core TFLOP/s per GPU, from the vendors' datasheets; float32 runs use TF32,
# half of it. Matched against torch.cuda.get_device_name as whole words, so 'L4' is not 'L40' nor 'L40S', and the
# H100's three forms are told apart by what their names say (SXM5 boards report "H100 80GB HBM3").
GPU_PEAK_TFLOPS = (
    (r"H200 NVL", 835.0),
    (r"H200", 989.0),
    (r"H100 PCIe", 756.0),
    (r"H100 NVL", 835.0),
    (r"H100( SXM5?)? (80|94|96)GB HBM3|H100 SXM5?", 989.0),
    (r"A100(-SXM4|-PCIE)?(-\d+GB)?", 312.0),  # SXM4 and PCIe, 40 and 80 GB: the same tensor cores and clocks
    (r"L40S", 362.0),
    (r"L40", 181.0),
    (r"L4", 121.0),
    (r"A10G", 70.0),  # AWS's A10 variant
    (r"A10", 125.0),
    (r"V100(-SXM2|-PCIE|S)?(-\d+GB)?", 125.0),  # fp16 only: V100 has no bf16
)


def gpu_peak_tflops(name):
    """The table's bf16 TFLOP/s for a GPU named `name` (as torch.cuda.get_device_name says it), or None."""
    for pattern, tflops in GPU_PEAK_TFLOPS:
        if re.search(rf"(?<![\w-])(?:{pattern})(?![\w-])", name):
            return tflops
    return None


def no_peak_note(device):
    """What to do when the device's peak is not known (MFU is then not reported)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return f"MFU not reported: no peak FLOP/s known for '{name}'; pass peak_tflops=<dense bf16 TFLOP/s per device>"


def nanogpt_flops_per_token(mconf, num_params, seq_len):
    """nanoGPT's estimate_mfu count: 6N + 12·L·H·Q·T (N all parameters, Q the head size, T the sequence)."""
    head_size = mconf.n_embd // mconf.n_head
    return 6 * num_params + 12 * mconf.n_layer * mconf.n_head * head_size * seq_len


PROBE_FLOPS = 4e9  # the most FLOPs of one probe matmul (see model_matmul_shapes)
PROBE_MIN_TOKENS = 256


def model_matmul_shapes(config, tokens):
    """(M, K, N) of the forward matmuls of a GPT (model.GPTConfig) fed `tokens` tokens at once, and of the
    two backward matmuls of each (input gradient M x N x K, weight gradient K x M x N), without repeats.

    The token count is capped so that the largest forward matmul is at most PROBE_FLOPS, or has PROBE_MIN_TOKENS
    rows where that is more: a matmul's FLOP/s hardly grows past a few hundred rows, while one emulated bf16 matmul
    at a paper model's 25,600 tokens x 50,304 classes takes minutes on a CPU without bf16 units (capped, the bf16
    probe stops after its first shape, a second's work: matmul_speeds). The CPU presets
    at the cpu scale's 16 x 256 tokens are below the cap: their probes are the model's own shapes."""
    d, f, V = config.n_embd, config.ffw_size, config.vocab_size
    widest = max(3 * d, f, V)
    tokens = min(tokens, max(PROBE_MIN_TOKENS, int(PROBE_FLOPS // (2 * d * widest))))
    forward = [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, f), (tokens, f, d), (tokens, d, V)]
    shapes = []
    for m, k, n in forward:
        for shape in ((m, k, n), (m, n, k), (k, m, n)):
            if shape not in shapes:
                shapes.append(shape)
    return shapes


def measure_matmul_flops(dtype, shape, seconds=0.3):
    """Best FLOP/s of (M, K) @ (K, N) matmuls, shape = (M, K, N), on the CPU in `dtype` over about `seconds` (at
    least one matmul, after an untimed one that lets the library pick and pack its kernel)."""
    m, k, n = shape
    generator = torch.Generator().manual_seed(0)  # its own: a probe must not move the run's random state
    a = torch.randn(m, k, generator=generator).to(dtype)
    b = torch.randn(k, n, generator=generator).to(dtype)
    a @ b
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        a @ b
        elapsed = time.perf_counter() - t0
        best = max(best, 2 * m * k * n / elapsed)
        if t0 > deadline:
            return best


def matmul_speeds(shapes, seconds=0.3):
    """{'float32': FLOP/s, 'bfloat16': FLOP/s}: the best matmul of each dtype at `shapes` (model_matmul_shapes),
    about `seconds` per dtype shared among the shapes. A dtype stops at the first shapes that use up its time: on
    a CPU that emulates bf16 one matmul can take that long, and one is enough to tell it is ~20x slower."""
    speeds = {}
    for dtype in ("float32", "bfloat16"):
        deadline, best = time.perf_counter() + seconds, 0.0
        for shape in shapes:
            best = max(best, measure_matmul_flops(getattr(torch, dtype), shape, seconds / len(shapes)))
            if time.perf_counter() > deadline:
                break
        speeds[dtype] = best
    return speeds


def peak_flops(device, dtype, override_tflops):
    """A GPU's peak FLOP/s for `dtype` (peak_tflops when given, else the table), or None when unknown (MFU is
    then not reported). A CPU's peak is measured instead: precision.peak_flops."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type == "cuda":
        tflops = gpu_peak_tflops(torch.cuda.get_device_name(device))
        return tflops and tflops * 1e12 * (0.5 if dtype == torch.float32 else 1.0)
    return None
