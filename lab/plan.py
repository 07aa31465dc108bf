"""
What a run will cost before it runs: train.py --dry_run=True prints dry_run's plan (processes, micro-batches,
parameters, FLOPs, tokens, memory per device, time), and the per-device memory of a training step says whether
a micro-batch fits, and which is the largest that does.

    python train.py configs/124m_cooldown.py --dry_run=True
    WORLD_SIZE=8 python train.py configs/124m_cooldown.py --dry_run=True      # as under torchrun x8

    import torch
    from model import GPTConfig, PRESETS
    from lab.plan import memory_estimate, fitting_micro_batch
    config = GPTConfig(vocab_size=50304, block_size=512, **PRESETS['124m'])
    parts = memory_estimate(config, micro_batch=50, seq_len=512, dtype=torch.bfloat16, device_type="cuda")
    print({k: f"{v / 1e9:.1f} GB" for k, v in parts.items()})
    fitting_micro_batch(config, 512, torch.bfloat16, "cuda", per_process_batch=200, budget_bytes=70e9)  # -> 50

Under DDP every process holds a full replica, so every number is per device: fp32 weights, fp32 gradients,
the optimizer state, the weight averages (swa.py), the activations one forward saves for backward, and the
transient memory around the loss. Not counted: the CUDA context, cuBLAS/NCCL workspaces and the allocator's
fragmentation (leave headroom for them), and the optimizer step's temporaries (they come after backward has
freed the activations, so they do not add to the step's peak).

The activation formula (activation_bytes) is exact, byte for byte, for the CPU cases tests/lab/test_plan.py measures
with torch.autograd.graph.saved_tensors_hooks: fp32 with SDPA's CPU flash kernel, and bf16 autocast with
model.causal_attention's plain formula (with grouped-query attention it counts 2 x (n_embd - kv_dim) values per
token and layer more than is saved: +4.9 % and +2.7 % at the test's shape). It counts what really occupies memory: tensors that are parameters
(fp32 runs save the weights themselves) cost nothing extra, but the bf16 weight copies that autocast makes for
each matmul and that the matmul saves for backward do: ~2 bytes per parameter. bf16 with flash attention (the
GPU case) cannot be measured on a CPU: it is derived from the same ops with bf16 sizes. logits_workspace is an
estimate from the ops' order, not a measurement.

Compiled (compile=True), torch.compile's partitioner decides what the forward saves: it keeps fewer, cheaper
tensors and recomputes the rest in backward, and the loss is fused with the head (the logits are kept in the
compute dtype, never as fp32 log-probabilities). compiled_block_bytes and compiled_head_bytes count that, exactly
as AOTAutograd with inductor's partitioner saves it on a CPU with SDPA attention (tests/lab/test_plan.py); the GPU
runs the same partitioner. Eager, the model keeps fp32 log-probabilities and the loss's fp32 transients: 124M at a
micro-batch of 50 needs ~31 GB eager and ~22 GB compiled. Against one H200's measured peaks (docs/performance.md)
the estimates are 6-10 % high.
"""

import os

import torch

from lab import corpora, parallel, precision
from lab.data import Dataset
from lab.shards import MissingData
from lab.settings import check_config, micro_batching, model_config
from model import GPT, flops_per_token

INDEX_BYTES = 8  # int64 token ids and targets
BYTES_VOCAB, GPT2_VOCAB = 257, 50257  # the vocabularies of prepare_data.py's bytes and gpt2 tokenizers
FP32_BYTES = 4


def activation_dtype_bytes(dtype):
    """Bytes per element of what the matmuls output: 2 under bf16/fp16 autocast, 4 (fp32) without autocast."""
    return torch.finfo(dtype).bits // 8


def attention_kind(device_type, dtype):
    """'math' or 'flash', as model.causal_attention dispatches: the plain formula only for bf16 on a CPU."""
    return "math" if device_type == "cpu" and dtype == torch.bfloat16 else "flash"


def num_params(config):
    """The model's parameter count (tied embedding counted once), from a model on the meta device: no memory."""
    with torch.device("meta"):
        return sum(p.numel() for p in GPT(config).parameters())


def matmul_weights(config):
    """Elements of the weights that go through a matmul (all but the norm gains): those autocast copies."""
    d, f = config.n_embd, config.ffw_size
    # the embedding lookup casts nothing: the vocabulary matrix is cast once, for the output head, tied or not
    return config.n_layer * (2 * d * d + 2 * d * config.kv_dim + 3 * d * f) + config.vocab_size * d


