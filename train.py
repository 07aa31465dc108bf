"""
Train the paper's GPT with any of its learning-rate schedules, on one CPU, one GPU, or many with torchrun.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes        # once: the embedded offline corpus
    python train.py configs/cpu_tiny.py                               # a ~1M model, constant LR + cooldown
    python train.py configs/124m_cooldown.py                          # the paper's 124M setup on a GPU
    torchrun --standalone --nproc_per_node=8 train.py configs/124m_cooldown.py
    python train.py configs/cpu_tiny.py --init_from=resume            # continue out_dir's latest checkpoint
    python train.py configs/cpu_tiny.py --init_from=out/trunk/ckpt_0000300.pt --out_dir=out/branch
                                                                       # a cooldown branched off a checkpoint

Settings: DEFAULTS below, then config files, then --key=value (see config.py). Writes to out_dir:
config.json (the resolved config), metrics.jsonl (one JSON object per logged step) and ckpt_<step>.pt.
"""

import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import checkpoint
import perf
from config import ConfigError, fail, parse_args, write_atomically
from data import DataError, Dataset
from model import GPT, PRESETS, GPTConfig, flops_per_token, padded_vocab_size
from schedules import ScheduleError, lr_multiplier, resolve_cooldown_steps, validate_schedule
from swa import EMA, SWA, save_weights, swapped_weights

DEFAULTS = dict(
    # I/O
    out_dir="out/run", data_dir="data/stdlib-bytes",
    init_from="scratch",  # 'scratch', 'resume' (out_dir's latest checkpoint) or the path of a checkpoint file
    overwrite=False,  # allow starting from scratch in an out_dir that already holds a run
    seed=1337, device="auto", dtype="bfloat16", compile=False,
    # model: a preset from model.PRESETS; the shape keys, when set, override the preset's values
    model="cpu_tiny", n_layer=None, n_head=None, n_embd=None, ffw_size=None,
    # batch: batch_size sequences per optimizer step in total, whatever the number of processes
    batch_size=32, seq_len=256, grad_accum=1,
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
)
TYPES = {k: (int, type(None)) for k in ("n_layer", "n_head", "n_embd", "ffw_size", "cooldown_steps", "cycle_steps")}
TYPES.update(final_lr_frac=(float, type(None)), peak_tflops=(float, type(None)))


# Errors that mean "bad input or a run that cannot go on": one line for the user, no traceback.
USER_ERRORS = (ConfigError, DataError, ScheduleError, checkpoint.CheckpointError, FloatingPointError)


def model_config(cfg, vocab_size):
    if cfg["model"] not in PRESETS:
        raise ConfigError(f"unknown model preset '{cfg['model']}'; choose one of {', '.join(PRESETS)}")
    shape = dict(PRESETS[cfg["model"]])
    shape.update({k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "ffw_size") if cfg[k] is not None})
    try:
        return GPTConfig(vocab_size=padded_vocab_size(vocab_size), block_size=cfg["seq_len"], **shape)
    except ValueError as e:  # e.g. a head size that does not divide the width
        raise ConfigError(str(e)) from None


