"""
How fast a config trains and evaluates, and where a training step's time goes.

    python -m bench.speed                                  # cpu_tiny, then cpu_10m (configs/cpu_tiny.py --model=cpu_10m)
    python -m bench.speed configs/cpu_tiny.py --model=cpu_10m --steps=20
    python -m bench.speed configs/cpu_tiny.py --fp32=False --try_compile=False        # bf16 only, ~10 s
    python -m bench.speed configs/124m.py --peak_tflops=312      # on a GPU not in perf.GPU_PEAK_TFLOPS

Settings: train.py's (config files, --key=value; with no config file, configs/cpu_tiny.py's, run with the model
cpu_tiny and then cpu_10m), plus the bench's own below (`python -m bench.speed --help` lists them all with the values
it uses). For each config it
prints: training and evaluation tokens/s; MFU (achieved FLOP/s by model.flops_per_token's Chinchilla count, and by
nanoGPT's 6N + 12·L·H·Q·T, over the device peak: on a CPU the faster of the best bf16 and fp32 matmuls measured
in this run at the model's own matmul shapes, both printed; on a GPU perf.GPU_PEAK_TFLOPS or --peak_tflops); the
dtype it runs (dtype=auto resolved by lab/precision.py, and what auto picks here and why); the share of step time
in data loading, forward+backward, optimizer (clipping included) and logging; peak memory; float32 against the
dtype when that is another (speed ratio and both loss curves, same data and initial weights); torch.compile's compile time
and steady-state speed-up. Steps run exactly as in train.py, timed part by part (on a GPU with a synchronisation
at each boundary, which train.py does not pay). The variants and an evaluation of the validation set take turns of
`turn_steps` steps, so that load from elsewhere falls on all of them alike; other load only slows a step, so each
figure is a minimum: per part of a training step, and per evaluation batch of eval_batch_size windows (the size of
a training batch). Run nothing else meanwhile: the figures are only as quiet as the machine.
"""

import io
import json
import math
import resource
import sys
import time
from dataclasses import replace

import torch

import train
from lab import perf, precision, settings
from lab.config import ConfigError, Setting, check_values, config_file, parse_args, with_defaults
from lab.data import Dataset, inputs_and_targets
from lab.evaluation import autocast_for, evaluate
from lab.parallel import setup_device
from schedules import learning_rate

BENCH_SETTINGS = dict(
    steps=Setting(15, "timed training steps of each variant", ">= 1"),
    turn_steps=Setting(5, "the variants take turns of this many steps", ">= 1"),
    untimed_steps=Setting(2, "steps before the timing (a compiled model compiles there)", ">= 0"),
    fp32=Setting(True, "also time float32 when the dtype is another, with both loss curves"),
    try_compile=Setting(True, "also time the model compiled"),
    probe_seconds=Setting(2.0, "seconds of each matmul probe of the CPU's peak", "> 0"),
)
SETTINGS = {**settings.SETTINGS, **BENCH_SETTINGS}
DEFAULT_CONFIG = "configs/cpu_tiny.py"
DEFAULT_RUNS = [[DEFAULT_CONFIG], [DEFAULT_CONFIG, "--model=cpu_10m"]]
PARTS = ("data", "forward_backward", "optimizer", "logging")


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the process's peak so far