def rms_norm_bytes(tokens, d, linear_inputs, low):
    """One nn.RMSNorm and the input it hands its linear layer(s).

    On the CPU nn.RMSNorm runs as separate ops: pow saves its fp32 input x (the residual stream, fp32 even
    under autocast), rsqrt saves rstd (one fp32 per token) and x * rstd saves x (the same tensor) and rstd; the
    gain multiply saves x * rstd. Its output is what the following linear saves: in fp32 one tensor however
    many linears read it, under autocast one bf16 cast per linear (autocast caches only the weights' casts).
    CUDA may run a fused RMSNorm that saves only x and rstd: there this over-counts by tokens * d * 4 bytes.
    """
    own = 2 * tokens * d * FP32_BYTES + tokens * FP32_BYTES
    output = tokens * d * (FP32_BYTES if low == FP32_BYTES else linear_inputs * low)
    return own + output


def attention_bytes(config, micro_batch, seq_len, low, attention):
    """What attention saves, from the permuted q, k, v to the input of the output projection."""
    tokens, d, H, kv = micro_batch * seq_len, config.n_embd, config.n_head, config.kv_dim
    head_dim = d // H
    if kv == d:
        # q, k, v are views of one contiguous (3, B, H, T, head_dim) copy of the qkv output; rotary makes new q
        # and k, but v keeps the whole copy alive. Saved: that copy (via v) and the rotated q and k.
        qkv = 3 * tokens * d * low + 2 * tokens * d * low
    elif attention == "flash":
        # grouped-query: one copy each of q (d wide), k and v (kv wide). Rotary saves the q and k copies; SDPA
        # (enable_gqa) saves the rotated q and k and the v copy, none of them repeated.
        qkv = (2 * tokens * d + 3 * tokens * kv) * low
    else:
        # grouped-query on the plain formula: rotary saves the q and k copies; k and v are repeated to n_head
        # heads for baddbmm and the matmul, which save those repeats (d wide) and the rotated q; the rotated k
        # and the v copy are read by repeat_interleave only, which saves nothing.
        qkv = (4 * tokens * d + tokens * kv) * low
    # Under autocast, apply_rotary casts the fp32 cos/sin tables for q and for k, and the products save them
    # (4 tables of T x head_dim/2). In fp32 they are the model's own buffers: nothing extra.
    rotary = 4 * seq_len * (head_dim // 2) * low if low != FP32_BYTES else 0
    if attention == "math":
        # baddbmm saves q and k (counted above); softmax saves its probabilities (B, H, T, T) and the
        # probabilities @ v matmul saves them again (same tensor) and v (counted above).
        core = micro_batch * H * seq_len * seq_len * low
    else:
        # SDPA's flash kernel saves q, k, v (counted above), its output and the per-row logsumexp (fp32).
        # Measured for the CPU kernel in fp32; bf16 flash (the GPU case) is derived with the same structure
        # and bf16 sizes, not measured.
        core = tokens * d * low + micro_batch * H * seq_len * FP32_BYTES
    projection_input = tokens * d * low  # y.transpose(1, 2).contiguous(): a new copy, saved by proj
    return qkv + rotary + core + projection_input


def eager_block_bytes(config, micro_batch, seq_len, low, attention):
    """What one block saves for backward without torch.compile."""
    tokens, d = micro_batch * seq_len, config.n_embd
    return (rms_norm_bytes(tokens, d, 1, low)  # attn_norm, its output read by qkv
            + attention_bytes(config, micro_batch, seq_len, low, attention)
            + rms_norm_bytes(tokens, d, 2, low)  # mlp_norm, read by w1 and w3
            # SwiGLU: silu saves w1's output, the product saves silu's output and w3's output, and w2 saves the
            # product: four (tokens, ffw) tensors.
            + 4 * tokens * config.ffw_size * low)


def activation_bytes(config, micro_batch, seq_len, dtype, attention, checkpointing=False, weight_copies=True):
    """Bytes one forward with targets saves for backward, counted once per storage; parameters cost nothing.

    Under autocast (bf16/fp16: weights stay fp32, as in train.py) the low-precision weight copies every matmul
    saves are included (~2 bytes per parameter) unless weight_copies=False (FSDP: its all-gathered bf16 weights
    are counted by memory_estimate); in fp32 the saved weights are the parameters themselves. With activation
    checkpointing each block keeps only its fp32 input, and one block's activations exist again while its
    backward recomputes them.
    """
    low = activation_dtype_bytes(dtype)
    tokens, d, V = micro_batch * seq_len, config.n_embd, config.vocab_size
    per_layer = eager_block_bytes(config, micro_batch, seq_len, low, attention)
    copies = matmul_weights(config) * low if low != FP32_BYTES and weight_copies else 0  # autocast's, saved by mms
    embedding = tokens * INDEX_BYTES  # the lookup saves the token ids
    head = rms_norm_bytes(tokens, d, 1, low)  # final_norm, its output read by lm_head
    # cross_entropy = log_softmax + nll_loss: log_softmax saves its fp32 output (tokens x vocab, the largest
    # single term at the GPT-2 vocabulary); nll_loss saves it again, the targets and a scalar total weight.
    loss = tokens * V * FP32_BYTES + tokens * INDEX_BYTES + FP32_BYTES
    blocks = config.n_layer * tokens * d * FP32_BYTES + per_layer if checkpointing else config.n_layer * per_layer
    return blocks + copies + embedding + head + loss


def compiled_block_bytes(config, tokens, low):
    """What one block saves for backward under torch.compile, as inductor's partitioner chooses: the block's two
    fp32 residual-stream inputs and their norms' rstd; in the compute dtype (`low` bytes) the attention norm's
    output, the rotated q and k, v, attention's output and its contiguous copy for the projection, the MLP norm's
    output, and SwiGLU's gate, up and product; attention's per-row logsumexp (fp32). The rest (the norms' inner
    values, silu, the rotary products) is recomputed in backward."""
    d, f, kv = config.n_embd, config.ffw_size, config.kv_dim
    return tokens * (2 * d * FP32_BYTES + low * (5 * d + 2 * kv) + 3 * low * f + config.n_head * FP32_BYTES
                     + 2 * FP32_BYTES)


def compiled_head_bytes(config, tokens, low):
    """The head and the loss under torch.compile, fused: two d-wide tensors in the compute dtype (the final norm's
    output among them), three fp32 values per token (its rstd, the loss's statistics), the logits in the compute
    dtype, from which backward recomputes the softmax, and one fp32 scalar (the loss's token count)."""
    return tokens * (2 * low * config.n_embd + 3 * FP32_BYTES + low * config.vocab_size) + FP32_BYTES


def compiled_loss_workspace_bytes(config, micro_batch, seq_len, dtype):
    """The transient around the fused loss, at the backward's start: the logits' fp32 gradient, and its copy in the
    compute dtype for the head's matmul (none in fp32). The copy may be fused away: an upper bound, kept because an
    estimate that says whether a micro-batch fits must not read low."""
    low = activation_dtype_bytes(dtype)
    return micro_batch * seq_len * config.vocab_size * (FP32_BYTES + (low if low != FP32_BYTES else 0))


def logits_workspace_bytes(config, micro_batch, seq_len, dtype):
    """The transient memory around the loss on top of the saved activations, at its peak: an estimate.

    Forward: lm_head's logits (low precision) exist next to their fp32 copy for cross-entropy (none in fp32)
    while log_softmax writes its output (already counted as saved). Backward starts with nll_loss's fp32
    gradient (tokens x vocab) and log_softmax's fp32 input gradient next to it, while every activation is still
    saved. train.py keeps only the loss of the forward's (logits, loss), so the logits are freed before
    backward. Peak: the backward's start, tokens x vocab x 8 bytes (in bf16; the forward's 6 is lower).
    """
    scores = micro_batch * seq_len * config.vocab_size  # one per token and class
    logits = scores * activation_dtype_bytes(dtype)
    fp32_copy = scores * FP32_BYTES if dtype != torch.float32 else 0  # .float() is a no-op in fp32
    forward_peak = logits + fp32_copy
    backward_peak = 2 * scores * FP32_BYTES
    return max(forward_peak, backward_peak)


def optimizer_bytes_per_param(optimizer):
    """AdamW: exp_avg and exp_avg_sq. Schedule-free AdamW (schedulefree 1.4): z and exp_avg_sq, no momentum."""
    if optimizer not in ("adamw", "adamw_schedulefree"):
        raise ValueError(f"optimizer must be adamw or adamw_schedulefree, got '{optimizer}'")
    return 2 * FP32_BYTES


def fsdp_unsharded_bytes(config, dtype):
    """What FSDP2 holds whole at once, an estimate: two blocks' weights all-gathered in the compute dtype (the
    one computing and the one prefetched), the root's (embedding, head, final norm: kept whole from forward to
    backward), and one block's fp32 gradients before their reduce-scatter."""
    d, f = config.n_embd, config.ffw_size
    block = 2 * d * d + 2 * d * config.kv_dim + 3 * d * f + 2 * d
    root = config.vocab_size * d * (1 if config.tie_embeddings else 2) + d
    return (2 * block + root) * activation_dtype_bytes(dtype) + block * FP32_BYTES


def compiled_activation_bytes(config, micro_batch, seq_len, dtype, compiled_loss, weight_copies=True):
    """activation_bytes under torch.compile. compiled_loss: the head and loss are compiled with the blocks (one
    process or DDP); under FSDP only the blocks are (lab/parallel.py's shard), and the head and loss run eager."""
    low, tokens = activation_dtype_bytes(dtype), micro_batch * seq_len
    blocks = config.n_layer * compiled_block_bytes(config, tokens, low)
    copies = matmul_weights(config) * low if low != FP32_BYTES and weight_copies else 0
    if compiled_loss:
        return blocks + copies + compiled_head_bytes(config, tokens, low)
    eager_head = (activation_bytes(config, micro_batch, seq_len, dtype, "flash", weight_copies=False)
                  - config.n_layer * eager_block_bytes(config, micro_batch, seq_len, low, "flash"))
    return blocks + copies + eager_head


def fuses_loss(compiled, activation_checkpointing=False, world_size=1, parallelism="ddp", **_):
    """Whether torch.compile compiles the loss with the head: one process or DDP, without activation checkpointing
    (FSDP compiles each block alone, lab/parallel.py's shard)."""
    return compiled and not activation_checkpointing and (parallelism != "fsdp" or world_size == 1)


def memory_estimate(config, micro_batch, seq_len, dtype, device_type, optimizer="adamw", swa=False, ema=False,
                    world_size=1, parallelism="ddp", activation_checkpointing=False, compiled=False):
    """{part: bytes} on one device for one training micro-step, with 'total' their sum. Under DDP every process
    holds everything; under FSDP (parallelism='fsdp', world_size processes) weights, gradients, optimizer state
    and averages are sharded, and `fsdp_buffers` is what is all-gathered whole at a time. compiled: torch.compile's
    saved tensors (compiled_activation_bytes; with activation checkpointing the eager count is kept)."""
    n = num_params(config)
    shards = world_size if parallelism == "fsdp" else 1
    compiled_loss = fuses_loss(compiled, activation_checkpointing, world_size, parallelism)
    compiled = compiled and not activation_checkpointing
    parts = dict(
        weights=n * FP32_BYTES / shards,
        # DDP with gradient_as_bucket_view=True: the .grad tensors are views of its all-reduce buckets, so the
        # buckets are the gradients, not a second fp32 copy of them.
        gradients=n * FP32_BYTES / shards,
        optimizer=n * optimizer_bytes_per_param(optimizer) / shards,
        # swa.py: SWA keeps the running window and the latest completed one, EMA one average, all in fp32.
        averages=n * FP32_BYTES * (2 * bool(swa) + bool(ema)) / shards,
        activations=compiled_activation_bytes(config, micro_batch, seq_len, dtype, compiled_loss, shards == 1)
        if compiled else activation_bytes(config, micro_batch, seq_len, dtype, attention_kind(device_type, dtype),
                                          activation_checkpointing, weight_copies=shards == 1),
        logits_workspace=(compiled_loss_workspace_bytes if compiled_loss else logits_workspace_bytes)(
            config, micro_batch, seq_len, dtype),
        fsdp_buffers=fsdp_unsharded_bytes(config, dtype) if shards > 1 else 0,
    )
    parts["total"] = sum(parts.values())
    return parts


def fitting_micro_batch(config, seq_len, dtype, device_type, per_process_batch, budget_bytes, **kwargs):
    """The largest divisor of per_process_batch whose estimated total fits budget_bytes, or None if 1 does not.

    kwargs go to memory_estimate (optimizer, swa, ema). A divisor, so that gradient accumulation splits this
    process's batch into equal micro-batches.
    """
    for micro_batch in range(per_process_batch, 0, -1):
        if per_process_batch % micro_batch == 0:
            total = memory_estimate(config, micro_batch, seq_len, dtype, device_type, **kwargs)["total"]
            if total <= budget_bytes:
                return micro_batch
    return None


def auto_micro_batch(cfg, mconf, device, dtype, world_size):
    """micro_batch_size='auto': on a GPU the largest divisor of a process's share of the batch whose estimate fits
    the GPU's memory less HEADROOM_GB (1 when none does); elsewhere None, the whole share in one forward."""
    if device.type != "cuda":
        return None
    budget = torch.cuda.get_device_properties(device).total_memory - HEADROOM_GB * 1e9
    return fitting_micro_batch(mconf, cfg["seq_len"], dtype, "cuda", cfg["batch_size"] // world_size, budget,
                               **estimate_settings(cfg, world_size)) or 1


def estimate_settings(cfg, world_size):
    """memory_estimate's keyword arguments for a run of cfg on world_size processes."""
    return dict(optimizer=cfg["optimizer"], swa=cfg["swa"], ema=cfg["ema"], world_size=world_size,
                parallelism=cfg["parallelism"], activation_checkpointing=cfg["activation_checkpointing"],
                compiled=cfg["compile"])


ASSUMED_MFU = 0.4  # for the time estimate: well-tuned GPU runs of these sizes reach 40-50 % (docs/performance.md)
GPU_GB_IF_UNKNOWN = 80  # the paper-scale configs are sized for 80 GB devices (A100/H100)
HEADROOM_GB = 10  # CUDA context, cuBLAS/NCCL workspaces, fragmentation: left out of the estimate


def device_facts(cfg):
    """(device type, its memory in GB, peak FLOP/s, name, precision.Precision) as a run of cfg would see them,
    without a process group and without allocating: a GPU's name and memory come from its properties, a CPU's
    peak and precision from one probe at 512 x 512 x 512."""
    wanted = cfg["device"]
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(wanted)
    if device.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device.index or 0)
        chosen = precision.resolve(cfg["dtype"], device)
        return (device.type, props.total_memory / 1e9, precision.peak_flops(chosen, device, cfg["peak_tflops"]),
                props.name, chosen)
    if device.type == "cpu":
        chosen = precision.for_model(cfg["dtype"], device, [(512, 512, 512)])
        return device.type, None, precision.peak_flops(chosen, device, cfg["peak_tflops"]), device.type, chosen
    # a GPU type this machine lacks: planned by its peak_tflops, in bf16 unless asked otherwise
    chosen = precision.resolve(cfg["dtype"], device, cuda_bf16=True)
    return device.type, None, cfg["peak_tflops"] and cfg["peak_tflops"] * 1e12, device.type, chosen


