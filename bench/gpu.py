r"""
The prepared GPU run: every GPU figure of docs/performance.md from one command on one GPU (sized for ~8 minutes on an
H200), each part in processes of its own so that one that fails does not stop the others:

    python prepare_data.py --dataset=stdlib                            # GPT-2 tokens of the embedded corpus, seconds
    python -m bench.gpu --nanogpt=/path/to/nanoGPT --out=out/bench_gpu  # tests, check, nanogpt, levers
    python -m bench.gpu --parts=ab --out=out/bench_gpu                  # the loss A/B, a second call (~5 minutes)
    python -m bench.gpu --dry=True                                      # the commands and the time plan; runs nothing
    python -m bench.gpu --device=cpu --config=configs/cpu_tiny.py --data_dir=data/stdlib-bytes --parts=levers \
        --levers=fused_optimizer=False --lever_steps=6 --train_args="--eval_tokens=8192"   # its machinery on a CPU

Parts (--parts, comma-separated, run in this order):
- tests: `pytest -m gpu tests`: the GPU path's own tests (a compiled bf16 run, an exact resume, the memory plan, DDP
  on every visible GPU, each lever against PyTorch's ops, and with --nanogpt, given to them as NANOGPT, ours
  against nanoGPT);
- check: gpu_check.py at the paper's 124M (compiled bf16, micro-batch 50 x 4): tokens/s, MFU by the Chinchilla and
  nanoGPT counts, peak memory against the plan, the resume's gap;
- nanogpt: bench/nanogpt.py --device=cuda, one pair: ours against nanoGPT's bench.py at 50 x 512;
- levers: a short run with every lever off (the baseline), then one with each lever of --levers (comma-separated
  names of LEVERS below) on: tokens/s (median
  after the first two log windows, which hold the compilation), peak memory, the last training loss, and what a
  lever fell back to if it could not run;
- ab: the loss A/B over `ab_steps`: the baseline, the baseline at another seed (the seed noise), and the levers of
  --ab_levers on (default: those the levers part of the same --out found faster); the val losses side by side.
Results: <out>/results.json (every figure; a part run again replaces its own), a log per run, the summary printed.
"""

import json
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lab import owned
from lab.config import ConfigError, Setting, parse_args, read_json
from lab.settings import run_script

REPO = Path(__file__).resolve().parent.parent
PARTS = ("tests", "check", "nanogpt", "levers", "ab")
OUTPUT = ("runs", "logs", "results.json")  # what the bench writes in --out
# name -> train.py settings; each is one lever of lab/settings.py on (off is the default)
LEVERS = {"micro_batch_size=auto": ["--micro_batch_size=auto"], "fused_optimizer=False": ["--fused_optimizer=False"],
          "fused_loss=liger": ["--fused_loss=liger"], "fused_loss=cce": ["--fused_loss=cce"],
          "liger_kernels=True": ["--liger_kernels=True"], "attention=cudnn": ["--attention=cudnn"],
          "float8=True": ["--float8=True"], "compile_mode=reduce-overhead": ["--compile_mode=reduce-overhead"],
          "compile_mode=max-autotune-no-cudagraphs": ["--compile_mode=max-autotune-no-cudagraphs"]}
# the plan's seconds per part, estimated from the H200 logs results/perf/h200_* (gpu_check.py 83 s,
# nanoGPT's bench.py 47 s: a 124M compile is ~35 s there); not yet measured for this script
PLANNED_S = dict(tests=80, check=85, nanogpt=100, lever=35, ab=100)
# the first call's levers (planned ~7.5 minutes in all); the others in a second call, with the A/B:
#   python -m bench.gpu --parts=levers,ab --levers=fused_optimizer=False,fused_loss=cce,compile_mode=reduce-overhead,...
FIRST_LEVERS = "micro_batch_size=auto,fused_loss=liger,liger_kernels=True,attention=cudnn,float8=True"
SETTINGS = dict(
    parts=Setting("tests,check,nanogpt,levers", f"the parts to run, comma-separated: {', '.join(PARTS)}"),
    out=Setting("out/bench_gpu", "the bench's own folder: runs/, logs/, results.json (it replaces only what it wrote)"),
    nanogpt=Setting("", "a checkout of karpathy/nanoGPT, for the nanogpt part (empty: the part is skipped)"),
    dry=Setting(False, "print the commands and the time plan, run nothing"),
    device=Setting("cuda", "the device of the runs"),
    config=Setting("configs/124m_cooldown.py", "the config of the levers' and the A/B's runs"),
    data_dir=Setting("data/stdlib-gpt2", "their data"),
    train_args=Setting("", "more train.py settings for those runs"),
    levers=Setting(FIRST_LEVERS, "the levers part's levers, comma-separated names of LEVERS"),
    lever_steps=Setting(20, "steps of each lever's run", ">= 1"),
    ab_levers=Setting(None, "the A/B's levers (None: those the levers part of this --out found faster)",
                      types=(str, type(None))),
    ab_steps=Setting(300, "steps of each A/B run", ">= 6"),
    timeout_s=Setting(540, "each command's time limit in seconds", "> 0"),
)


