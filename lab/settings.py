"""
The settings of a training run and what they mean before anything is built, for train.py and every script that
starts or plans runs: every setting with its default (DEFAULTS, TYPES), the model a config names, its batch split over processes and micro-batches, the settings that cannot work, the precision
it computes in, the data order's seed; and how a script reports bad input (run_script).

    from lab.settings import check_config, micro_batching, model_config
    check_config(cfg, world_size=1)                      # a ConfigError naming the first setting that cannot work
    micro_batch, grad_accum = micro_batching(cfg, world_size=8)
    mconf = model_config(cfg, vocab_size=50257)          # model.GPTConfig: the preset, the shape keys over it
"""

import torch

from lab import checkpoint, kernels, parallel, perf, precision, tracking
from lab.config import ConfigError
from lab.data import DataError
from model import PRESETS, GPTConfig, padded_vocab_size
from schedules import ScheduleError, schedule_args, validate_schedule

SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings")
COMPILE_MODES = ("default", "max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead")  # torch.compile's

DEFAULTS = dict(
    # I/O
    out_dir="out/run", data_dir="data/stdlib-bytes",
    # 'scratch', 'resume' (out_dir's latest checkpoint), 'auto' (resume if out_dir holds a checkpoint, else start:
    # the command that started a run continues it, after a restart or a requeue) or the path of a checkpoint
    init_from="scratch",
    overwrite=False,  # allow starting from scratch in an out_dir that already holds a run
    allow_data_change=False,  # a branch may read another data stream (data_dir, data order, batch_size, seq_len)
    dry_run=False,  # print the plan (processes, micro-batches, memory, time) and train nothing
    seed=1337,  # the model's initialization, and the data order unless data_seed is set
    data_seed=None,  # the data order alone (None: seed): runs that differ only in the order of the same data
    device="auto", compile=False,
    # 'auto': what the device computes natively and fast (lab/precision.py: bf16 on GPUs that have it and on CPUs whose
    # bf16 matmuls are fast, fp16 on older GPUs, fp32 elsewhere), or float32 / bfloat16 / float16 as asked
    dtype="auto",
    # under torchrun, a collective that waits longer fails (a process died or hangs). It must outlast the longest
    # legitimate wait, bounded in docs/training.md ("No process waits forever"): the 8B checkpoint (89 GB) through one
    # node's filesystem client at 50 MB/s or more, and a cold first-step compile (minutes), which every process runs
    dist_timeout_s=1800,
    parallelism="ddp",  # under torchrun: 'ddp' (a full replica per process) or 'fsdp' (FSDP2: sharded)
    activation_checkpointing=False,  # recompute each block in backward instead of keeping its activations
    # model: a preset from model.PRESETS; the shape keys, when set, override the preset's values
    model="cpu_tiny", n_layer=None, n_head=None, n_embd=None, ffw_size=None, n_kv_head=None, tie_embeddings=None,
    # batch: batch_size sequences per optimizer step in total, whatever the number of processes;
    # micro_batch_size: at most this many sequences per forward of one process (None: its share in one forward;
    # 'auto': on a GPU the most that its memory holds by lab/plan.py's estimate)
    batch_size=32, seq_len=256, micro_batch_size=None,
    # optimizer and schedule
    max_steps=200, lr=2e-3, schedule="wsd", warmup_steps=20, cycle_steps=None,
    cooldown_frac=0.2, cooldown_steps=None, cooldown_shape="1-sqrt", final_lr_frac=None,
    optimizer="adamw", beta1=0.9, beta2=0.95, weight_decay=0.1, grad_clip=1.0,
    # evaluation, logging, checkpoints
    eval_interval=50, eval_tokens=65536, eval_batch_size=32, log_interval=10,
    ckpt_interval=100, keep_last_ckpts=2, keep_ckpt_steps=[],
    # weight averaging (swa.py): logged as val_loss_swa / val_loss_ema at every evaluation
    swa=False, swa_interval=5, swa_window=500, ema=False, ema_decay=0.999, ema_interval=1,
    peak_tflops=None,  # device peak for MFU; None: GPU table, or a matmul probe on CPU
    # GPU speed levers, each measured on and off by bench/gpu.py (docs/performance.md): torch.compile's mode (default,
    # max-autotune, max-autotune-no-cudagraphs, reduce-overhead), SDPA's back-end (auto, flash, cudnn, efficient,
    # math) and lab/kernels.py's: a fused linear cross-entropy (none, liger, cce), Liger's kernels, float8 matmuls
    compile_mode="default", attention="auto", fused_loss="none", liger_kernels=False, float8=False,
    fused_optimizer=True,  # AdamW's fused CUDA kernel (False: its foreach kernels)
    **tracking.KEYS,  # wandb_log, wandb_project, wandb_run_name: metrics.jsonl's records to Weights & Biases too
)
TYPES = {k: (int, type(None)) for k in (*SHAPE_KEYS, "cooldown_steps", "cycle_steps", "data_seed")}
TYPES["micro_batch_size"] = (int, type(None), str)
TYPES.update(tie_embeddings=(bool, type(None)), final_lr_frac=(float, type(None)), peak_tflops=(float, type(None)),
             dist_timeout_s=(int, float), **tracking.TYPES)

# Errors that mean "bad input or a run that cannot go on": one line for the user, no traceback.
USER_ERRORS = (ConfigError, DataError, ScheduleError, checkpoint.CheckpointError, FloatingPointError)


