"""
Train the paper's GPT with any of its learning-rate schedules, on one CPU, one GPU, or many with torchrun.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes        # once: the embedded offline corpus
    python train.py configs/cpu_tiny.py                               # a ~1M model, constant LR + cooldown
    python train.py configs/124m_cooldown.py                          # the paper's 124M setup on a GPU
    torchrun --standalone --nproc_per_node=8 train.py configs/124m_cooldown.py
    python train.py configs/124m_cooldown.py --dry_run=True           # the plan: batches, memory, time; trains nothing
    python train.py configs/cpu_tiny.py --init_from=resume            # continue out_dir's latest checkpoint
    python train.py configs/cpu_tiny.py --init_from=out/trunk/ckpt_0000300 --out_dir=out/branch
                                                                       # a cooldown branched off a checkpoint

Settings: DEFAULTS below, then config files, then --key=value (see config.py). Writes to out_dir:
config.json (the resolved config and the run's history of starts, resumes and branches), metrics.jsonl (one
JSON object per logged step) and ckpt_<step>/ (checkpoint.py). Processes, DDP and compile are parallel.py's;
what a resume or a branch may change is rundir.py's.
"""

import json
import math
import signal
import sys
import time
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import get_model_state_dict

import checkpoint
import parallel
import perf
import precision
import rundir
import tracking
from config import ConfigError, parse_args
from data import DataError, Dataset, inputs_and_targets
from evaluation import autocast_for, evaluate
from model import GPT, PRESETS, GPTConfig, flops_per_token, padded_vocab_size
from schedules import ScheduleError, learning_rate, resolve_cooldown_steps, schedule_args, validate_schedule
from swa import EMA, SWA, save_weights, swapped_weights

DEFAULTS = dict(
    # I/O
    out_dir="out/run", data_dir="data/stdlib-bytes",
    init_from="scratch",  # 'scratch', 'resume' (out_dir's latest checkpoint) or the path of a checkpoint
    overwrite=False,  # allow starting from scratch in an out_dir that already holds a run
    allow_data_change=False,  # a branch may read another data stream (data_dir, data order, batch_size, seq_len)
    dry_run=False,  # print the plan (processes, micro-batches, memory, time) and train nothing
    seed=1337,  # the model's initialization, and the data order unless data_seed is set
    data_seed=None,  # the data order alone (None: seed): runs that differ only in the order of the same data
    device="auto", compile=False,
    # 'auto': what the device computes natively and fast (precision.py: bf16 on GPUs that have it and on CPUs whose
    # bf16 matmuls are fast, fp16 on older GPUs, fp32 elsewhere), or float32 / bfloat16 / float16 as asked
    dtype="auto",
    # under torchrun, a collective that waits longer fails (a process died or hangs). It must outlast the longest
    # legitimate wait, bounded in README ("No process waits forever"): the 8B checkpoint (89 GB) written through one
    # node's filesystem client at 50 MB/s or more, and a cold first-step compile (minutes), which every process runs
    dist_timeout_s=1800,
    parallelism="ddp",  # under torchrun: 'ddp' (a full replica per process) or 'fsdp' (FSDP2: sharded)
    activation_checkpointing=False,  # recompute each block in backward instead of keeping its activations
    # model: a preset from model.PRESETS; the shape keys, when set, override the preset's values
    model="cpu_tiny", n_layer=None, n_head=None, n_embd=None, ffw_size=None, n_kv_head=None, tie_embeddings=None,
    # batch: batch_size sequences per optimizer step in total, whatever the number of processes;
    # micro_batch_size: at most this many sequences per forward of one process (None: its share in one forward)
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
    **tracking.KEYS,  # wandb_log, wandb_project, wandb_run_name: metrics.jsonl's records to Weights & Biases too
)
SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings")
TYPES = {k: (int, type(None)) for k in (*SHAPE_KEYS, "cooldown_steps", "cycle_steps", "micro_batch_size", "data_seed")}
TYPES.update(tie_embeddings=(bool, type(None)), final_lr_frac=(float, type(None)), peak_tflops=(float, type(None)),
             dist_timeout_s=(int, float), **tracking.TYPES)


# Errors that mean "bad input or a run that cannot go on": one line for the user, no traceback.
USER_ERRORS = (ConfigError, DataError, ScheduleError, checkpoint.CheckpointError, FloatingPointError)


def data_order_seed(cfg):
    """The seed of the training data's order: data_seed when set, else the run's seed."""
    return cfg["seed"] if cfg["data_seed"] is None else cfg["data_seed"]


def model_config(cfg, vocab_size):
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
    validate_schedule(**schedule_args(cfg))


