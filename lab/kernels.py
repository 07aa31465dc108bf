"""
The GPU speed levers that change which kernels a run computes with, applied to a built GPT before it is wrapped
(lab/parallel.py) and before its optimizer is made: SDPA's back-end, a fused linear cross-entropy (Liger-kernel's
or cut-cross-entropy's: the head and the loss in chunks, never the whole logits), Liger-kernel's RMSNorm, SwiGLU and
rotary kernels, and float8 matmuls (torchao). Each is measured on and off by `python -m bench.gpu`
(docs/performance.md). The packages are optional (requirements-gpu.txt) and need a GPU: where one is missing the run
says once what it computes with instead, and trains with PyTorch's own ops. None changes a checkpoint's format.

    notes = apply(model, cfg, device)    # [] when every lever asked for is in use; else one line each
"""

import importlib.util

import torch

ATTENTION = ("auto", "flash", "cudnn", "efficient", "math")
FUSED_LOSSES = ("none", "liger", "cce")
PACKAGES = {"liger": "liger_kernel", "cce": "cut_cross_entropy", "float8": "torchao"}
FLOAT8_CAPABILITY = (8, 9)  # float8 tensor cores: Ada (L4, L40S) and Hopper (H100, H200) and newer


def missing(lever, package, device):
    """Why `lever` cannot run here (no GPU, no package), or None."""
    if device.type != "cuda":
        return f"{lever} needs a CUDA GPU"
    if importlib.util.find_spec(package) is None:
        return f"{lever} needs {package.replace('_', '-')} (pip install -r requirements-gpu.txt)"
    return None


def set_attention_backend(name):
    """SDPA's back-ends for this process: all of them (PyTorch picks per call) for auto, else only the one named.
    Global flags, like TF32's, read when a forward runs or is compiled: every run sets all four."""
    for backend in ("flash", "cudnn", "efficient", "math"):
        enabled = name in ("auto", backend)
        getattr(torch.backends.cuda, {"efficient": "enable_mem_efficient_sdp"}.get(backend, f"enable_{backend}_sdp"))(
            enabled)


def liger_loss(hidden, weight, targets):
    """Liger's fused linear cross-entropy, in the autocast dtype as the eager head would compute it."""
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    hidden, weight = to_autocast_dtype(hidden, weight)
    return liger_fused_linear_cross_entropy(hidden, weight, targets)


def cce_loss(hidden, weight, targets):
    """cut-cross-entropy's linear cross-entropy (bf16 or fp16 inputs only)."""
    from cut_cross_entropy import linear_cross_entropy
    hidden, weight = to_autocast_dtype(hidden, weight)
    return linear_cross_entropy(hidden, weight, targets)


def to_autocast_dtype(*tensors):
    """The tensors in autocast's dtype when autocast is on: the fused losses take their inputs' dtype."""
    if not torch.is_autocast_enabled("cuda"):
        return tensors
    dtype = torch.get_autocast_dtype("cuda")
    return tuple(t.to(dtype) for t in tensors)


def liger_rotary(q, k, cos, sin):
    """model.rotate_pair with Liger's rotary kernel: its tables span the whole head (the two halves repeated)."""
    from liger_kernel.transformers.rope import liger_rotary_pos_emb
    cos, sin = (torch.cat((t, t), dim=-1).to(q.dtype).unsqueeze(0) for t in (cos, sin))
    return liger_rotary_pos_emb(q, k, cos, sin)


def liger_gate(gate, up):
    """SwiGLU's silu(gate) * up in one Liger kernel."""
    from liger_kernel.transformers.functional import liger_swiglu
    return liger_swiglu(gate, up)


def use_liger_kernels(model):
    """Liger's RMSNorm modules (the same gain parameters, so checkpoints are unchanged), SwiGLU gate and rotary."""
    from liger_kernel.transformers.rms_norm import LigerRMSNorm

    def liger_norm(norm):
        replacement = LigerRMSNorm(norm.weight.numel(), eps=norm.eps, casting_mode="llama", in_place=False)
        replacement.weight = norm.weight
        return replacement
    for block in model.blocks:
        block.attn_norm, block.mlp_norm = liger_norm(block.attn_norm), liger_norm(block.mlp_norm)
        block.attn.rotate = liger_rotary
        block.mlp.gate = liger_gate
    model.final_norm = liger_norm(model.final_norm)


def use_float8(model):
    """torchao's float8 training matmuls for the blocks' linear layers (dims multiples of 16); the output head
    stays in bf16 (tied to the embedding, and the loss is sensitive to its precision)."""
    from torchao.float8 import convert_to_float8_training
    convert_to_float8_training(model, module_filter_fn=lambda module, name: name != "lm_head" and isinstance(
        module, torch.nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def apply(model, cfg, device):
    """The levers cfg asks for, on `model`; returns a line for each that cannot run here (and is left off)."""
    notes = []
    if device.type == "cuda":
        set_attention_backend(cfg["attention"])
    elif cfg["attention"] != "auto":
        notes.append(f"attention={cfg['attention']} chooses among SDPA's CUDA kernels: PyTorch's choice on {device.type}")
    if cfg["fused_loss"] != "none":
        why = missing(f"fused_loss={cfg['fused_loss']}", PACKAGES[cfg["fused_loss"]], device)
        if why:
            notes.append(f"{why}: torch's cross-entropy instead")
        else:
            model.fused_loss = liger_loss if cfg["fused_loss"] == "liger" else cce_loss
    if cfg["liger_kernels"]:
        why = missing("liger_kernels", PACKAGES["liger"], device)
        if why:
            notes.append(f"{why}: PyTorch's RMSNorm, SwiGLU and rotary instead")
        else:
            use_liger_kernels(model)
    if cfg["float8"]:
        why = missing("float8", PACKAGES["float8"], device)
        if not why and torch.cuda.get_device_capability(device) < FLOAT8_CAPABILITY:
            why = f"float8 needs float8 tensor cores (compute capability 8.9+, {torch.cuda.get_device_name(device)} has not)"
        if why:
            notes.append(f"{why}: the matmuls stay in {cfg['dtype']}")
        else:
            use_float8(model)
    return notes