def check_config(cfg, world_size):
    """Settings that cannot work, found before anything is written."""
    for key in ("batch_size", "seq_len", "grad_accum", "max_steps", "eval_interval", "log_interval",
                "ckpt_interval", "eval_tokens", "eval_batch_size"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be at least 1, got {cfg[key]}")
    if cfg["batch_size"] % (world_size * cfg["grad_accum"]):
        raise ConfigError(f"batch_size={cfg['batch_size']} is not divisible by processes ({world_size}) x "
                          f"grad_accum ({cfg['grad_accum']})")
    if cfg["dtype"] not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got '{cfg['dtype']}'")
    if cfg["optimizer"] not in ("adamw", "adamw_schedulefree"):
        raise ConfigError(f"optimizer must be adamw or adamw_schedulefree, got '{cfg['optimizer']}'")
    if cfg["optimizer"] == "adamw_schedulefree" and cfg["schedule"] != "constant":
        raise ConfigError(f"optimizer=adamw_schedulefree replaces the LR schedule: set schedule=constant, "
                          f"not '{cfg['schedule']}'")
    validate_schedule(**schedule_args(cfg))


def schedule_args(cfg):
    keys = ("schedule", "max_steps", "warmup_steps", "cooldown_frac", "cooldown_steps", "cooldown_shape",
            "final_lr_frac", "cycle_steps")
    return {k: cfg[k] for k in keys}


def learning_rate(cfg, step):
    """The LR of `step`. Schedule-free AdamW warms up and averages by itself: it gets the peak LR throughout."""
    if cfg["optimizer"] == "adamw_schedulefree":
        return cfg["lr"]
    return cfg["lr"] * lr_multiplier(step, **schedule_args(cfg))


def autocast_for(device, ptdtype):
    """Mixed precision for the forward pass; weights stay float32."""
    return nullcontext() if ptdtype == torch.float32 else torch.autocast(device_type=device.type, dtype=ptdtype)


def setup_device(name, local_rank):
    """This process's device, set up for speed: on CUDA the current device and TF32 matmuls; on a CPU subnormal
    floats flushed to zero (tiny gradients and Adam's second moments make x86 CPUs ~100x slower otherwise)."""
    if name != "auto":
        device = torch.device(name)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    return device


def make_optimizer(cfg, model, device):
    groups = model.param_groups(cfg["weight_decay"])
    betas = (cfg["beta1"], cfg["beta2"])
    if cfg["optimizer"] == "adamw_schedulefree":
        import schedulefree  # its own warmup and averaging: no external schedule on top (see check_config)
        return schedulefree.AdamWScheduleFree(groups, lr=cfg["lr"], betas=betas, warmup_steps=cfg["warmup_steps"])
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=betas, fused=device.type == "cuda")


def prepare_out_dir(cfg, master):
    """Refuse to mix two runs in one out_dir; on resume, drop log lines written after the checkpoint."""
    out_dir = Path(cfg["out_dir"])
    previous = out_dir / "config.json"
    source = Path(cfg["init_from"]).resolve()
    if cfg["init_from"] not in ("scratch", "resume") and source.parent == out_dir.resolve():
        raise ConfigError(f"init_from={cfg['init_from']} lies in out_dir {out_dir}: a branch needs its own out_dir")
    if cfg["init_from"] != "resume" and previous.exists() and not cfg["overwrite"]:
        raise ConfigError(f"{out_dir} already holds a run: use --init_from=resume to continue it, "
                          f"--overwrite=True to replace it, or another out_dir")
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        if cfg["init_from"] != "resume":
            for _, path in checkpoint.list_checkpoints(out_dir):
                path.unlink()
            for name in ("metrics.jsonl", "swa.pt", "ema.pt"):  # nothing of the replaced run may pass for this one's
                (out_dir / name).unlink(missing_ok=True)


def truncate_metrics(path, step):
    """After resuming from `step`, the lines logged past it belong to the lost future: remove them, and a last
    line cut short by a kill mid-write with them (logged after the last checkpoint, it is past `step` too)."""
    if path.exists():
        lines = [l for l in path.read_text().splitlines() if l.strip()]
        try:
            json.loads(lines[-1] if lines else "{}")
        except json.JSONDecodeError:
            lines.pop()
        kept = "".join(l + "\n" for l in lines if json.loads(l)["step"] <= step)
        write_atomically(path, lambda tmp: tmp.write_text(kept))


@torch.no_grad()
def evaluate(model, val_x, val_y, eval_batch_size, autocast, rank, world_size):
    """Mean loss over the fixed validation windows, shared out across processes."""
    model.eval()
    total = torch.zeros(2, device=val_x.device, dtype=torch.float64)
    with autocast:  # one region for all batches: autocast casts each weight to bf16 once, not once per batch
        for start in range(rank * eval_batch_size, len(val_x), world_size * eval_batch_size):
            x, y = val_x[start:start + eval_batch_size], val_y[start:start + eval_batch_size]
            _, loss = model(x, y)
            total[0] += loss.double() * y.numel()
            total[1] += y.numel()
    if world_size > 1:
        dist.all_reduce(total)
    model.train()
    return (total[0] / total[1]).item()