class Trainer:
    """train.py's step, from the same initial weights and batches whatever the dtype, timed part by part."""

    def __init__(self, cfg, data, device, dtype, compile_model):
        self.cfg, self.data, self.device = cfg, data, device
        torch.manual_seed(cfg["seed"])
        self.model = train.GPT(settings.model_config(cfg, data.vocab_size)).to(device)
        self.optimizer = settings.make_optimizer(cfg, self.model, device)
        if cfg["optimizer"] == "adamw_schedulefree":
            self.optimizer.train()  # its training weights, as train.py's steps use (it starts in eval mode)
        self.step_model = torch.compile(self.model) if compile_model else self.model
        self.autocast = autocast_for(device, dtype)
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        self.losses = torch.zeros(cfg["log_interval"], device=device)
        self.step, self.part_seconds, self.step_losses = 0, [], []

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def run(self, steps):
        """`steps` more training steps; appends each one's seconds per part and its training loss."""
        cfg = self.cfg
        micro_batch, grad_accum = settings.micro_batching(cfg, world_size=1)
        for _ in range(steps):
            t0 = self.sync()
            lr = learning_rate(cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            rows = self.data.train_batch(self.step, cfg["seed"], cfg["batch_size"], cfg["seq_len"],
                                         pin_memory=self.device.type == "cuda").to(self.device, non_blocking=True)
            t1 = self.sync()
            slot = self.step % cfg["log_interval"]
            for start in range(0, cfg["batch_size"], micro_batch):
                batch = rows[start:start + micro_batch]
                with self.autocast:
                    loss = self.step_model(*inputs_and_targets(batch))[1]
                self.losses[slot] += loss.detach() / grad_accum
                self.scaler.scale(loss / grad_accum).backward()
            t2 = self.sync()
            if cfg["grad_clip"] > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg["grad_clip"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            t3 = self.sync()
            # train.py's logging: once every log_interval steps, one copy of the window's losses to the host and
            # a JSON line. Done here at every step, on a copy, and charged 1/log_interval of its time per step.
            window = self.losses.clone().tolist()
            io.StringIO().write(json.dumps(dict(step=self.step, lr=lr, train_loss=sum(window) / len(window))) + "\n")
            t4 = self.sync()
            self.step_losses.append(self.losses[slot].item())
            self.losses[slot] = 0.0
            self.step += 1
            self.part_seconds.append(dict(zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, (t4 - t3) / cfg["log_interval"]))))

    def fastest_step(self):
        """Seconds per part of a step on a quiet machine: each part's minimum over the timed steps (other load
        on the machine only ever slows a part down)."""
        return {part: min(step[part] for step in self.part_seconds) for part in PARTS}


def time_evaluation(model, val_x, val_y, cfg, autocast):
    """Tokens/s of evaluation.evaluate (forward only, no grad) on each full batch of eval_batch_size validation
    windows: units the size of a training step, so that the best one compares with the fastest step."""
    rates, batch = [], cfg["eval_batch_size"]
    for start in range(0, len(val_x) - batch + 1, batch):
        x, y = val_x[start:start + batch], val_y[start:start + batch]
        t0 = time.perf_counter()
        evaluate(model, x, y, batch, autocast)  # ends with .item(): synchronised on a GPU too
        rates.append(y.numel() / (time.perf_counter() - t0))
    return rates


def loss_agreement(losses, reference):
    """Largest and mean gap between two loss curves, next to the curve's own step-to-step noise."""
    gaps = [a - b for a, b in zip(losses, reference)]
    # one step's noise: second differences cancel the loss's (locally linear) trend; each has variance 6 sigma^2
    second = [a - 2 * b + c for a, b, c in zip(losses, losses[1:], losses[2:])]
    noise = math.sqrt(sum(d * d for d in second) / max(len(second), 1) / 6)
    return dict(max_gap=max(abs(g) for g in gaps), mean_gap=sum(gaps) / len(gaps), step_noise=noise)


