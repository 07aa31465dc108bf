"""
The prepared GPU check of the paper-scale path, on one GPU in a few minutes: the 124M paper config, compiled, in
bf16, at its derived micro-batch, trains `steps` steps and `resume_steps` more; then a copy of its checkpoint at
`steps` is resumed to the same end. It prints tokens/s, MFU by the Chinchilla count and by nanoGPT's
6N + 12·L·H·Q·T, peak memory against the dry run's estimate, the validation loss and how closely the resumed
steps repeat the uninterrupted ones. The GPU's name comes first: docs/performance.md's GPU figures are these lines.

    python prepare_data.py --dataset=stdlib              # GPT-2 tokens of the embedded corpus, no network
    python gpu_check.py                                  # configs/124m_cooldown.py, 50 + 10 steps
    python gpu_check.py configs/360m.py configs/paper.py --model=360m --steps=30
    python gpu_check.py configs/cpu_tiny.py --compile=False --steps=6 --resume_steps=2   # the same, on a CPU

Settings: train.py's (config files, then --key=value; configs/124m_cooldown.py when no file is named), with
data_dir data/stdlib-gpt2, out_dir out/gpu_check, a constant LR (so that the run can be extended), and
`steps`, `resume_steps` and `report_json` (a file for the figures, as JSON) of its own. Timing skips the first log
window (compilation). The GPU tests (tests/test_gpu_check.py, marked gpu) and bench/gpu.py run it.
"""

import json
import shutil
import statistics
import sys
from pathlib import Path

import torch

import train
from lab import checkpoint, perf, plan, settings
from lab.config import parse_args, read_json

CHECK_DEFAULTS = dict(steps=50, resume_steps=10, report_json="")  # report_json: the figures, also as JSON


def check_config(argv):
    if not any(not a.startswith("--") for a in argv):
        argv = ["configs/124m_cooldown.py", *argv]
    given = {a[2:].partition("=")[0] for a in argv if a.startswith("--")}
    base = dict(data_dir="data/stdlib-gpt2", out_dir="out/gpu_check", schedule="constant", log_interval=10,
                eval_tokens=50 * 512 * 4)  # 4 batches: an evaluation that costs seconds
    cfg = parse_args(argv, {**settings.DEFAULTS, **CHECK_DEFAULTS}, settings.TYPES)
    cfg.update({k: v for k, v in base.items() if k not in given})
    total = cfg["steps"] + cfg["resume_steps"]
    cfg.update(max_steps=total, eval_interval=cfg["steps"], ckpt_interval=total, keep_ckpt_steps=[cfg["steps"]],
               overwrite=True, init_from="scratch", warmup_steps=min(cfg["warmup_steps"], cfg["steps"] // 2))
    return cfg


def records(out_dir):
    return read_json(Path(out_dir) / "metrics.jsonl", lines=True)


def main(argv):
    """Train, resume a copy, print the report; returns its figures (measured)."""
    cfg = check_config(argv)
    run_cfg = {k: cfg[k] for k in settings.DEFAULTS}
    train.train(run_cfg)
    resumed = Path(cfg["out_dir"] + "_resumed")
    shutil.rmtree(resumed, ignore_errors=True)
    resumed.mkdir(parents=True)
    shutil.copytree(checkpoint.path_for(cfg["out_dir"], cfg["steps"]), checkpoint.path_for(resumed, cfg["steps"]))
    shutil.copy(Path(cfg["out_dir"]) / "config.json", resumed)
    train.train(dict(run_cfg, out_dir=str(resumed), init_from="resume"))
    measured = figures(cfg, records(cfg["out_dir"]), records(resumed))
    print("\n".join(report(cfg, measured)))
    if cfg["report_json"]:
        Path(cfg["report_json"]).write_text(json.dumps(dict(measured, report=report(cfg, measured)), indent=1))
    return measured


def figures(cfg, full, resumed):
    """What the check measured: speed, MFU by both counts, peak memory and its estimate, losses, the resume's gap."""
    info = read_json(Path(cfg["out_dir"]) / "config.json")
    mconf = settings.model_config(cfg, info["vocab_size"])
    micro_batch, grad_accum = info["micro_batch"]  # as the run resolved it (micro_batch_size=auto included)
    timed = [r for r in full if "tokens_per_s" in r][1:] or [r for r in full if "tokens_per_s" in r]
    tokens_per_s = statistics.median(r["tokens_per_s"] for r in timed)
    peak, dtype = info["peak_flops"], info["config"]["dtype"]  # the resolved precision: bf16 on GPUs that have it
    counts = dict(chinchilla=info["flops_per_token"]["chinchilla"],
                  nanogpt=perf.nanogpt_flops_per_token(mconf, info["params"], cfg["seq_len"]))
    estimate = plan.memory_estimate(mconf, micro_batch, cfg["seq_len"], getattr(torch, dtype), info["device"].split(":")[0],
                                    **plan.estimate_settings(cfg, 1))["total"] / 1e9
    losses = {r["step"]: r["train_loss"] for r in full if "train_loss" in r}
    gaps = [abs(r["train_loss"] - losses[r["step"]]) for r in resumed if "train_loss" in r]
    return dict(device=info["device"], params=info["params"], dtype=dtype, micro_batch=micro_batch,
                grad_accum=grad_accum, tokens_per_s=tokens_per_s, windows=len(timed),
                mfu={kind: peak and tokens_per_s * flops / peak for kind, flops in counts.items()},
                peak_memory_gb=max((r.get("peak_memory_gb", 0) for r in full), default=0), estimate_gb=estimate,
                val_loss=[r["val_loss"] for r in full if "val_loss" in r], resume_gap=max(gaps) if gaps else None)


def report(cfg, m):
    """The check's lines, from figures()."""
    device = m["device"]
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
    pct = lambda v: "n/a (no peak known: pass peak_tflops)" if v is None else f"{v:.1%}"
    return [
        f"gpu check on {name}: {cfg['model']} ({m['params'] / 1e6:.1f}M), {m['dtype']}, compile={cfg['compile']}"
        + ("" if cfg["compile_mode"] == "default" else f" ({cfg['compile_mode']})")
        + f", micro-batch {m['micro_batch']} x {m['grad_accum']}, {cfg['batch_size'] * cfg['seq_len']:,} tokens/step, "
        f"1 process",
        f"tokens/s: {m['tokens_per_s']:,.0f} (median of {m['windows']} log windows after the first)",
        f"MFU: {pct(m['mfu']['chinchilla'])} by the Chinchilla count, {pct(m['mfu']['nanogpt'])} by the nanoGPT "
        f"6N+12LHQT count",
        f"peak memory: {m['peak_memory_gb']:.1f} GB measured (torch.cuda.max_memory_allocated), {m['estimate_gb']:.1f} "
        f"GB estimated by the dry run ({m['estimate_gb'] / m['peak_memory_gb'] - 1:+.0%})" if m["peak_memory_gb"]
        else f"peak memory: not measured on {device}; {m['estimate_gb']:.2f} GB estimated",
        f"val_loss: {', '.join(f'{v:.4f}' for v in m['val_loss'])} (steps 0, {cfg['steps']}, {cfg['max_steps']})",
        f"resume from step {cfg['steps']}: largest train_loss gap to the uninterrupted run {m['resume_gap']:.2e}"
        if m["resume_gap"] is not None else "resume: no steps logged",
    ]


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
