"""
Train the paper's GPT with any of its learning-rate schedules, on one CPU, one GPU, or many with torchrun.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes        # once: the embedded offline corpus
    python train.py configs/cpu_tiny.py                               # a ~1M model, constant LR + cooldown
    python train.py configs/124m_cooldown.py                          # the paper's 124M setup on a GPU
    torchrun --standalone --nproc_per_node=8 train.py configs/124m_cooldown.py
    python train.py configs/124m_cooldown.py --dry_run=True           # the plan: batches, memory, time; trains nothing
    python train.py configs/cpu_tiny.py --init_from=resume            # continue out_dir's latest checkpoint
    python train.py configs/cpu_tiny.py --init_from=auto              # continue it if there is one, else start
    python train.py configs/cpu_tiny.py --init_from=out/trunk/ckpt_0000300 --out_dir=out/branch
                                                                       # a cooldown branched off a checkpoint

Settings: lab/settings.py's SETTINGS (`python train.py --help` lists each with its default, its help and what it
allows), then config files, then --key=value (lab/config.py). Writes to out_dir: config.json (the resolved config,
the run's history), metrics.jsonl (a record per logged step) and ckpt_<step>/ (lab/checkpoint.py).
"""

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import get_model_state_dict

from lab import checkpoint, kernels, parallel, perf, plan, precision, progress, rundir, tracking
from lab.config import parse_args
from lab.data import Dataset, inputs_and_targets
from lab.evaluation import autocast_for, evaluate
from lab.settings import (SETTINGS, check_config, choose_precision, data_order_seed, make_optimizer, micro_batching,
                          model_config, run_script)
from model import GPT, GPTConfig, flops_per_token
from schedules import cooldown_start, learning_rate
from swa import EMA, SWA, save_average_files, swapped_weights

def main(argv):
    cfg = parse_args(argv, SETTINGS)
    return plan.print_plan(cfg) if cfg["dry_run"] else train(cfg)


def train(cfg):
    """One run of the resolved config `cfg` (a dict with every key of lab/settings.py's SETTINGS).

    Returns True when the run reached max_steps, False when SIGTERM or Ctrl-C stopped it (after the step in
    flight and a checkpoint), so that a caller running several runs stops too.
    """
    with parallel.stop_signals() as stop_signal:
        return run_training(cfg, stop_signal)


@dataclass
class Run:
    """What a run holds while it trains: built by set_up, used by the step, evaluation, log and checkpoint below."""
    cfg: dict  # resolved: dtype is the precision chosen
    procs: parallel.Processes
    device: torch.device
    owned: bool  # this run made the process group, which finish ends
    data: Dataset
    val: tuple  # the validation windows: inputs, targets
    mconf: GPTConfig
    model: GPT  # owns the parameters (FSDP: their shards)
    wrapped: parallel.Wrapped  # runs the forward passes: DDP, FSDP, compiled
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # fp16 only: loss scaling
    autocast: object
    micro_batch: int
    grad_accum: int
    start_step: int
    origin: dict  # where a branch left its trunk
    swa: SWA = None
    ema: EMA = None
    stop: parallel.StopAgreement = None
    tracker: object = None
    flops: dict = None  # per token: model.flops_per_token
    peak: float = None  # MFU's denominator, FLOP/s; None when not known
    losses: torch.Tensor = None  # of the steps since the last log record, on the device (read only when logging)
    logged_step: int = 0
    t_log: float = 0.0  # when the steps since the last record began
    t_start: float = 0.0
    time_left: progress.TimeLeft = None  # elapsed and remaining time, for the printed line
    val_history: dict = field(default_factory=dict)  # {step: val_loss}

    def __post_init__(self):
        self.out_dir = Path(self.cfg["out_dir"])
        self.schedule_free = self.cfg["optimizer"] == "adamw_schedulefree"
        self.tokens_per_step = self.cfg["batch_size"] * self.cfg["seq_len"]


