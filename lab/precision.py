"""
The precision a run computes in: dtype='auto' (every script's default) resolved from what the device computes
natively and fast, and the peak FLOP/s that MFU divides by.

    speeds = perf.matmul_speeds(shapes)            # on a CPU: best fp32 and bf16 matmul FLOP/s at the model's shapes
    chosen = resolve("auto", device, speeds)       # Precision(requested='auto', dtype='float32', ...)
    chosen.warning                                 # None, or a line: bfloat16 is emulated here, ~40x slower

The rule:
- CUDA: bfloat16 where the GPU has bf16 tensor cores (compute capability 8.0 and up: A100, H100, L4, ...;
  `torch.cuda.is_bf16_supported(including_emulation=False)`), else float16 with train.py's GradScaler (V100, T4).
- CPU: bfloat16 when its bf16 matmul, probed at the model's own matmul shapes, is at least BF16_MIN_SPEEDUP
  times as fast as its fp32 matmul, else float32. A probe, not a flag: PyTorch emulates bf16 on CPUs without
  AVX512-BF16 or AMX (and on ARM without BF16 instructions) at ~1/20 of fp32's speed, while with those units bf16
  runs 2-4x fp32; the probe sees both, and whatever the build's kernels and ONEDNN_MAX_CPU_ISA make of the
  hardware. The margin is there because bf16 autocast adds casts of every weight and activation, which a bf16
  matmul only slightly faster than fp32 does not pay for.
- anything else (mps, ...): float32.
A resume or a branch with dtype=auto continues in the precision its run was trained in, whatever this machine
would pick for a new run (a run's precision is part of what it is); an explicit dtype is kept as asked (a resume
refuses one that differs from the run's); bfloat16 on a CPU that emulates it comes with a warning naming how much slower
its matmuls are. MFU's peak on a CPU is the faster of the two probes: a run in an emulated precision shows a low
MFU, never one above the device's capability.
"""

from dataclasses import dataclass, field

import torch

from lab import perf
from lab.config import ConfigError

DTYPES = ("auto", "float32", "bfloat16", "float16")
BF16_MIN_SPEEDUP = 1.5


@dataclass
class Precision:
    requested: str  # as configured: auto, float32, bfloat16 or float16
    dtype: str  # what the run computes in: float32, bfloat16 or float16
    rule: str  # why, in a few words
    matmul_flops: dict = field(default_factory=dict)  # CPU: the probes' best FLOP/s per dtype ({} elsewhere)
    warning: str = None  # a line for the user when the precision asked for is slow here

    @property
    def torch_dtype(self):
        return getattr(torch, self.dtype)

    def record(self):
        """What config.json keeps: the requested and the resolved dtype, and the probes behind the choice."""
        return dict(requested=self.requested, dtype=self.dtype, rule=self.rule,
                    matmul_tflops={k: v / 1e12 for k, v in self.matmul_flops.items()})


def check_dtype(requested):
    """A ConfigError naming a dtype setting no script knows."""
    if requested not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got '{requested}'")


def cuda_has_bf16(device):
    """Whether this GPU computes bf16 natively (not emulated through fp32 as on a V100)."""
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def choose(device_type, cuda_bf16=False, speeds=None):
    """(dtype, rule) that 'auto' means on a device of `device_type`, from the facts a caller measured: whether a
    GPU has bf16 (cuda_has_bf16) or a CPU's matmul FLOP/s per dtype (perf.matmul_speeds)."""
    if device_type == "cuda":
        return ("bfloat16", "the GPU computes bf16 natively") if cuda_bf16 else (
            "float16", "the GPU has no native bf16: fp16 with loss scaling")
    if device_type == "cpu":
        ratio = speeds["bfloat16"] / speeds["float32"]
        if ratio >= BF16_MIN_SPEEDUP:
            return "bfloat16", f"the CPU's bf16 matmuls are {ratio:.1f}x its fp32 ones at the model's shapes"
        return "float32", (f"the CPU's bf16 matmuls are {ratio:.2g}x its fp32 ones at the model's shapes "
                           f"(bf16 {'emulated' if ratio < 1 else 'not fast enough'})")
    return "float32", f"no bf16 rule for {device_type}"


def emulation_warning(speeds):
    """A line when bf16 on this CPU is slower than fp32, or None."""
    ratio = speeds["float32"] / speeds["bfloat16"]
    if ratio <= 1:
        return None
    return (f"bfloat16 is emulated on this CPU (no bf16 matmul units): its matmuls run ~{ratio:.0f}x slower than "
            f"float32 here at the model's shapes; dtype=auto would pick float32")


def resolve(requested, device, speeds=None, cuda_bf16=None, run_dtype=None):
    """The Precision of `requested` on `device`. On a CPU `speeds` (perf.matmul_speeds) is needed; on CUDA
    cuda_bf16 defaults to what the GPU says. run_dtype: the resolved dtype of the run being resumed or branched
    off, which 'auto' keeps (a run's precision is part of what it is: the same command on another machine must
    not continue it in another one); an explicit dtype that differs is refused by rundir.check_changes."""
    check_dtype(requested)
    if device.type == "cuda" and cuda_bf16 is None:
        cuda_bf16 = cuda_has_bf16(device)
    speeds = speeds if device.type == "cpu" else {}
    if requested == "auto" and run_dtype:
        dtype, rule = run_dtype, "the precision of the run it continues"
    elif requested == "auto":
        dtype, rule = choose(device.type, cuda_bf16, speeds)
    else:
        dtype, rule = requested, "asked for"
    warning = emulation_warning(speeds) if device.type == "cpu" and dtype == "bfloat16" else None
    return Precision(requested, dtype, rule, dict(speeds), warning)


def for_model(requested, device, shapes, seconds=0.3, run_dtype=None):
    """resolve(), probing the CPU's matmuls at `shapes` (perf.model_matmul_shapes) first."""
    speeds = perf.matmul_speeds(shapes, seconds) if device.type == "cpu" else None
    return resolve(requested, device, speeds, run_dtype=run_dtype)


def peak_flops(precision, device, override_tflops):
    """MFU's denominator: peak_tflops when given; on a CPU the faster of the bf16 and fp32 probes (the device's best
    precision, whichever the run computes in); on a GPU perf's table for the run's dtype; else None."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type == "cpu":
        return max(precision.matmul_flops.values())
    return perf.peak_flops(device, precision.torch_dtype, None)


def raised_peak(peak, achieved_flops, device):
    """A CPU's peak, raised to a rate the run itself achieved (by the Chinchilla count) if that is higher: a probe
    taken while other work shared the cores reads low, and a peak below what the model reaches is no peak. GPU
    peaks are datasheet figures, kept as they are."""
    if peak and device.type == "cpu":
        return max(peak, achieved_flops)
    return peak


def for_run(requested, device, model_config, run_dtype, tokens=256):
    """The Precision in which to evaluate or sample a trained run's weights (swa.py, sample.py): 'auto' is the
    precision the run was trained in, so that losses compare with its logs; the probe only serves the warning."""
    shapes = perf.model_matmul_shapes(model_config, tokens)[:3] if device.type == "cpu" else None
    return for_model(requested, device, shapes, seconds=0.1, run_dtype=run_dtype)