def names(text):
    """A comma-separated setting's names (parts, levers); none for an empty one."""
    return [name for name in text.split(",") if name]


def train_command(cfg, out_dir, steps, *extra):
    """train.py at the config's shape, a constant LR (a run of any length), one evaluation at the end."""
    return [sys.executable, "train.py", cfg["config"], f"--device={cfg['device']}", f"--data_dir={cfg['data_dir']}",
            f"--out_dir={out_dir}", "--overwrite=True", "--schedule=constant", f"--max_steps={steps}",
            f"--warmup_steps={min(20, steps // 2)}", "--log_interval=5", f"--eval_interval={steps}",
            "--ckpt_interval=1000000", "--eval_tokens=102400", *shlex.split(cfg["train_args"]), *extra]


def part_commands(cfg):
    """{part: [(name, command)]}: what each part of cfg['parts'] runs."""
    runs = Path(cfg["out"]) / "runs"
    # the GPU tests' nanoGPT comparison (tests/bench/test_nanogpt.py) finds the checkout in NANOGPT, else skips
    nanogpt = ["env", f"NANOGPT={cfg['nanogpt']}"] if cfg["nanogpt"] else []
    commands = dict(
        tests=[("tests", [*nanogpt, sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                          "tests"])],
        check=[("check", [sys.executable, "gpu_check.py", f"--data_dir={cfg['data_dir']}", f"--device={cfg['device']}",
                          f"--out_dir={runs / 'gpu_check'}", f"--report_json={runs / 'gpu_check.json'}"])],
        nanogpt=[("nanogpt", [sys.executable, "-m", "bench.nanogpt", f"--nanogpt={cfg['nanogpt']}", "--device=cuda",
                              "--pairs=1", "--steps=40", "--skip=10"])],
        levers=[("baseline", train_command(cfg, runs / "baseline", cfg["lever_steps"]))]
        + [(name, train_command(cfg, runs / slug(name), cfg["lever_steps"], *LEVERS[name])) for name in cfg["levers"]],
        ab=[(name, train_command(cfg, runs / f"ab_{slug(name)}", cfg["ab_steps"], f"--eval_interval={cfg['ab_steps'] // 6}",
                                 *extra)) for name, extra in ab_runs(cfg)],
    )
    return {part: commands[part] for part in PARTS if part in cfg["parts"]}


def ab_runs(cfg):
    """The A/B's runs: the baseline, the baseline at another seed, the levers kept."""
    kept = None if cfg["ab_levers"] is None else names(cfg["ab_levers"])
    if kept is None:  # the levers the levers part found faster (by 2 % or more), if it ran in this --out
        levers = previous_results(cfg["out"]).get("levers", {})
        base = levers.get("baseline", {}).get("tokens_per_s")
        kept = [n for n, r in levers.items() if n != "baseline" and base and not r.get("fell_back")
                and (r.get("tokens_per_s") or 0) >= 1.02 * base]
    return [("baseline", []), ("seed 1338", ["--seed=1338"]),
            ("levers kept", [arg for name in kept for arg in LEVERS[name]])]


def slug(name):
    return re.sub(r"[^\w.-]+", "_", name)


def previous_results(out):
    path = Path(out) / "results.json"
    return read_json(path) if path.is_file() else {}


def run_logged(name, command, log_dir, timeout_s):
    """Run `command` from the repository's root, its output in <log_dir>/<name>.log; (return code, output, s)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        code, output = "timeout", f"{e.stdout or ''}{e.stderr or ''}\n(timed out after {timeout_s} s)"
    (Path(log_dir) / f"{slug(name)}.log").write_text(output if isinstance(output, str) else output.decode())
    return code, output, time.perf_counter() - started


def train_figures(out_dir, output):
    """A train.py run's figures from its metrics.jsonl and its output."""
    records = read_json(Path(out_dir) / "metrics.jsonl", lines=True)
    timed = [r for r in records if "tokens_per_s" in r][2:] or [r for r in records if "tokens_per_s" in r]
    banner = re.search(r"micro-batch (\d+) x (\d+)", output)
    return dict(tokens_per_s=statistics.median(r["tokens_per_s"] for r in timed), mfu=timed[-1]["mfu"],
                peak_memory_gb=max((r.get("peak_memory_gb", 0.0) for r in records), default=0.0),
                train_loss=[r["train_loss"] for r in records if "train_loss" in r][-1],
                val_loss={r["step"]: r["val_loss"] for r in records if "val_loss" in r},
                micro_batch=banner and f"{banner[1]} x {banner[2]}",
                fell_back=[line.removeprefix("warning: ") for line in output.splitlines() if "instead" in line
                           or "stay in" in line or "PyTorch's choice" in line])


