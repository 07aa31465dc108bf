"""
The settings of a training run and what they mean before anything is built, for train.py and every script that
starts or plans runs: every setting defined once (SETTINGS: default, help, what is allowed; DEFAULTS and TYPES derive
from it), the model a config names, its batch split over processes and micro-batches, the settings that cannot work,
the precision it computes in, the data order's seed; and how a script reports bad input (run_script).

    from lab.settings import check_config, micro_batching, model_config
    check_config(cfg, world_size=1)                      # a ConfigError naming the first setting that cannot work
    micro_batch, grad_accum = micro_batching(cfg, world_size=8)
    mconf = model_config(cfg, vocab_size=50257)          # model.GPTConfig: the preset, the shape keys over it
"""

import torch

from lab import checkpoint, kernels, parallel, perf, precision, tracking
from lab.config import ConfigError, Setting, check_values, defaults_of, types_of
from lab.data import DataError
from model import PRESETS, GPTConfig, padded_vocab_size
from schedules import SCHEDULES, ScheduleError, schedule_args, validate_schedule

SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings")
COMPILE_MODES = ("default", "max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead")  # torch.compile's
INT_OR_NONE = (int, type(None))
SEED = "[0, 2**64)"  # torch.manual_seed's range; numpy's generators take any seed >= 0
# under torchrun, a collective that waits longer fails (a process died or hangs). It must outlast the longest
# legitimate wait, bounded in docs/training.md ("No process waits forever"): the 8B checkpoint (89 GB) through one
# node's filesystem client at 50 MB/s or more, and a cold first-step compile (minutes), which every process runs
DIST_TIMEOUT_S = 1800

