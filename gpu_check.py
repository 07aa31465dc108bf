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

Settings: train.py's, with configs/124m_cooldown.py's values when no config file is named, and the check's own
values of data_dir (data/stdlib-gpt2), out_dir (out/gpu_check), a constant LR (so that the run can be extended),
log_interval and eval_tokens over the config files' unless given as --key=value; and `steps`, `resume_steps` and
`report_json` (a file for the figures, as JSON) of its own. `python gpu_check.py --help` lists them with the values
the check uses. out_dir is the check's own folder: it trains in out_dir/full/ and resumes in out_dir/resumed/, replaces
only what an earlier check wrote there, and refuses a folder that holds anything else (a run of yours).
Timing skips the first log window (compilation). The GPU tests (tests/test_gpu_check.py, marked gpu) and bench/gpu.py
run it.
"""

import json
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import torch

import train
from lab import checkpoint, owned, perf, plan, settings
from lab.config import ConfigError, Setting, config_file, parse_args, read_json, with_defaults

DEFAULT_CONFIG = "configs/124m_cooldown.py"
# the check's values of train.py's settings, over the config files' unless given as --key=value
OWN = dict(data_dir="data/stdlib-gpt2", out_dir="out/gpu_check", schedule="constant", log_interval=10,
           eval_tokens=50 * 512 * 4)  # 4 batches: an evaluation that costs seconds
CHECK_SETTINGS = dict(
    steps=Setting(50, "steps of the run before the checkpoint that the resume starts from", ">= 2"),
    resume_steps=Setting(10, "steps after it, trained straight on and again from a copy of the checkpoint", ">= 1"),
    report_json=Setting("", "a file for the figures, as JSON (empty: none)"),
)
# train.py's settings that the check sets itself, from steps and resume_steps
SET_BY_THE_CHECK = dict(max_steps="steps + resume_steps", eval_interval="steps", ckpt_interval="steps + resume_steps",
                        keep_ckpt_steps="[steps]", overwrite="True, in its own out_dir", init_from="scratch")
RUNS = ("full", "resumed")  # the check's runs, in out_dir


def set_by_the_check(steps, resume_steps):
    """The values of SET_BY_THE_CHECK."""
    total = steps + resume_steps
    return dict(max_steps=total, eval_interval=steps, ckpt_interval=total, keep_ckpt_steps=[steps], overwrite=True,
                init_from="scratch")


def check_settings(config_files):
    """The check's settings table: train.py's with the values the check uses as defaults (configs/124m_cooldown.py's
    when no config file is named, then OWN), those it sets itself said so, and its own."""
    forced = set_by_the_check(CHECK_SETTINGS["steps"].default, CHECK_SETTINGS["resume_steps"].default)
    table = with_defaults(settings.SETTINGS, **{**({} if config_files else config_file(DEFAULT_CONFIG)), **OWN,
                                                **forced})
    for key, how in SET_BY_THE_CHECK.items():
        table[key] = replace(table[key], help=f"gpu_check.py sets it: {how}")
    table["out_dir"] = replace(table["out_dir"], help="the check's own folder: its runs full/ and resumed/")
    return {**table, **CHECK_SETTINGS}


def check_config(argv):
    files = [a for a in argv if not a.startswith("--")]
    given = {a[2:].partition("=")[0] for a in argv if a.startswith("--")}
    cfg = parse_args(argv, check_settings(files))
    forced = sorted(given & set(SET_BY_THE_CHECK))
    if forced:
        raise ConfigError(f"gpu_check.py sets {forced[0]} itself ({SET_BY_THE_CHECK[forced[0]]}): give --steps and "
                          f"--resume_steps")
    cfg.update({k: v for k, v in OWN.items() if k not in given})
    cfg.update(set_by_the_check(cfg["steps"], cfg["resume_steps"]),
               warmup_steps=min(cfg["warmup_steps"], cfg["steps"] // 2))
    return cfg


def records(out_dir):
    return read_json(Path(out_dir) / "metrics.jsonl", lines=True)


def main(argv):
    """Train, resume a copy, print the report; returns its figures (measured)."""
    cfg = check_config(argv)
    folder = Path(cfg["out_dir"])
    owned.record(folder, "gpu_check.py", owned.claim(folder, "gpu_check.py", RUNS, alone=True) | set(RUNS))
    full, resumed = folder / "full", folder / "resumed"
    run_cfg = dict({k: cfg[k] for k in settings.DEFAULTS}, out_dir=str(full))
    train.train(run_cfg)
    shutil.rmtree(resumed, ignore_errors=True)  # an earlier check's: the manifest says so
    resumed.mkdir()
    shutil.copytree(checkpoint.path_for(full, cfg["steps"]), checkpoint.path_for(resumed, cfg["steps"]))
    shutil.copy(full / "config.json", resumed)
    train.train(dict(run_cfg, out_dir=str(resumed), init_from="resume"))
    measured = figures(cfg, full, records(full), records(resumed))
    print("\n".join(report(cfg, measured)))
    if cfg["report_json"]:
        Path(cfg["report_json"]).write_text(json.dumps(dict(measured, report=report(cfg, measured)), indent=1))
    return measured


def figures(cfg, run_dir, full, resumed):
    """What the check measured (the uninterrupted run in run_dir, its records `full`, the resumed run's `resumed`):
    speed, MFU by both counts, peak memory and its estimate, losses, the resume's gap."""
    info = read_json(Path(run_dir) / "config.json")
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