def bench(cfg):
    """Every figure of the report, as a dict (see format_report)."""
    settings.check_config(cfg, world_size=1)
    check_values(cfg, BENCH_SETTINGS)
    device = setup_device(cfg["device"])
    data = Dataset(cfg["data_dir"])
    mconf = settings.model_config(cfg, data.vocab_size)
    val_x, val_y = (t.to(device) for t in data.val_windows(cfg["eval_tokens"], cfg["seq_len"]))
    if len(val_x) < cfg["eval_batch_size"]:
        raise ConfigError(f"eval_tokens={cfg['eval_tokens']} gives {len(val_x)} validation windows, fewer than "
                          f"eval_batch_size={cfg['eval_batch_size']}: nothing to time")
    tokens_per_step = cfg["batch_size"] * cfg["seq_len"]
    micro_batch = settings.micro_batching(cfg, world_size=1)[0]
    # on a CPU both precisions are probed at the model's shapes (one micro-batch of tokens): they decide what
    # dtype=auto means here, and the faster one is the peak that MFU divides by
    shapes = perf.model_matmul_shapes(mconf, micro_batch * cfg["seq_len"]) if device.type == "cpu" else None
    probe = lambda: perf.matmul_speeds(shapes, cfg["probe_seconds"]) if shapes else None
    speeds = probe()
    chosen = precision.resolve(cfg["dtype"], device, speeds)
    auto = chosen if cfg["dtype"] == "auto" else precision.resolve("auto", device, speeds)
    dtype = chosen.torch_dtype
    report = dict(model=cfg["model"], dtype=chosen.dtype, requested=cfg["dtype"], auto_dtype=auto.dtype,
                  auto_rule=auto.rule, warning=chosen.warning, device=str(device), threads=torch.get_num_threads(),
                  batch_size=cfg["batch_size"], seq_len=cfg["seq_len"], micro_batch_size=micro_batch,
                  steps=cfg["steps"], tokens_per_step=tokens_per_step, probe_shapes=shapes)

    # the variants run in turns of a few steps each, so that load from elsewhere falls on all of them alike
    variants = {"main": (dtype, False)}
    if cfg["fp32"] and dtype != torch.float32:
        variants["fp32"] = (torch.float32, False)
    if cfg["try_compile"]:
        variants["compiled"] = (dtype, True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainers, warm_up_seconds = {}, {}
    for name, (variant_dtype, compile_model) in variants.items():
        trainers[name] = Trainer(cfg, data, device, variant_dtype, compile_model)
        t0 = time.perf_counter()
        trainers[name].run(cfg["untimed_steps"])  # a compiled model compiles here, forward and backward
        warm_up_seconds[name] = time.perf_counter() - t0
        trainers[name].part_seconds, trainers[name].step_losses = [], []
    # evaluation takes its turn too: the validation set once per turn, with the main variant's weights
    eval_rates = []
    for _ in range(0, cfg["steps"], cfg["turn_steps"]):
        for trainer in trainers.values():
            trainer.run(min(cfg["turn_steps"], cfg["steps"] - len(trainer.part_seconds)))
        eval_rates += time_evaluation(trainers["main"].model, val_x, val_y, cfg, trainers["main"].autocast)
    report["peak_memory_mb"] = peak_memory_mb(device)
    if speeds:  # probed again after the steps: each figure is the best of the two, as load only slows
        chosen.matmul_flops = {name: max(flops, again) for (name, flops), again in zip(speeds.items(), probe().values())}
        peaks = chosen.matmul_flops
    else:
        peaks = {name: perf.peak_flops(device, getattr(torch, name), cfg["peak_tflops"]) for name in ("bfloat16", "float32")}
    report["peak_tflops"] = {name: peak and peak / 1e12 for name, peak in peaks.items()}
    peak = precision.peak_flops(chosen, device, cfg["peak_tflops"])  # a CPU's best precision; a GPU's for dtype

    main = trainers["main"]
    report["params"] = main.model.num_params()
    flops = train.flops_per_token(mconf, cfg["seq_len"])
    flops["nanogpt"] = perf.nanogpt_flops_per_token(mconf, report["params"], cfg["seq_len"])
    report["flops_per_token"] = flops
    seconds = main.fastest_step()
    step_time = sum(seconds.values())
    report["train_tokens_per_s"] = tokens_per_step / step_time
    report["step_ms"] = step_time * 1e3
    report["share"] = {part: s / step_time for part, s in seconds.items()}
    report["mfu"] = {kind: peak and report["train_tokens_per_s"] * flops[kind] / peak
                     for kind in ("chinchilla", "nanogpt", "six_n")}
    report["losses"] = main.step_losses

    report["eval_tokens_per_s"] = max(eval_rates)
    report["eval_over_train"] = report["eval_tokens_per_s"] / report["train_tokens_per_s"]

    if "fp32" in trainers:
        fp32 = trainers["fp32"]
        tokens_per_s = tokens_per_step / sum(fp32.fastest_step().values())
        report["fp32"] = dict(train_tokens_per_s=tokens_per_s, losses=fp32.step_losses,
                              speedup_of_dtype=report["train_tokens_per_s"] / tokens_per_s,
                              mfu=peak and tokens_per_s * flops["chinchilla"] / peak,
                              **loss_agreement(main.step_losses, fp32.step_losses))
    if "compiled" in trainers:
        compiled = trainers["compiled"]
        compiled_step = sum(compiled.fastest_step().values())
        report["compile"] = dict(
            compile_s=warm_up_seconds["compiled"] - cfg["untimed_steps"] * compiled_step,
            train_tokens_per_s=tokens_per_step / compiled_step, speedup=step_time / compiled_step,
            max_loss_gap=max(abs(a - b) for a, b in zip(main.step_losses, compiled.step_losses)))
    return report


def format_report(r):
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"
    probes = ", ".join(str(s) for s in r["probe_shapes"] or [])
    lines = [f"== {r['model']}: {r['params'] / 1e6:.2f}M params, {r['dtype']} on {r['device']} ({r['threads']} threads), "
             f"batch {r['batch_size']} x {r['seq_len']} tokens in micro-batches of {r['micro_batch_size']}; "
             f"{r['steps']} timed steps",
             f"peak:        bf16 {r['peak_tflops']['bfloat16'] or 0:.3f}, fp32 {r['peak_tflops']['float32'] or 0:.3f} TFLOP/s"
             + (f" (best matmul at the model's (M, K, N): {probes}); MFU is of the faster" if probes else ""),
             f"dtype:       {r['dtype']} ({r['requested']}); auto picks {r['auto_dtype']}: {r['auto_rule']}"
             + (f"\nwarning:     {r['warning']}" if r["warning"] else ""),
             f"training:    {r['train_tokens_per_s']:,.0f} tokens/s, {r['step_ms']:.1f} ms/step; MFU "
             f"{pct(r['mfu']['chinchilla'])} by the Chinchilla count ({r['flops_per_token']['chinchilla'] / 1e6:.1f} "
             f"MFLOPs/token), {pct(r['mfu']['nanogpt'])} by nanoGPT's 6N+12LHQT "
             f"({r['flops_per_token']['nanogpt'] / 1e6:.1f})",
             "step time:   " + ", ".join(f"{part} {share:.1%}" for part, share in r["share"].items()),
             f"evaluation:  {r['eval_tokens_per_s']:,.0f} tokens/s = {r['eval_over_train']:.1f}x training",
             f"peak memory: {r['peak_memory_mb']:,.0f} MB"]
    if "fp32" in r:
        f = r["fp32"]
        lines.append(f"float32:     {f['train_tokens_per_s']:,.0f} tokens/s (MFU {pct(f['mfu'])}); "
                     f"{r['dtype']} is {f['speedup_of_dtype']:.2f}x faster. Loss gap {r['dtype']} - float32: "
                     f"mean {f['mean_gap']:+.4f}, largest {f['max_gap']:.4f}; a step's own noise {f['step_noise']:.4f}")
        lines.append(f"loss per step, {r['dtype']} / float32: " + " ".join(
            f"{a:.3f}/{b:.3f}" for a, b in zip(r["losses"], f["losses"])))
    if "compile" in r:
        c = r["compile"]
        lines.append(f"compiled:    {c['train_tokens_per_s']:,.0f} tokens/s = {c['speedup']:.2f}x eager, after "
                     f"{c['compile_s']:.0f} s of compilation; largest loss gap to eager {c['max_loss_gap']:.4f}")
    return "\n".join(lines)


def bench_settings(config_files):
    """SETTINGS with the values the bench uses: configs/cpu_tiny.py's when no config file is named."""
    if config_files:
        return SETTINGS
    table = with_defaults(SETTINGS, **config_file(DEFAULT_CONFIG))
    table["model"] = replace(table["model"], help="cpu_tiny, then cpu_10m")
    return table


def main(argv):
    files = [a for a in argv if not a.startswith("--")]
    table = bench_settings(files)  # --help shows these
    for run_argv in [argv] if files else [run + argv for run in DEFAULT_RUNS]:
        print(format_report(bench(parse_args(run_argv, table))), flush=True)


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