def set_up(cfg):
    """Processes, device, data, model, precision, wrapping, optimizer, the starting checkpoint, averages, out_dir:
    every check that can fail runs before anything is written."""
    procs = parallel.Processes.from_env()
    check_config(cfg, procs.world_size)
    micro_batch, grad_accum = micro_batching(cfg, procs.world_size)
    device = parallel.setup_device(cfg["device"], procs)
    owned = parallel.init(procs, device, cfg["dist_timeout_s"])
    cfg = rundir.resolve_auto(cfg, procs)  # init_from=auto: resume or start; None: a finished run (rank 0 says so)
    if cfg is None:  # nothing is trained, nothing written
        return parallel.shutdown(owned)
    torch.manual_seed(cfg["seed"])
    data = Dataset(cfg["data_dir"])
    val = tuple(t.to(device) for t in data.val_windows(cfg["eval_tokens"], cfg["seq_len"]))
    mconf = model_config(cfg, data.vocab_size)
    model = GPT(mconf).to(device)
    state, changed, source, origin, start_step = rundir.starting_point(cfg, procs, mconf, data.fingerprint)
    # rank 0 probes the device and decides, so that every process computes in the same precision (auto continues a
    # run in its own); from here on cfg["dtype"] is the resolved one, which config.json and the checkpoints keep
    chosen = parallel.decided_by_master(
        lambda: choose_precision(cfg, device, mconf, micro_batch, state["config"]["dtype"] if state else None), procs)
    cfg = dict(cfg, dtype=chosen.dtype)
    check_config(cfg, procs.world_size)  # the resolved dtype too: auto is float16 on a GPU without bf16
    ptdtype = chosen.torch_dtype
    notes = kernels.apply(model, cfg, device)  # the GPU speed levers asked for, or what they fall back to
    if cfg["micro_batch_size"] == "auto":  # rank 0's GPU decides: every process must take as many micro-steps
        auto = parallel.decided_by_master(lambda: plan.auto_micro_batch(cfg, mconf, device, ptdtype, procs.world_size),
                                          procs)
        micro_batch, grad_accum = micro_batching(dict(cfg, micro_batch_size=auto), procs.world_size)
    scaler = torch.amp.GradScaler(device.type, enabled=ptdtype == torch.float16)
    # FSDP replaces the parameters with their shards: the optimizer and the averages are made after wrapping
    wrapped = parallel.wrap(model, procs, device, cfg["compile"], cfg["parallelism"], ptdtype,
                            cfg["activation_checkpointing"], cfg["compile_mode"])
    one_sequence = inputs_and_targets(torch.zeros(1, cfg["seq_len"] + 1, dtype=torch.long, device=device))
    parallel.settle_buckets(wrapped, *one_sequence)  # DDP's final buckets from the first step: exact resumes
    optimizer = make_optimizer(cfg, model, device)
    if state:  # each process reads its own shards of the checkpoint, into the wrapped model
        state = rundir.restore_training_state(state, source, model, optimizer, scaler, device)
    run = Run(cfg, procs, device, owned, data, val, mconf, model, wrapped, optimizer, scaler,
              autocast_for(device, ptdtype), micro_batch, grad_accum, start_step, origin)
    # the averages start from the loaded weights, and continue from the checkpoint's when it has them
    run.swa = SWA(model, cfg["swa_interval"], cfg["swa_window"]) if cfg["swa"] else None
    run.ema = EMA(model, cfg["ema_decay"], cfg["ema_interval"]) if cfg["ema"] else None
    if state:
        rundir.restore_averages(state, dict(swa=run.swa, ema=run.ema))
    rundir.prepare_out_dir(cfg, procs)  # rank 0 looks and decides, every process follows
    run.stop = parallel.StopAgreement(procs)
    run.losses, run.logged_step = torch.zeros(cfg["log_interval"], device=device), start_step
    run.flops = flops_per_token(mconf, cfg["seq_len"])
    run.peak = precision.peak_flops(chosen, device, cfg["peak_tflops"])  # CPU: the best of the bf16 and fp32 probes
    run_info = record_start(run, chosen, changed, source, notes)
    run.tracker = tracking.start(cfg, run_info, run.out_dir, procs.master, resuming=cfg["init_from"] == "resume")
    return run