def data_order_seed(cfg):
    """The seed of the training data's order: data_seed when set, else the run's seed."""
    return cfg["seed"] if cfg["data_seed"] is None else cfg["data_seed"]


def model_config(cfg, vocab_size):
    """The model.GPTConfig of cfg: its preset, with the shape keys that are set over it, the vocabulary padded."""
    if cfg["model"] not in PRESETS:
        raise ConfigError(f"unknown model preset '{cfg['model']}'; choose one of {', '.join(PRESETS)}")
    shape = dict(PRESETS[cfg["model"]])
    shape.update({k: cfg[k] for k in SHAPE_KEYS if cfg[k] is not None})
    try:
        return GPTConfig(vocab_size=padded_vocab_size(vocab_size), block_size=cfg["seq_len"], **shape)
    except ValueError as e:  # e.g. a head size that does not divide the width
        raise ConfigError(str(e)) from None


def micro_batching(cfg, world_size):
    """(sequences per forward, micro-steps per optimizer step) of each process: the global batch_size split
    over the processes, then into micro-batches of at most micro_batch_size, so results depend on neither. At
    most: the paper configs' 50 runs 4 micro-steps on one GPU and one of 25 on each of 8."""
    per_process, rest = divmod(cfg["batch_size"], world_size)
    if rest:
        raise ConfigError(f"batch_size={cfg['batch_size']} does not split evenly over {world_size} processes")
    if isinstance(cfg["micro_batch_size"], str):  # 'auto' before lab/plan.py's auto_micro_batch has resolved it
        if cfg["micro_batch_size"] != "auto":
            raise ConfigError(f"micro_batch_size must be a number, None or 'auto', got '{cfg['micro_batch_size']}'")
        return per_process, 1
    micro = min(cfg["micro_batch_size"] or per_process, per_process)
    if micro < 1 or per_process % micro:
        raise ConfigError(f"micro_batch_size={micro} does not divide the {per_process} sequences per process "
                          f"(batch_size={cfg['batch_size']} over {world_size} processes)")
    return micro, per_process // micro


def check_config(cfg, world_size):
    """Settings that cannot work, found before anything is written."""
    for key in ("batch_size", "seq_len", "max_steps", "eval_interval", "log_interval", "ckpt_interval",
                "eval_tokens", "eval_batch_size", "dist_timeout_s"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be at least 1, got {cfg[key]}")
    micro_batching(cfg, world_size)
    precision.check_dtype(cfg["dtype"])
    if cfg["parallelism"] not in ("ddp", "fsdp"):
        raise ConfigError(f"parallelism must be ddp or fsdp, got '{cfg['parallelism']}'")
    if cfg["parallelism"] == "fsdp" and cfg["dtype"] == "float16":  # its loss scaling would need a sharded scaler
        raise ConfigError("parallelism=fsdp runs in bfloat16 or float32, not float16 (what dtype=auto means on a GPU "
                          "without bf16): pass dtype=float32")
    if cfg["optimizer"] not in ("adamw", "adamw_schedulefree"):
        raise ConfigError(f"optimizer must be adamw or adamw_schedulefree, got '{cfg['optimizer']}'")
    if cfg["optimizer"] == "adamw_schedulefree" and cfg["schedule"] != "constant":
        raise ConfigError(f"optimizer=adamw_schedulefree replaces the LR schedule: set schedule=constant, "
                          f"not '{cfg['schedule']}'")
    if cfg["compile_mode"] not in COMPILE_MODES:
        raise ConfigError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got '{cfg['compile_mode']}'")
    kernels.check(cfg)
    validate_schedule(**schedule_args(cfg))


def choose_precision(cfg, device, mconf, micro_batch, run_dtype=None):
    """precision.Precision of cfg's dtype on `device` (on a CPU from matmul probes at the model's own shapes);
    run_dtype: the precision of the run this one resumes or branches off, which dtype=auto continues in."""
    shapes = perf.model_matmul_shapes(mconf, micro_batch * cfg["seq_len"])
    return precision.for_model(cfg["dtype"], device, shapes, run_dtype=run_dtype)


def make_optimizer(cfg, model, device):
    """AdamW (fused on CUDA unless fused_optimizer=False) or schedule-free AdamW, over model.param_groups: weight
    decay on the matrices only."""
    groups = model.param_groups(cfg["weight_decay"])
    betas = (cfg["beta1"], cfg["beta2"])
    if cfg["optimizer"] == "adamw_schedulefree":
        import schedulefree  # its own warmup and averaging: no external schedule on top (see check_config)
        return schedulefree.AdamWScheduleFree(groups, lr=cfg["lr"], betas=betas, warmup_steps=cfg["warmup_steps"])
    fused = device.type == "cuda" and cfg["fused_optimizer"]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=betas, fused=fused, foreach=None if fused else True)


def run_script(main, argv, errors=USER_ERRORS):
    """A script's entry point: bad input, or a collective that failed under torchrun, is one line and exit 1; a
    process of a torchrun job that finished exits 0 at once (parallel.exit_at_once says why)."""
    procs = parallel.Processes.from_env()
    try:
        main(argv)
    except errors as e:
        parallel.leave(str(e))
    except RuntimeError as e:
        line = parallel.collective_failure(e, procs)
        if line is None:
            raise
        parallel.leave(line)
    if procs.distributed:
        parallel.exit_at_once(0)