def choose_precision(cfg, device, mconf, micro_batch, run_dtype=None):
    """precision.Precision of cfg's dtype on `device` (on a CPU from matmul probes at the model's own shapes);
    run_dtype: the precision of the run this one resumes or branches off, which dtype=auto continues in."""
    shapes = perf.model_matmul_shapes(mconf, micro_batch * cfg["seq_len"])
    return precision.for_model(cfg["dtype"], device, shapes, run_dtype=run_dtype)


def make_optimizer(cfg, model, device):
    groups = model.param_groups(cfg["weight_decay"])
    betas = (cfg["beta1"], cfg["beta2"])
    if cfg["optimizer"] == "adamw_schedulefree":
        import schedulefree  # its own warmup and averaging: no external schedule on top (see check_config)
        return schedulefree.AdamWScheduleFree(groups, lr=cfg["lr"], betas=betas, warmup_steps=cfg["warmup_steps"])
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=betas, fused=device.type == "cuda")


def main(argv):
    cfg = parse_args(argv, DEFAULTS, TYPES)
    if cfg["dry_run"]:
        return print_plan(cfg)
    return train(cfg)


def print_plan(cfg):
    """--dry_run: what the run would be, from the config, the data's meta and a model on the meta device."""
    import plan
    world_size = parallel.Processes.from_env().world_size  # as torchrun sets it; no process group is made
    check_config(cfg, world_size)
    try:
        data = Dataset(cfg["data_dir"])
    except DataError:  # a plan is worth having before the data is downloaded: GPT-2's vocabulary then
        data = None
    mconf = model_config(cfg, data.vocab_size if data else 50257)
    print("\n".join(plan.dry_run(cfg, mconf, world_size, *micro_batching(cfg, world_size), data)))


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
    procs = parallel.Processes.from_env()
    rank, world_size, master = procs.rank, procs.world_size, procs.master
    check_config(cfg, world_size)
    micro_batch, grad_accum = micro_batching(cfg, world_size)
    device = parallel.setup_device(cfg["device"], procs.local_rank)
    owned = parallel.init(procs, device, cfg["dist_timeout_s"])
    torch.manual_seed(cfg["seed"])
    data = Dataset(cfg["data_dir"])
    val_x, val_y = (t.to(device) for t in data.val_windows(cfg["eval_tokens"], cfg["seq_len"]))
    mconf = model_config(cfg, data.vocab_size)
    model = GPT(mconf).to(device)
    schedule_free = cfg["optimizer"] == "adamw_schedulefree"

    start_step, origin, state, changed, source = 0, None, {}, {}, None
    if cfg["init_from"] != "scratch":
        state, changed, source = rundir.load_start(cfg, procs, mconf)
        start_step = state["step"]
        # a branch records its trunk; a resumed run keeps whatever origin it had
        origin = (state.get("origin") if cfg["init_from"] == "resume"
                  else {"checkpoint": str(cfg["init_from"]), "out_dir": state["config"]["out_dir"], "step": start_step})
    if start_step >= cfg["max_steps"]:
        raise ConfigError(f"the starting checkpoint is at step {start_step}, not before max_steps={cfg['max_steps']}")
    # rank 0 probes the device and decides, so that every process computes in the same precision (auto continues a
    # run in its own); from here on cfg["dtype"] is the resolved one, which config.json and the checkpoints keep
    chosen = parallel.decided_by_master(
        lambda: choose_precision(cfg, device, mconf, micro_batch, state["config"]["dtype"] if state else None), procs)
    cfg = dict(cfg, dtype=chosen.dtype)
    check_config(cfg, world_size)  # the resolved dtype too: auto is float16 on a GPU without bf16
    ptdtype = chosen.torch_dtype
    autocast = autocast_for(device, ptdtype)
    scaler = torch.amp.GradScaler(device.type, enabled=ptdtype == torch.float16)
    # FSDP replaces the parameters with their shards: the optimizer and the averages are made after wrapping
    wrapped = parallel.wrap(model, procs, device, cfg["compile"], cfg["parallelism"], ptdtype,
                            cfg["activation_checkpointing"])
    optimizer = make_optimizer(cfg, model, device)
    if state:  # each process reads its own shards of the checkpoint, into the wrapped model
        state = rundir.restore_training_state(state, source, model, optimizer, scaler, device)
    # the averages start from the loaded weights, and continue from the checkpoint's when it has them
    swa = SWA(model, cfg["swa_interval"], cfg["swa_window"]) if cfg["swa"] else None
    ema = EMA(model, cfg["ema_decay"], cfg["ema_interval"]) if cfg["ema"] else None
    if state:
        rundir.restore_averages(state, dict(swa=swa, ema=ema))
    rundir.prepare_out_dir(cfg, procs)  # rank 0 looks and decides, every process follows
    stop = parallel.StopAgreement(procs)

    out_dir = Path(cfg["out_dir"])
    metrics_path = out_dir / "metrics.jsonl"
    flops = flops_per_token(mconf, cfg["seq_len"])
    peak = precision.peak_flops(chosen, device, cfg["peak_tflops"])  # on a CPU the best of the bf16 and fp32 probes
    tokens_per_step = cfg["batch_size"] * cfg["seq_len"]
    run_info = None
    if master:
        rundir.truncate_metrics(metrics_path, start_step)
        run_info = dict(config=cfg, origin=origin, world_size=world_size, device=str(device), peak_flops=peak,
                        precision=chosen.record(),
                        model_config=mconf.__dict__, params=model.num_params(), flops_per_token=flops,
                        vocab_size=data.vocab_size, tokenizer=data.meta.get("tokenizer"), torch=torch.__version__)
        kind = {"scratch": "start", "resume": "resume"}.get(cfg["init_from"], "branch")
        rundir.write_config(out_dir, run_info, rundir.history_event(kind, start_step, changed, source, world_size, device))
        if chosen.warning:
            print(f"warning: {chosen.warning}", flush=True)
        print(f"device {device} x{world_size}, dtype {cfg['dtype']} ({chosen.requested}: {chosen.rule}), "
              f"{model.num_params() / 1e6:.2f}M params, "
              f"{flops['chinchilla'] / 1e6:.1f} MFLOPs/token (6N: {flops['six_n'] / 1e6:.1f}), "
              f"steps {start_step}->{cfg['max_steps']}, {tokens_per_step} tokens/step, "
              f"micro-batch {micro_batch} x {grad_accum}" + ("" if peak else f"; {perf.no_peak_note(device)}"))

    def non_finite(what):
        stop.finish()  # every process finds the same non-finite value: end the pending agreement together
        # rank 0 looks (the folder it writes and prunes), so that every process names the same checkpoint
        saved = parallel.decided_by_master(lambda: checkpoint.list_checkpoints(out_dir), procs)
        kept = f"the last good checkpoint {saved[-1][1]} is kept" if saved else "no checkpoint was written"
        raise FloatingPointError(f"non-finite {what}; {kept}")

    def save_checkpoint(step):
        # a finite loss can still be followed by an update that overflows: never save such weights
        if not parallel.all_finite(model.parameters()):
            non_finite(f"weights after step {step}")
        if schedule_free:
            optimizer.eval()  # store the averaged weights, the ones we evaluate
        # every process writes its own shards (checkpoint.py: DCP), which any process count, DDP or FSDP, reads back
        checkpoint.save(dict(model=get_model_state_dict(model), optimizer=optimizer.state_dict(),
                             swa=swa and swa.state_dict(), ema=ema and ema.state_dict(), scaler=scaler.state_dict(),
                             step=step, config=cfg, model_config=mconf.__dict__, origin=origin,
                             rng=torch.get_rng_state(), data=dict(seed=data_order_seed(cfg), next_step=step)), out_dir, step)
        # the averages' weight files (swa.pt, ema.pt) stay single files of full tensors: FSDP's shards are gathered
        weights = parallel.gathered(dict(swa=swa and swa.completed(), ema=ema and ema.average()))
        if master:
            swa_weights, ema_weights = weights["swa"], weights["ema"]
            if swa_weights is not None:  # the latest window's average, as its own weight file
                index, snapshots = swa.completed_window()
                save_weights(out_dir / "swa.pt", swa_weights, mconf.__dict__, (index + 1) * cfg["swa_window"],
                             dict(kind="swa", interval=cfg["swa_interval"], window=cfg["swa_window"], snapshots=snapshots))
            if ema:
                save_weights(out_dir / "ema.pt", ema_weights, mconf.__dict__, step,
                             dict(kind="ema", decay=cfg["ema_decay"], interval=cfg["ema_interval"]))
            checkpoint.prune(out_dir, cfg["keep_last_ckpts"], cfg["keep_ckpt_steps"])
        if schedule_free:
            optimizer.train()

    def validation_losses():
        """val_loss of the model (schedule-free: its eval-mode weights), and of the SWA/EMA averages."""
        losses = {}
        if schedule_free:
            optimizer.eval()  # schedule-free evaluates its averaged weights, not the training iterate
        evaluated = lambda: evaluate(wrapped.eval, val_x, val_y, cfg["eval_batch_size"], autocast, rank, world_size,
                                     lockstep=wrapped.sharded)
        losses["val_loss"] = evaluated()
        if schedule_free:
            optimizer.train()  # the SWA/EMA averages below are of the training iterate, like their updates
        for key, weights in (("val_loss_swa", swa and swa.completed()), ("val_loss_ema", ema and ema.average())):
            if weights is not None:
                with swapped_weights(model, weights):
                    losses[key] = evaluated()
        losses["val_ppl"] = math.exp(losses["val_loss"])
        return losses

    tracker = tracking.start(cfg, run_info, out_dir, master, resuming=cfg["init_from"] == "resume")

    def log(record):
        if master:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            tracker.log(record)  # metrics.jsonl first: it is the record, wandb a view of it

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
        # one copy of this process's rows (pinned on CUDA: asynchronous); micro-batches are sliced on the device
        rows = data.train_batch(step, data_order_seed(cfg), cfg["batch_size"], cfg["seq_len"], rank, world_size,
                                pin_memory=device.type == "cuda").to(device, non_blocking=True)
        for micro in range(grad_accum):
            batch = rows[micro * micro_batch:(micro + 1) * micro_batch]
            with wrapped.gradient_sync(micro == grad_accum - 1):  # averaged across processes once per step
                with autocast:
                    loss = wrapped.train(*inputs_and_targets(batch))[1]  # the logits are freed at once
                losses[step - logged_step] += loss.detach() / grad_accum
                scaler.scale(loss / grad_accum).backward()
        if cfg["grad_clip"] > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        if schedule_free:  # the LR it really used, its own warmup included
            lr = optimizer.param_groups[0]["scheduled_lr"]
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        for average in (swa, ema):
            if average:
                average.update(done, model)

        # every process stops after the same step, whichever got the signal (one step later under torchrun)
        stopping = stop.step(bool(stop_signal)) or done == cfg["max_steps"]
        evaluate_now = done % cfg["eval_interval"] == 0 or done in eval_steps
        checkpoint_now = done % cfg["ckpt_interval"] == 0 or stopping or done in cfg["keep_ckpt_steps"]
        # logging checks the losses for NaN/inf, so it runs before every checkpoint too
        if done % cfg["log_interval"] == 0 or evaluate_now or checkpoint_now:
            window = losses[:done - logged_step] if done - logged_step < cfg["log_interval"] else losses
            step_losses = parallel.mean_over_processes(window).tolist()
            losses.zero_()
            bad = [i for i, v in enumerate(step_losses) if not math.isfinite(v)]
            if bad:
                non_finite(f"training loss at step {logged_step + bad[0] + 1}")
            # training time only: evaluations and checkpoints happen after t_log is read, before it is reset
            tokens_per_s = (done - logged_step) * tokens_per_step / (time.perf_counter() - t_log)
            achieved = tokens_per_s / world_size * flops["chinchilla"]  # FLOP/s of one process
            peak = precision.raised_peak(peak, achieved, device)
            record = dict(step=done, tokens=done * tokens_per_step, lr=lr, train_loss=sum(step_losses) / len(step_losses),
                          tokens_per_s=tokens_per_s, mfu=peak and achieved / peak,
                          elapsed_s=time.perf_counter() - t_start)
            if device.type == "cuda":
                record["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
            if evaluate_now:
                record.update(validation_losses())
                val_history[done] = record["val_loss"]
            log(record)
            if master:
                val = f", val {record['val_loss']:.4f}" if "val_loss" in record else ""
                print(f"step {done}/{cfg['max_steps']}: loss {record['train_loss']:.4f}{val}, lr {lr:.2e}, "
                      f"{tokens_per_s:,.0f} tok/s" + (f", mfu {record['mfu']:.1%}" if record["mfu"] else ""), flush=True)
            if checkpoint_now:
                save_checkpoint(done)
            logged_step, t_log = done, time.perf_counter()
        if stopping and done < cfg["max_steps"]:
            if master:
                print(f"stopped by a signal after step {done}; checkpoint saved, "
                      f"continue with --init_from=resume", flush=True)
            break
    if master and cooldown_start in val_history and cfg["max_steps"] in val_history:
        print(f"val loss {val_history[cooldown_start]:.4f} before the cooldown (step {cooldown_start}), "
              f"{val_history[cfg['max_steps']]:.4f} after it (step {cfg['max_steps']})")
    stop.finish()
    tracker.finish()
    wrapped.release()
    parallel.shutdown(owned)
    return done == cfg["max_steps"]


def run_script(main, argv, errors=USER_ERRORS):
    """A script's entry point: bad input, or a collective that failed under torchrun, is one line and exit 1."""
    try:
        main(argv)
    except errors as e:
        parallel.leave(str(e))
    except RuntimeError as e:
        line = parallel.collective_failure(e, parallel.Processes.from_env())
        if line is None:
            raise
        parallel.leave(line)


if __name__ == "__main__":
    run_script(main, sys.argv[1:])