def record_start(run, chosen, changed, source, notes):
    """Rank 0: config.json with this start in the run's history, and the run's first line; the run's info."""
    cfg, model = run.cfg, run.model
    if not run.procs.master:
        return None
    rundir.truncate_metrics(run.out_dir / "metrics.jsonl", run.start_step)
    info = dict(config=cfg, origin=run.origin, world_size=run.procs.world_size, device=str(run.device),
                micro_batch=[run.micro_batch, run.grad_accum],
                peak_flops=run.peak, precision=chosen.record(), model_config=run.mconf.__dict__,
                params=model.num_params(), flops_per_token=run.flops, vocab_size=run.data.vocab_size,
                tokenizer=run.data.meta.get("tokenizer"), data=run.data.record(), torch=torch.__version__)
    kind = {"scratch": "start", "resume": "resume"}.get(cfg["init_from"], "branch")
    rundir.write_config(run.out_dir, info, rundir.history_event(kind, run.start_step, changed, source,
                                                                run.procs.world_size, run.device))
    for line in ([chosen.warning] if chosen.warning else []) + notes:
        print(f"warning: {line}", flush=True)
    print(f"device {run.device} x{run.procs.world_size}, dtype {cfg['dtype']} ({chosen.requested}: {chosen.rule}), "
          f"{model.num_params() / 1e6:.2f}M params, {run.flops['chinchilla'] / 1e6:.1f} MFLOPs/token "
          f"(6N: {run.flops['six_n'] / 1e6:.1f}), steps {run.start_step}->{cfg['max_steps']}, "
          f"{run.tokens_per_step} tokens/step, micro-batch {run.micro_batch} x {run.grad_accum}, "
          f"data {cfg['data_dir']} ({run.data.fingerprint[:16]})"
          + ("" if run.peak else f"; {perf.no_peak_note(run.device)}"), flush=True)
    return info


def train_step(run, step, loss_sum):
    """One optimizer update, from step to step + 1: its micro-batches, clipping, the averages. Adds the mean loss
    to `loss_sum` (a tensor on the device: read only when logging) and returns the LR it used."""
    cfg = run.cfg
    lr = learning_rate(cfg, step)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    # one copy of this process's rows (pinned on CUDA: asynchronous); micro-batches are sliced on the device
    rows = run.data.train_batch(step, data_order_seed(cfg), cfg["batch_size"], cfg["seq_len"], run.procs.rank,
                                run.procs.world_size, pin_memory=run.device.type == "cuda")
    rows = rows.to(run.device, non_blocking=True)
    for micro in range(run.grad_accum):
        batch = rows[micro * run.micro_batch:(micro + 1) * run.micro_batch]
        with run.wrapped.gradient_sync(micro == run.grad_accum - 1):  # averaged across processes once per step
            with run.autocast:
                loss = run.wrapped.train(*inputs_and_targets(batch))[1]  # the logits are freed at once
            loss_sum += loss.detach() / run.grad_accum
            run.scaler.scale(loss / run.grad_accum).backward()
    if cfg["grad_clip"] > 0:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg["grad_clip"])
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.schedule_free:  # the LR it really used, its own warmup included
        lr = run.optimizer.param_groups[0]["scheduled_lr"]
    run.optimizer.zero_grad(set_to_none=True)
    for average in (run.swa, run.ema):
        if average:
            average.update(step + 1, run.model)
    return lr


def validation_loss(run):
    """The loss on the validation windows, shared out over the processes (lab/evaluation.py)."""
    return evaluate(run.wrapped.eval, *run.val, run.cfg["eval_batch_size"], run.autocast, run.procs.rank,
                    run.procs.world_size, lockstep=run.wrapped.sharded)