def figures(part, name, command, code, output):
    """What a finished command measured (or why it did not)."""
    if code != 0:
        return dict(error=f"exit {code}: " + (output.strip().splitlines() or [""])[-1][:300])
    if part == "tests":
        return dict(summary=output.strip().splitlines()[-1])
    if part == "check":
        return read_json(Path(option(command, "report_json")))
    if part == "nanogpt":
        ratio = re.search(r"ours / nanoGPT: ([\d.]+)x", output)
        pair = re.search(r"ours ([\d,]+) tokens/s .*nanoGPT ([\d,]+) tokens/s", output)
        return dict(ratio=float(ratio[1]), ours_tokens_per_s=float(pair[1].replace(",", "")),
                    nanogpt_tokens_per_s=float(pair[2].replace(",", "")))
    return train_figures(option(command, "out_dir"), output)


def option(command, key):
    """The value of --key=VALUE in a command."""
    return next(a.split("=", 1)[1] for a in command if a.startswith(f"--{key}="))


def against_baseline(lever, baseline):
    """A lever's speed-up and loss difference against the baseline of the same call (figures measured together)."""
    if "tokens_per_s" not in lever or "tokens_per_s" not in baseline:
        return {}
    return dict(speedup=lever["tokens_per_s"] / baseline["tokens_per_s"],
                loss_difference=lever["train_loss"] - baseline["train_loss"])


def summary(results):
    """The lines printed at the end: each part's figures, the levers against the baseline."""
    lines = []
    for part, runs in results.items():
        for name, r in runs.items():
            if "error" in r:
                lines.append(f"{part} {name}: FAILED ({r['error']})")
            elif part == "levers" and "speedup" in r and name != "baseline":
                lines.append(f"levers {name}: {r['speedup']:.3f}x the baseline's tokens/s ({r['tokens_per_s']:,.0f}), "
                             f"peak memory {r['peak_memory_gb']:.1f} GB, micro-batch {r['micro_batch']}, last train loss "
                             f"{r['loss_difference']:+.4f} against the baseline's"
                             + (f"; fell back: {'; '.join(r['fell_back'])}" if r["fell_back"] else ""))
            else:
                shown = {k: v for k, v in r.items() if k not in ("fell_back",)}
                lines.append(f"{part} {name}: {json.dumps(shown)}")
    return lines


def main(argv):
    cfg = parse_args(argv, SETTINGS)
    cfg.update(parts=names(cfg["parts"]), levers=names(cfg["levers"]))
    unknown = [p for p in cfg["parts"] if p not in PARTS] + [n for n in cfg["levers"] + names(cfg["ab_levers"] or "")
                                                             if n not in LEVERS]
    if unknown:
        raise ConfigError(f"unknown part or lever {unknown[0]!r}: parts {', '.join(PARTS)}; levers {', '.join(LEVERS)}")
    if "nanogpt" in cfg["parts"] and not cfg["nanogpt"]:
        cfg["parts"] = [p for p in cfg["parts"] if p != "nanogpt"]
        print("nanogpt: skipped, no --nanogpt=<a checkout of karpathy/nanoGPT>")
    commands = part_commands(cfg)
    planned = sum(PLANNED_S["lever"] * len(runs) if part == "levers" else PLANNED_S[part] * (len(runs) if part == "ab"
                  else 1) for part, runs in commands.items())
    print(f"planned: {len(sum(commands.values(), []))} commands, ~{planned / 60:.1f} min on an H200 "
          f"(parts {', '.join(commands)})")
    if cfg["dry"]:
        for part, runs in commands.items():
            print("\n".join(f"{part} {name}: {shlex.join(command)}" for name, command in runs))
        return {}
    owned.record(cfg["out"], "bench/gpu.py", owned.claim(cfg["out"], "bench/gpu.py", OUTPUT, alone=True) | set(OUTPUT))
    logs = Path(cfg["out"]) / "logs"
    logs.mkdir(exist_ok=True)
    results = previous_results(cfg["out"])
    for part, runs in commands.items():
        results[part] = results.get(part, {}) if part == "levers" else {}  # levers add up over calls
        for name, command in runs:
            code, output, seconds = run_logged(name, command, logs, cfg["timeout_s"])
            results[part][name] = dict(figures(part, name, command, code, output), seconds=round(seconds, 1))
            if part == "levers":
                results[part][name].update(against_baseline(results[part][name], results[part]["baseline"]))
            print(f"{part} {name}: {'done' if code == 0 else 'FAILED'} in {seconds:.0f} s", flush=True)
            (Path(cfg["out"]) / "results.json").write_text(json.dumps(results, indent=1))
    print("\n".join(summary({part: results[part] for part in commands})))
    return results


if __name__ == "__main__":
    run_script(main, sys.argv[1:])