def training_seconds(cfg, mconf, world_size, peak):
    """Seconds for the training tokens and the evaluations (forward only: a third of the FLOPs per token)."""
    flops = flops_per_token(mconf, cfg["seq_len"])["chinchilla"]
    train_flops = cfg["max_steps"] * cfg["batch_size"] * cfg["seq_len"] * flops
    evaluations = cfg["max_steps"] // cfg["eval_interval"] + 2
    eval_flops = evaluations * (cfg["eval_tokens"] // cfg["seq_len"]) * cfg["seq_len"] * flops / 3
    return (train_flops + eval_flops) / (world_size * peak * ASSUMED_MFU)


def dry_run(cfg, mconf, world_size, micro_batch, grad_accum, data):
    """The lines train.py --dry_run=True prints: nothing is built on a device, nothing trains. `data` is the
    data.Dataset, or None when data_dir is not prepared yet."""
    gb = lambda b: f"{b / 1e9:.3g} GB"
    count = lambda n: f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"
    device_type, memory_gb, peak, name, chosen = device_facts(cfg)
    dtype = chosen.torch_dtype
    n = num_params(config=mconf)
    flops = flops_per_token(mconf, cfg["seq_len"])
    tokens = cfg["max_steps"] * cfg["batch_size"] * cfg["seq_len"]
    sharding = estimate_settings(cfg, world_size)
    parts = memory_estimate(mconf, micro_batch, cfg["seq_len"], dtype, device_type, **sharding)
    budget_gb = (memory_gb or GPU_GB_IF_UNKNOWN) - HEADROOM_GB
    fits = fitting_micro_batch(mconf, cfg["seq_len"], dtype, device_type, cfg["batch_size"] // world_size,
                               budget_gb * 1e9, **sharding)
    source = "WORLD_SIZE" if "WORLD_SIZE" in os.environ else "one process; torchrun sets WORLD_SIZE"
    lines = [
        f"dry run of {cfg['out_dir']}: nothing is built or trained",
        f"processes: {world_size} ({source}), device {name}, {chosen.dtype} ({chosen.requested}: {chosen.rule})" + (", compiled" if cfg["compile"] else "")
        + (f", {cfg['parallelism']}" if world_size > 1 else "")
        + (", activation checkpointing" if cfg["activation_checkpointing"] else ""),
        f"micro-batch: {micro_batch} sequences x grad_accum {grad_accum} per process "
        f"(batch {cfg['batch_size']} x {cfg['seq_len']} tokens = {cfg['batch_size'] * cfg['seq_len']:,} tokens per step)",
        f"parameters: {count(n)} ({count(n - mconf.vocab_size * mconf.n_embd * (1 if mconf.tie_embeddings else 2))} "
        f"without the embedding{'' if mconf.tie_embeddings else ' and the untied head'})",
        f"FLOPs per token: {flops['chinchilla'] / 1e6:.1f}M (Chinchilla count), {flops['six_n'] / 1e6:.1f}M (6N), "
        f"forward and backward",
        f"tokens: {count(tokens)} in {cfg['max_steps']:,} steps, " + (
            f"{tokens / data.train_tokens:.2f} epochs of the {count(data.train_tokens)} training tokens of "
            f"{cfg['data_dir']}" if data else
            f"{cfg['data_dir']} is not prepared yet (`{corpora.prepare_command(cfg['data_dir'])}`): "
            f"a vocabulary of {planned_vocab_size(cfg['data_dir']):,} tokens assumed from its name"),
        f"memory: ~{gb(parts['total'])} per device (weights {gb(parts['weights'])}, gradients {gb(parts['gradients'])}, "
        f"optimizer {gb(parts['optimizer'])}, activations {gb(parts['activations'])}); the total also holds "
        f"{gb(parts['logits_workspace'])} of the loss's transients ("
        + ("compiled: the loss fused, its fp32 gradient" if fuses_loss(**sharding) else "the eager loss's fp32 logits")
        + ")"
        + (f", {gb(parts['averages'])} of weight averages" if parts["averages"] else "")
        + (f", {gb(parts['fsdp_buffers'])} of weights FSDP gathers whole" if parts["fsdp_buffers"] else ""),
        f"  largest micro_batch_size within {budget_gb:.0f} GB ({memory_gb or GPU_GB_IF_UNKNOWN:.0f} GB less "
        f"{HEADROOM_GB} GB headroom): {fits or 'none, not even 1'}"
        + ("" if memory_gb else f" (device memory unknown here: {GPU_GB_IF_UNKNOWN} GB assumed)"),
    ]
    if peak:
        hours = training_seconds(cfg, mconf, world_size, peak) / 3600
        lines.append(f"time: ~{hours:.3g} h at {ASSUMED_MFU:.0%} MFU of {peak / 1e12:.3g} TFLOP/s per device "
                     f"({name} x {world_size}), evaluations included")
    else:
        lines.append(f"time: unknown, no peak FLOP/s for {name}: pass peak_tflops=<dense bf16 TFLOP/s per device>")
    return lines


def planned_vocab_size(data_dir):
    """The vocabulary a data_dir not prepared yet will have, from its name (corpora.settings_of_name): the bytes
    tokenizer's, else GPT-2's, the paper's."""
    settings = corpora.settings_of_name(data_dir)
    return BYTES_VOCAB if settings and settings[2] == "bytes" else GPT2_VOCAB


def print_plan(cfg):
    """--dry_run: what the run would be, from the config, the data's meta and a model on the meta device."""
    world_size = parallel.Processes.from_env().world_size  # as torchrun sets it; no process group is made
    check_config(cfg, world_size)
    try:
        data = Dataset(cfg["data_dir"])
    except MissingData:  # a plan is worth having before the data is prepared: the vocabulary its name says
        data = None
    mconf = model_config(cfg, data.vocab_size if data else planned_vocab_size(cfg["data_dir"]))
    print("\n".join(dry_run(cfg, mconf, world_size, *micro_batching(cfg, world_size), data)))