# Every setting of a run, defined once: default, help, what is allowed (lab/config.py's Setting). train.py --help
# prints them; docs/training.md lists them (a test checks that it lists every key).
SETTINGS = dict(
    # I/O
    out_dir=Setting("out/run", "the run's folder: config.json, metrics.jsonl, ckpt_<step>/"),
    data_dir=Setting("data/stdlib-bytes", "a folder prepare_data.py wrote, or nanoGPT's train.bin/val.bin (with its meta.pkl: "
                                           "a char-level vocabulary), checked before the run reads it"),
    init_from=Setting("scratch", "scratch, resume (out_dir's latest checkpoint), auto (resume if out_dir holds a "
                                 "checkpoint, else start: the command that started a run continues it after a restart "
                                 "or a requeue) or a checkpoint to branch from"),
    overwrite=Setting(False, "start from scratch in an out_dir that holds a run (its checkpoints and logs are "
                             "deleted)"),
    allow_data_change=Setting(False, "a branch may read another data stream (data_dir, seed, data order, batch_size, "
                                     "seq_len) than its trunk"),
    dry_run=Setting(False, "print the plan (processes, micro-batches, memory, time) and train nothing"),
    seed=Setting(1337, "the model's initialization, and the data order unless data_seed is set", SEED),
    data_seed=Setting(None, "the data order alone (None: seed)", SEED, INT_OR_NONE),
    device=Setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"),
    compile=Setting(False, "torch.compile the model"),
    # 'auto': what the device computes natively and fast (lab/precision.py: bf16 on GPUs that have it and on CPUs whose
    # bf16 matmuls are fast, fp16 on older GPUs, fp32 elsewhere), or float32 / bfloat16 / float16 as asked
    dtype=Setting("auto", "the precision: auto is what the device computes fast (lab/precision.py)", precision.DTYPES),
    dist_timeout_s=Setting(DIST_TIMEOUT_S, "under torchrun, a collective that waits longer fails every process",
                           "> 0", (int, float)),
    parallelism=Setting("ddp", "under torchrun: a full replica per process (ddp), or FSDP2's shards (fsdp)",
                        ("ddp", "fsdp")),
    activation_checkpointing=Setting(False, "recompute each block in backward instead of keeping its activations"),
    # model: a preset from model.PRESETS; the shape keys, when set, override the preset's values
    model=Setting("cpu_tiny", "a preset of model.PRESETS", tuple(PRESETS)),
    n_layer=Setting(None, "layers (None: the preset's)", ">= 1", INT_OR_NONE),
    n_head=Setting(None, "attention heads (None: the preset's)", ">= 1", INT_OR_NONE),
    n_embd=Setting(None, "the width (None: the preset's)", ">= 1", INT_OR_NONE),
    ffw_size=Setting(None, "SwiGLU's hidden size (None: the preset's)", ">= 1", INT_OR_NONE),
    n_kv_head=Setting(None, "key/value heads of grouped-query attention (None: the preset's)", ">= 1", INT_OR_NONE),
    tie_embeddings=Setting(None, "the output head tied to the embedding (None: the preset's)",
                           types=(bool, type(None))),
    # batch: batch_size sequences per optimizer step in total, whatever the number of processes
    batch_size=Setting(32, "sequences per optimizer step, all processes and micro-steps together", ">= 1"),
    seq_len=Setting(256, "tokens per sequence", ">= 1"),
    micro_batch_size=Setting(None, "at most this many sequences per forward of one process (None: its share in one "
                                   "forward; auto: on a GPU the most its memory holds by lab/plan.py's estimate)",
                             ">= 1", (int, type(None), str)),
    # optimizer and schedule
    max_steps=Setting(200, "optimizer steps of the run (the schedule's N)", ">= 1"),
    lr=Setting(2e-3, "the peak learning rate", "> 0"),
    schedule=Setting("wsd", "the LR schedule (schedules.py)", SCHEDULES),
    warmup_steps=Setting(20, "steps of linear warmup", ">= 0"),
    cycle_steps=Setting(None, "cosine: the length of its cycle (None: max_steps)", ">= 1", INT_OR_NONE),
    cooldown_frac=Setting(0.2, "wsd: the cooldown's share of max_steps", "(0, 1]"),
    cooldown_steps=Setting(None, "wsd: the cooldown's steps (None: cooldown_frac of max_steps)", ">= 1", INT_OR_NONE),
    cooldown_shape=Setting("1-sqrt", "wsd: the cooldown's shape: linear, 1-sqrt, cosine, square, mirror_cosine or "
                                     "1-x^A"),
    final_lr_frac=Setting(None, "the LR at the end, a fraction of the peak (None: 0.1 for cosine, else 0)", "[0, 1]",
                          (float, type(None))),
    optimizer=Setting("adamw", "the optimizer (adamw_schedulefree needs schedule=constant)",
                      ("adamw", "adamw_schedulefree")),
    beta1=Setting(0.9, "Adam's beta1", "[0, 1)"),
    beta2=Setting(0.95, "Adam's beta2", "[0, 1)"),
    weight_decay=Setting(0.1, "AdamW's decoupled weight decay, on the 2-D weight matrices only", ">= 0"),
    grad_clip=Setting(1.0, "clip the global gradient norm at this (0: off)", ">= 0"),
    # evaluation, logging, checkpoints
    eval_interval=Setting(50, "evaluate every this many steps (and at step 0, the cooldown's start, the end)", ">= 1"),
    eval_tokens=Setting(65536, "the fixed validation set's size in tokens", ">= 1"),
    eval_batch_size=Setting(32, "sequences per evaluation forward", ">= 1"),
    log_interval=Setting(10, "a metrics.jsonl record and a printed line every this many steps", ">= 1"),
    ckpt_interval=Setting(100, "a checkpoint every this many steps (and at the end)", ">= 1"),
    keep_last_ckpts=Setting(2, "the newest checkpoints kept, older ones deleted (None: keep every checkpoint)",
                            ">= 1", INT_OR_NONE),
    keep_ckpt_steps=Setting([], "steps whose checkpoints are never deleted (branch points)", ">= 1", items=int),
    # weight averaging (swa.py): logged as val_loss_swa / val_loss_ema at every evaluation
    swa=Setting(False, "keep a stochastic weight average; logs val_loss_swa"),
    swa_interval=Setting(5, "fold the weights into the SWA average every this many steps", ">= 1"),
    swa_window=Setting(500, "the SWA average restarts every this many steps (a multiple of swa_interval)", ">= 1"),
    ema=Setting(False, "keep an exponential moving average; logs val_loss_ema"),
    ema_decay=Setting(0.999, "ema = decay * ema + (1 - decay) * weights", "[0, 1)"),
    ema_interval=Setting(1, "update the EMA every this many steps", ">= 1"),
    peak_tflops=Setting(None, "the device's peak for MFU (None: a table of GPUs, or on a CPU a matmul probe)", "> 0",
                        (float, type(None))),
    # GPU speed levers, each measured on and off by bench/gpu.py (docs/performance.md)
    compile_mode=Setting("default", "torch.compile's mode", COMPILE_MODES),
    attention=Setting("auto", "SDPA's back-end on CUDA", kernels.ATTENTION),
    fused_loss=Setting("none", "the head and the cross-entropy fused in chunks (liger, cce: requirements-gpu.txt)",
                       kernels.FUSED_LOSSES),
    liger_kernels=Setting(False, "Liger-kernel's RMSNorm, SwiGLU and rotary kernels"),
    float8=Setting(False, "torchao's float8 matmuls in the blocks' linear layers"),
    fused_optimizer=Setting(True, "AdamW's fused CUDA kernel (False: its foreach kernels)"),
    **tracking.SETTINGS,  # wandb_log, wandb_project, wandb_run_name: metrics.jsonl's records to Weights & Biases too
)
DEFAULTS, TYPES = defaults_of(SETTINGS), types_of(SETTINGS)

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
    """Settings that cannot work, found before anything is written: each value against what SETTINGS allows, then
    the settings that cannot work together."""
    check_values(cfg, SETTINGS)
    micro_batching(cfg, world_size)
    if cfg["parallelism"] == "fsdp" and cfg["dtype"] == "float16":  # its loss scaling would need a sharded scaler
        raise ConfigError("parallelism=fsdp runs in bfloat16 or float32, not float16 (what dtype=auto means on a GPU "
                          "without bf16): pass dtype=float32")
    if cfg["optimizer"] == "adamw_schedulefree" and cfg["schedule"] != "constant":
        raise ConfigError(f"optimizer=adamw_schedulefree replaces the LR schedule: set schedule=constant, "
                          f"not '{cfg['schedule']}'")
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
        parallel.leave(str(e), getattr(e, "agreed", False))
    except RuntimeError as e:
        line = parallel.collective_failure(e, procs)
        if line is None:
            raise
        parallel.leave(line)
    if procs.distributed:
        parallel.exit_at_once(0)