def validation_losses(run):
    """val_loss of the model (schedule-free: its eval-mode weights), and of the SWA/EMA averages."""
    if run.schedule_free:
        run.optimizer.eval()  # schedule-free evaluates its averaged weights, not the training iterate
    losses = dict(val_loss=validation_loss(run))
    if run.schedule_free:
        run.optimizer.train()  # the SWA/EMA averages below are of the training iterate, like their updates
    for key, average in (("val_loss_swa", run.swa and run.swa.completed()), ("val_loss_ema", run.ema and run.ema.average())):
        if average is not None:
            with swapped_weights(run.model, average):
                losses[key] = validation_loss(run)
    losses["val_ppl"] = math.exp(losses["val_loss"])
    return losses


def stop_non_finite(run, what):
    """Every process finds the same non-finite value: end together, naming the checkpoint that is kept."""
    run.stop.finish()
    # rank 0 looks (the folder it writes and prunes), so that every process names the same checkpoint
    saved = parallel.decided_by_master(lambda: checkpoint.list_checkpoints(run.out_dir), run.procs)
    kept = f"the last good checkpoint {saved[-1][1]} is kept" if saved else "no checkpoint was written"
    raise FloatingPointError(f"non-finite {what}; {kept}")


def save_checkpoint(run, step):
    """Every process writes its own shards (lab/checkpoint.py: DCP), which any process count, DDP or FSDP, reads
    back; then the averages' weight files, and the old checkpoints pruned."""
    cfg = run.cfg
    # a finite loss can still be followed by an update that overflows: never save such weights
    if not parallel.all_finite(run.model.parameters()):
        stop_non_finite(run, f"weights after step {step}")
    if run.schedule_free:
        run.optimizer.eval()  # store the averaged weights, the ones we evaluate
    checkpoint.save(dict(model=get_model_state_dict(run.model), optimizer=run.optimizer.state_dict(),
                         swa=run.swa and run.swa.state_dict(), ema=run.ema and run.ema.state_dict(),
                         scaler=run.scaler.state_dict(), step=step, config=cfg, model_config=run.mconf.__dict__,
                         origin=run.origin, rng=torch.get_rng_state(),
                         data=dict(seed=data_order_seed(cfg), next_step=step, fingerprint=run.data.fingerprint)),
                    run.out_dir, step)
    save_average_files(run.out_dir, run.swa, run.ema, run.mconf.__dict__, step, run.procs.master)
    if run.procs.master:
        checkpoint.prune(run.out_dir, cfg["keep_last_ckpts"], cfg["keep_ckpt_steps"])
    if run.schedule_free:
        run.optimizer.train()