def main(argv):
    train(parse_args(argv, DEFAULTS, TYPES))


def train(cfg):
    """One run of the resolved config `cfg` (a dict with every key of DEFAULTS).

    Returns True when the run reached max_steps, False when SIGTERM or Ctrl-C stopped it (after the step in
    flight and a checkpoint), so that a caller running several runs stops too.
    """
    stop_signal = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run(cfg, stop_signal)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(cfg, stop_signal):
    # ---- set-up: config, processes, device, data, model, optimizer, starting point ----
    ddp = "RANK" in os.environ
    rank, local_rank, world_size = (int(os.environ.get(k, d)) for k, d in
                                    (("RANK", 0), ("LOCAL_RANK", 0), ("WORLD_SIZE", 1)))
    master = rank == 0
    check_config(cfg, world_size)
    device = setup_device(cfg["device"], local_rank)
    if ddp:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(cfg["seed"])
    ptdtype = getattr(torch, cfg["dtype"])
    autocast = autocast_for(device, ptdtype)
    scaler = torch.amp.GradScaler(device.type, enabled=ptdtype == torch.float16)

    data = Dataset(cfg["data_dir"])
    val_x, val_y = (t.to(device) for t in data.val_windows(cfg["eval_tokens"], cfg["seq_len"]))
    mconf = model_config(cfg, data.vocab_size)
    model = GPT(mconf).to(device)
    optimizer = make_optimizer(cfg, model, device)
    schedule_free = cfg["optimizer"] == "adamw_schedulefree"

    start_step, origin = 0, None
    if cfg["init_from"] != "scratch":
        needed = ("model", "optimizer", "scaler", "rng", "step", "config", "model_config")
        state = (checkpoint.load_latest(cfg["out_dir"], needed) if cfg["init_from"] == "resume"
                 else checkpoint.load(cfg["init_from"], required=needed))
        # block_size only sizes the rotary tables: a checkpoint's weights serve any seq_len
        differ = [f"{k}={v} (this run: {mconf.__dict__.get(k)})" for k, v in state["model_config"].items()
                  if k != "block_size" and v != mconf.__dict__.get(k)]
        if differ:
            raise checkpoint.CheckpointError(f"the checkpoint's model does not match this run's model: {', '.join(differ)}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        start_step = state["step"]
        # a branch records its trunk; a resumed run keeps whatever origin it had
        origin = (state.get("origin") if cfg["init_from"] == "resume"
                  else {"checkpoint": str(cfg["init_from"]), "out_dir": state["config"]["out_dir"], "step": start_step})
    # the averages start from the loaded weights, and continue from the checkpoint's when it has them
    swa = SWA(model, cfg["swa_interval"], cfg["swa_window"]) if cfg["swa"] else None
    ema = EMA(model, cfg["ema_decay"], cfg["ema_interval"]) if cfg["ema"] else None
    for key, average in (("swa", swa), ("ema", ema)):
        if average and cfg["init_from"] != "scratch" and state.get(key) is not None:
            average.load_state_dict(state[key])
    if start_step >= cfg["max_steps"]:
        raise ConfigError(f"the starting checkpoint is at step {start_step}, not before max_steps={cfg['max_steps']}")
    prepare_out_dir(cfg, master)

    raw_model = model
    if cfg["compile"]:
        model = torch.compile(model)
    if ddp:
        model = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)

    out_dir = Path(cfg["out_dir"])
    metrics_path = out_dir / "metrics.jsonl"
    flops = flops_per_token(mconf, cfg["seq_len"])
    # on a CPU the peak is probed at the model's own matmul shapes, as bench.py does
    micro_batch = cfg["batch_size"] // world_size // cfg["grad_accum"]  # sequences per forward of one process
    peak = perf.peak_flops(device, ptdtype, cfg["peak_tflops"],
                           perf.model_matmul_shapes(mconf, micro_batch * cfg["seq_len"]))
    tokens_per_step = cfg["batch_size"] * cfg["seq_len"]
    if master:
        truncate_metrics(metrics_path, start_step)
        run_info = dict(config=cfg, origin=origin, world_size=world_size, device=str(device),
                        model_config=mconf.__dict__, params=raw_model.num_params(), flops_per_token=flops,
                        vocab_size=data.vocab_size, tokenizer=data.meta.get("tokenizer"), torch=torch.__version__)
        (out_dir / "config.json").write_text(json.dumps(run_info, indent=2) + "\n")
        print(f"device {device} x{world_size}, dtype {cfg['dtype']}, {raw_model.num_params() / 1e6:.2f}M params, "
              f"{flops['chinchilla'] / 1e6:.1f} MFLOPs/token (6N: {flops['six_n'] / 1e6:.1f}), "
              f"steps {start_step}->{cfg['max_steps']}, {tokens_per_step} tokens/step")

    def non_finite(what):
        saved = checkpoint.list_checkpoints(out_dir)
        kept = f"the last good checkpoint {saved[-1][1]} is kept" if saved else "no checkpoint was written"
        raise FloatingPointError(f"non-finite {what}; {kept}")

    def save_checkpoint(step):
        # a finite loss can still be followed by an update that overflows: never save such weights
        if not all(torch.isfinite(p).all() for p in raw_model.parameters()):
            non_finite(f"weights after step {step}")
        if schedule_free:
            optimizer.eval()  # store the averaged weights, the ones we evaluate
        if master:
            state = dict(model=raw_model.state_dict(), optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                         step=step, config=cfg, model_config=mconf.__dict__, origin=origin,
                         rng=torch.get_rng_state(), data=dict(seed=cfg["seed"], next_step=step),
                         swa=swa and swa.state_dict(), ema=ema and ema.state_dict())
            checkpoint.save(state, out_dir, step)
            if swa and swa.completed() is not None:  # the latest window's average, as its own weight file
                index, snapshots = swa.completed_window()
                save_weights(out_dir / "swa.pt", swa.completed(), mconf.__dict__, (index + 1) * cfg["swa_window"],
                             dict(kind="swa", interval=cfg["swa_interval"], window=cfg["swa_window"], snapshots=snapshots))
            if ema:
                save_weights(out_dir / "ema.pt", ema.average(), mconf.__dict__, step,
                             dict(kind="ema", decay=cfg["ema_decay"], interval=cfg["ema_interval"]))
            checkpoint.prune(out_dir, cfg["keep_last_ckpts"], cfg["keep_ckpt_steps"])
        if schedule_free:
            optimizer.train()

    def validation_losses():
        """val_loss of the model (schedule-free: its eval-mode weights), and of the SWA/EMA averages."""
        losses = {}
        if schedule_free:
            optimizer.eval()  # schedule-free evaluates its averaged weights, not the training iterate
        losses["val_loss"] = evaluate(model, val_x, val_y, cfg["eval_batch_size"], autocast, rank, world_size)
        if schedule_free:
            optimizer.train()  # the SWA/EMA averages below are of the training iterate, like their updates
        for key, weights in (("val_loss_swa", swa and swa.completed()), ("val_loss_ema", ema and ema.average())):
            if weights is not None:
                with swapped_weights(raw_model, weights):
                    losses[key] = evaluate(model, val_x, val_y, cfg["eval_batch_size"], autocast, rank, world_size)
        losses["val_ppl"] = math.exp(losses["val_loss"])
        return losses

    def log(record):
        if master:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    # ---- the training loop: `step` counts finished optimizer updates ----
    eval_steps, cooldown_start = {cfg["max_steps"]}, None
    if cfg["schedule"] == "wsd":  # also evaluate where the cooldown starts: the "before cooldown" loss
        cooldown_start = cfg["max_steps"] - resolve_cooldown_steps(cfg["max_steps"], cfg["cooldown_frac"],
                                                                   cfg["cooldown_steps"])
        eval_steps.add(cooldown_start)
    val_history = {}
    losses = torch.zeros(cfg["log_interval"], device=device)
    logged_step, t_log, t_start = start_step, time.perf_counter(), time.perf_counter()
    if schedule_free:
        optimizer.train()
    if cfg["init_from"] != "resume":  # the starting point: step 0, or where a branch leaves its trunk
        branch = dict(origin=origin) if origin else {}
        log(dict(step=start_step, tokens=start_step * tokens_per_step, **branch, **validation_losses(), elapsed_s=0.0))
    for step in range(start_step, cfg["max_steps"]):
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x_all, y_all = data.train_batch(step, cfg["seed"], cfg["batch_size"], cfg["seq_len"], rank, world_size,
                                        pin_memory=device.type == "cuda")
        for micro in range(cfg["grad_accum"]):
            rows = slice(micro * micro_batch, (micro + 1) * micro_batch)
            x = x_all[rows].to(device, non_blocking=True)
            y = y_all[rows].to(device, non_blocking=True)
            if ddp:  # gradients are averaged across processes only once, on the last micro-step
                model.require_backward_grad_sync = micro == cfg["grad_accum"] - 1
            with autocast:
                _, loss = model(x, y)
            losses[step - logged_step] += loss.detach() / cfg["grad_accum"]
            scaler.scale(loss / cfg["grad_accum"]).backward()
        if cfg["grad_clip"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        if schedule_free:  # the LR it really used, its own warmup included
            lr = optimizer.param_groups[0]["scheduled_lr"]
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        for average in (swa, ema):
            if average:
                average.update(done, raw_model)

        stop_requested = bool(stop_signal)
        if ddp:  # every process must stop after the same step, whichever of them got the signal; they agree
            # at log steps only, since reading the all-reduced flag waits for the GPU
            stop_requested = False
            if done % cfg["log_interval"] == 0:
                flag = torch.tensor(float(bool(stop_signal)), device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_requested = flag.item() > 0
        stopping = done == cfg["max_steps"] or stop_requested
        evaluate_now = done % cfg["eval_interval"] == 0 or done in eval_steps
        checkpoint_now = done % cfg["ckpt_interval"] == 0 or stopping or done in cfg["keep_ckpt_steps"]
        # logging checks the losses for NaN/inf, so it runs before every checkpoint too
        if done % cfg["log_interval"] == 0 or evaluate_now or checkpoint_now:
            window = losses[:done - logged_step] if done - logged_step < cfg["log_interval"] else losses
            if ddp:
                dist.all_reduce(window, op=dist.ReduceOp.AVG)
            step_losses = window.tolist()
            losses.zero_()
            bad = [i for i, v in enumerate(step_losses) if not math.isfinite(v)]
            if bad:
                non_finite(f"training loss at step {logged_step + bad[0] + 1}")
            elapsed = time.perf_counter() - t_log
            tokens_per_s = (done - logged_step) * tokens_per_step / elapsed
            record = dict(step=done, tokens=done * tokens_per_step, lr=lr, train_loss=sum(step_losses) / len(step_losses),
                          tokens_per_s=tokens_per_s, mfu=peak and tokens_per_s * flops["chinchilla"] / peak,
                          elapsed_s=time.perf_counter() - t_start)
            if evaluate_now:
                record.update(validation_losses())
                val_history[done] = record["val_loss"]
            log(record)
            if master:
                val = f", val {record['val_loss']:.4f}" if "val_loss" in record else ""
                print(f"step {done}/{cfg['max_steps']}: loss {record['train_loss']:.4f}{val}, lr {lr:.2e}, "
                      f"{tokens_per_s:,.0f} tok/s" + (f", mfu {record['mfu']:.1%}" if record["mfu"] else ""), flush=True)
            logged_step, t_log = done, time.perf_counter()
        if checkpoint_now:
            save_checkpoint(done)
        if stopping and done < cfg["max_steps"]:
            if master:
                print(f"stopped by a signal after step {done}; checkpoint saved, "
                      f"continue with --init_from=resume", flush=True)
            break
    if master and cooldown_start in val_history and cfg["max_steps"] in val_history:
        print(f"val loss {val_history[cooldown_start]:.4f} before the cooldown (step {cooldown_start}), "
              f"{val_history[cfg['max_steps']]:.4f} after it (step {cfg['max_steps']})")
    if ddp:  # wait for every process, and drop DDP's hold on the group first: gloo aborts at exit otherwise
        dist.barrier()
        del model
        dist.destroy_process_group()
    return done == cfg["max_steps"]


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except USER_ERRORS as e:
        fail(str(e))