def log(run, record):
    if run.procs.master:
        with open(run.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        run.tracker.log(record)  # metrics.jsonl first: it is the record, wandb a view of it


def logged_record(run, done, lr, evaluate_now):
    """The record of the steps since the last one (their mean training loss, speed, MFU, memory), with the
    validation losses when evaluate_now, printed by rank 0. Non-finite losses stop the run here."""
    seconds = time.perf_counter() - run.t_log  # training time only: evaluations and checkpoints come after
    step_losses = parallel.mean_over_processes(run.losses[:done - run.logged_step]).tolist()
    run.losses.zero_()
    bad = [i for i, v in enumerate(step_losses) if not math.isfinite(v)]
    if bad:
        stop_non_finite(run, f"training loss at step {run.logged_step + bad[0] + 1}")
    tokens_per_s = len(step_losses) * run.tokens_per_step / seconds
    achieved = tokens_per_s / run.procs.world_size * run.flops["chinchilla"]  # FLOP/s of one process
    run.peak = precision.raised_peak(run.peak, achieved, run.device)
    record = dict(step=done, tokens=done * run.tokens_per_step, lr=lr, train_loss=sum(step_losses) / len(step_losses),
                  tokens_per_s=tokens_per_s, mfu=run.peak and achieved / run.peak,
                  elapsed_s=time.perf_counter() - run.t_start)
    if run.device.type == "cuda":
        record["peak_memory_gb"] = torch.cuda.max_memory_allocated(run.device) / 1e9
    if evaluate_now:
        record.update(validation_losses(run))
    if run.procs.master:
        val = f", val {record['val_loss']:.4f}" if "val_loss" in record else ""
        print(f"step {done}/{run.cfg['max_steps']}: loss {record['train_loss']:.4f}{val}, lr {lr:.2e}, "
              f"{tokens_per_s:,.0f} tok/s" + (f", mfu {record['mfu']:.1%}" if record["mfu"] else "")
              + f", {run.time_left.line(done)}", flush=True)
    return record


def log_evaluate_checkpoint(run, done, lr, stopping):
    """After update `done`: log every log_interval, evaluate every eval_interval (and where the cooldown starts),
    checkpoint every ckpt_interval and when stopping. Logging checks the losses for NaN/inf, so it runs before
    every checkpoint too."""
    cfg = run.cfg
    evaluate_now = done % cfg["eval_interval"] == 0 or done in (cfg["max_steps"], cooldown_start(cfg))
    checkpoint_now = done % cfg["ckpt_interval"] == 0 or stopping or done in cfg["keep_ckpt_steps"]
    if not (done % cfg["log_interval"] == 0 or evaluate_now or checkpoint_now):
        return
    record = logged_record(run, done, lr, evaluate_now)
    log(run, record)
    if evaluate_now:
        run.val_history[done] = record["val_loss"]
    if checkpoint_now:
        save_checkpoint(run, done)
    run.logged_step, run.t_log = done, time.perf_counter()


def run_training(cfg, stop_signal):
    """set_up, then train_step and log_evaluate_checkpoint for each update until max_steps or a stop signal."""
    run = set_up(cfg)
    if run is None:  # init_from=auto found the run finished
        return True
    cfg = run.cfg
    if run.schedule_free:
        run.optimizer.train()
    if cfg["init_from"] != "resume":  # the starting point: step 0, or where a branch leaves its trunk
        branch = dict(origin=run.origin) if run.origin else {}
        log(run, dict(step=run.start_step, tokens=run.start_step * run.tokens_per_step, **branch,
                      **validation_losses(run), elapsed_s=0.0))
    run.t_log = run.t_start = time.perf_counter()
    run.time_left = progress.TimeLeft(run.start_step, cfg["max_steps"])
    for step in range(run.start_step, cfg["max_steps"]):  # `step` counts finished optimizer updates
        lr = train_step(run, step, run.losses[step - run.logged_step])
        # every process stops after the same step, whichever got the signal (one step later under torchrun)
        stopping = run.stop.step(bool(stop_signal)) or step + 1 == cfg["max_steps"]
        log_evaluate_checkpoint(run, step + 1, lr, stopping)
        if stopping:
            break
    finish(run)
    return run.logged_step == cfg["max_steps"]


def finish(run):
    """The loss before and after the cooldown; every process ends together, rank 0's writes done."""
    cfg, history, start = run.cfg, run.val_history, cooldown_start(run.cfg)
    if run.logged_step < cfg["max_steps"] and run.procs.master:
        print(f"stopped by a signal after step {run.logged_step}; checkpoint saved, continue with "
              f"--init_from=resume or auto", flush=True)
    if run.procs.master and start in history and cfg["max_steps"] in history:
        print(f"val loss {history[start]:.4f} before the cooldown (step {start}), "
              f"{history[cfg['max_steps']]:.4f} after it (step {cfg['max_steps']})")
    run.stop.finish()
    run.tracker.finish()
    run.wrapped.release()
    parallel.shutdown(run.owned)


if __name__ == "__main__":
    run_script(main, sys.argv[1:])
