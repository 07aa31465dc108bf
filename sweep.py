"""
Run the experiment suites of lab/suites.py (one per claim of the paper, C1-C9: docs/results.md) one after the other,
resumable, and gather each finished run's logs under results/ for plot.py.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes   # once: the data of the cpu, long and quick scales
    python sweep.py all --plan                                   # every run with its steps, tokens, estimated time
    python sweep.py c4_cooldown_shapes                           # one suite at the cpu scale
    python sweep.py all                                          # every suite at the cpu scale (docs/results.md: times)
    python sweep.py all --scale=long                             # c4 to 4800 and c7 at 2400 steps
    python sweep.py all --scale=quick                            # fewer, shorter runs: a smoke test
    python sweep.py c8_scaling --scale=paper --plan              # the paper's own runs, for GPUs
    python sweep.py all --gflops=180                             # estimate with a given rate instead of timing
    python sweep.py all --compile=True                           # every run compiled (on a CPU ~1.15x: docs/performance.md)
    python sweep.py all --device=cpu                             # on the CPU, whatever GPUs the machine has

Suites: c1_cosine_lengths, c2_c3_lr_sweep, c4_cooldown_shapes, c5_cooldown_lengths, c6_swa, c7_schedulefree,
c8_scaling, c9_merge (checkpoint merging, WSM), or all (a scale's own list: the long scale has c4 and c7). A run
trains in-process with train.train into <out_root>/<suite>/<run>/; when it finishes, its config.json and
metrics.jsonl are copied to <results>/<suite>/<run>/ (no checkpoints; the copy appears in one rename, so a result
that exists is complete). A run whose result exists is skipped, and one that was stopped (Ctrl-C, SIGTERM, a
crash) resumes from its latest checkpoint: re-running the command completes the suite. A run from scratch whose
settings equal a result kept by another suite (c8's cpu_tiny cosines are c1's) is copied from it, with a
same_as.txt, not trained again. A run whose loss became non-finite (too high an LR in the C3 grid) is kept as a
result with an error.txt. Branches (cooldowns) start from a checkpoint of their trunk, exactly like branch.py:
the trunk, listed first, keeps its checkpoints at the branch points (keep_ckpt_steps).
Defaults: --results=results and --out_root=out/sweeps at the cpu scale, results_<scale> and out/sweeps_<scale>
at the others, so that the scales never mix. A result or out_dir made with other settings is an error, and so is
one of other data (another fingerprint, lab/shards.py: another Python's stdlib corpus is other data). Two
suites may run at once in two processes (OMP_NUM_THREADS=1 each: on 2 cores, faster than one process of 2
threads for these small models); two processes must not run the same suite.

The estimated time: FLOPs (model.flops_per_token, Chinchilla's count, times the training tokens, plus the
evaluations as forward passes) divided by a rate in FLOP/s, measured at plan time for each model of the plan (the
fastest of 3 training steps), or given with --gflops. It leaves out logging and checkpoints, and a busy machine
makes the measured rate low and the estimate long.
"""

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch

import swa
import train
from lab import checkpoint, parallel, settings
from lab.config import ConfigError, Setting, parse_args, read_json
from lab.data import Dataset, inputs_and_targets
from lab.evaluation import autocast_for
from lab.parallel import setup_device
from lab.progress import SweepProgress
from lab.rundir import start_or_resume
from lab.runs import NOT_WHAT_IT_TRAINS, data_fingerprint
from lab.shards import short
from lab.suites import SCALES, SUITES, merge_windows
from model import GPT, flops_per_token


# ---------------------------------------------------------------------------------------------------------
# the plan: every run's full config and its estimated time

# Keys that say where a run lives or how it started, not what it trains: they may differ between attempts.
WHERE = ("out_dir", "data_dir", "init_from", "overwrite", "device", "compile")


def run_config(scale, suite, run, out_root, data_dir, compile=None, device=None):
    """A run's full config; `compile` and `device` None keep the scale's (the paper scale compiles, the CPU scales do
    not; device auto). They say how a run is computed, not what it trains (WHERE): results compare either way."""
    cfg = {**settings.DEFAULTS, **scale.common, **run.overrides, "out_dir": str(Path(out_root) / suite / run.name)}
    cfg["data_dir"] = data_dir or cfg["data_dir"]
    cfg["compile"] = cfg["compile"] if compile is None else compile
    cfg["device"] = device or cfg["device"]
    return cfg


def estimate_flops(cfg, vocab_size, start=0):
    """Training FLOPs from `start` to max_steps, plus the evaluations (forward passes: a third of a training
    step's FLOPs per token; every eval_interval steps, at the start and at the cooldown's start; twice with SWA)."""
    mconf = settings.model_config(cfg, vocab_size)
    per_token = flops_per_token(mconf, cfg["seq_len"])["chinchilla"]
    steps = cfg["max_steps"] - start
    evals = cfg["max_steps"] // cfg["eval_interval"] - start // cfg["eval_interval"] + 2
    eval_tokens = evals * cfg["eval_tokens"] * (1 + cfg["swa"] + cfg["ema"])
    return per_token * (steps * cfg["batch_size"] * cfg["seq_len"] + eval_tokens / 3)


def measure_flops_per_s(cfg, vocab_size, steps=3):
    """FLOP/s of the fastest of `steps` training steps (after an untimed one) of cfg's model on random tokens: the
    fastest, because another process can slow any one step down."""
    device = setup_device(cfg["device"])
    mconf = settings.model_config(cfg, vocab_size)
    model = GPT(mconf).to(device)
    optimizer = settings.make_optimizer(dict(cfg, optimizer="adamw"), model, device)  # the model's rate, any optimizer
    tokens = torch.randint(0, vocab_size, (cfg["batch_size"], cfg["seq_len"] + 1), device=device)
    autocast = autocast_for(device, getattr(torch, cfg["dtype"]))

    def step():
        with autocast:
            _, loss = model(*inputs_and_targets(tokens))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()  # waits for the device

    step()
    best = math.inf
    for _ in range(steps):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return cfg["batch_size"] * cfg["seq_len"] * flops_per_token(mconf, cfg["seq_len"])["chinchilla"] / best


def duration(seconds):
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{seconds / 60:.1f}m"


def print_plan(entries, scale, rates, source, done=()):
    """entries: (suite, run, cfg); rates: FLOP/s per model; done: the (suite, run name) whose results exist, left
    out of the totals. Prints each run and the totals; returns {(suite, run name): estimated seconds}."""
    print(f"FLOPs: model.flops_per_token (Chinchilla) x tokens, evaluations included; rates ({source}): " +
          ", ".join(f"{model} {rate / 1e9:,.0f} GFLOP/s" for model, rate in rates.items()))
    total_seconds, total_tokens, suite, planned = 0.0, 0, None, {}
    for name, run, cfg in entries:
        if name != suite:
            suite = name
            print(f"{suite}:")
        start = run.branch_step or 0
        tokens = (cfg["max_steps"] - start) * cfg["batch_size"] * cfg["seq_len"]
        seconds = planned[name, run.name] = estimate_flops(cfg, scale.vocab_size, start) / rates[cfg["model"]]
        finished = (name, run.name) in done
        if not finished:
            total_seconds, total_tokens = total_seconds + seconds, total_tokens + tokens
        origin = (f"  (from {run.trunk})" if run.trunk else "") + ("  done" if finished else "")
        print(f"  {run.name:<34} {cfg['model']:>9} steps {start:>6} -> {cfg['max_steps']:<6} "
              f"{tokens / 1e6:9.1f}M tokens {duration(seconds):>8}{origin}")
    print(f"total: {len(entries) - len(done)} runs to do ({len(done)} done), {total_tokens / 1e6:,.1f}M tokens, "
          f"estimated {duration(total_seconds)}")
    return planned


# ---------------------------------------------------------------------------------------------------------
# running: skip what is done, resume what was stopped, publish what finished


class Interrupted(RuntimeError):
    """A run stopped before its last step (a signal): re-running the same command resumes it."""


def differences(planned, recorded, ignored=WHERE):
    return [f"{k}={recorded[k]!r} (planned {planned[k]!r})" for k in planned
            if k not in ignored and k in recorded and recorded[k] != planned[k]]


def check_same_settings(cfg, config_json):
    """A result or out_dir made with other settings (an older suite definition, another scale) must not pass for
    this run: say so rather than skip or resume it."""
    if config_json.exists():
        info = read_json(config_json)
        if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
            raise ConfigError(f"{config_json} is not a train.py config.json: delete it, or use another --results / "
                              f"--out_root")
        differ = differences(cfg, info["config"])
        if differ:
            raise ConfigError(f"{config_json.parent} holds a run with other settings ({', '.join(differ)}): "
                              f"delete it, or use another --results / --out_root")


def publish(out_dir, result_dir, error=None, same_as=None):
    """Copy the logs to result_dir in one rename: a result directory that exists is always complete. `same_as`:
    the logs are another suite's result of the same run (out_dir is that result), named in same_as.txt."""
    partial = result_dir.with_name(result_dir.name + ".partial")  # beside it: a rename within one file system
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy2(out_dir / name, partial / name)
    if error:
        (partial / "error.txt").write_text(error + "\n")
    if same_as:
        (partial / "same_as.txt").write_text(f"{same_as}: the same settings, trained once\n")
    os.replace(partial, result_dir)


def same_result(cfg, results):
    """The finished result (not a diverged one) under `results` of a from-scratch run with cfg's settings, or None:
    a run with exactly these settings trains the same numbers whatever its suite (c8's cpu_tiny cosines are c1's,
    c1's cosine_600 is in c2_c3's grid), so it is copied instead of trained again."""
    for config_json in sorted(Path(results).glob("*/*/config.json")):
        info = read_json(config_json)
        recorded = info.get("config", {})
        if (not (config_json.parent / "error.txt").exists() and info.get("origin") is None  # not a branch
                and "merge" not in info and set(cfg) <= set(recorded)
                and not differences(cfg, recorded, NOT_WHAT_IT_TRAINS)):
            return config_json.parent
    return None


def decide(suite, run, cfg, results, out_root):
    """What to do with one run: 'skip' (its result exists), None (finished: publish it), {'same_as': result} (a
    result of the same run exists in another suite: copy it) or the settings that launch it (resume it, or start
    it, from its trunk for a branch). ConfigError if the folders hold another run."""
    result_dir, out_dir = Path(results) / suite / run.name, Path(cfg["out_dir"])
    check_same_settings(cfg, result_dir / "config.json")
    if result_dir.exists():
        return "skip"
    check_same_settings(cfg, out_dir / "config.json")
    # a trunk is trained even so: its branches need its checkpoints
    if not run.trunk and not cfg["keep_ckpt_steps"] and not out_dir.exists() and (same := same_result(cfg, results)):
        return dict(same_as=str(same))
    source = checkpoint.path_for(Path(out_root) / suite / run.trunk, run.branch_step) if run.trunk else "scratch"
    launch = start_or_resume(out_dir, cfg["max_steps"], source)
    if launch and launch["init_from"] != "resume" and run.trunk and not source.exists():
        raise ConfigError(f"{suite}/{run.name} branches off {run.trunk} at step {run.branch_step}, but "
                          f"{source} does not exist: delete {Path(results) / suite / run.trunk} to re-run the trunk")
    return launch


def execute(suite, run, cfg, results, out_root, procs):
    """Run (or resume, or skip) one run and publish it. Returns its error message if its loss diverged."""
    say = print if procs.master else lambda *args, **kwargs: None
    launch = parallel.decided_by_master(lambda: decide(suite, run, cfg, results, out_root), procs)
    if launch == "skip":
        say(f"{suite}/{run.name}: done, skipped")
        return None
    result_dir, out_dir = Path(results) / suite / run.name, Path(cfg["out_dir"])
    error = None
    if launch and "same_as" in launch:
        say(f"{suite}/{run.name}: the same run as {launch['same_as']}, copied")
        if procs.master:
            publish(Path(launch["same_as"]), result_dir, same_as=launch["same_as"])
        parallel.barrier()
        return None
    if launch:
        cfg = dict(cfg, **launch)
        if procs.master:
            saved = checkpoint.list_checkpoints(out_dir)
            print(f"{suite}/{run.name}: " + (f"resuming from step {saved[-1][0]}" if saved else "starting"), flush=True)
        try:
            if not train.train(cfg):  # a signal stopped it, after a checkpoint
                raise Interrupted(f"{suite}/{run.name} stopped before step {cfg['max_steps']}: run the same command "
                                  f"again to resume")
        except FloatingPointError as e:  # e.g. too high an LR: a finding of the LR sweep, kept as a result
            error = str(e)  # every process finds it at the same step: the losses are averaged before the check
            say(f"{suite}/{run.name}: {error}", flush=True)
    if procs.master:
        publish(out_dir, result_dir, error)
    parallel.barrier()  # the result exists before any process looks at the next run
    return error


MERGES = ("uniform", "linear", "1-sqrt")  # c9_merge's merges: the plain mean (SWA of checkpoints) and two WSM shapes


def merge_trunk(suite, runs, results, out_root, device):
    """After the runs of c9_merge: merge its trunk's checkpoints over each cooldown's window (swa.py --merge) with
    each of MERGES into <results>/<suite>/merge-<shape>/ (skipped when it exists; the merged weights stay in
    <out_root>/<suite>/merge-<shape>/merged_<N>.pt). Its config.json is the trunk's plus `merge` (shape, trunk,
    windows); its metrics.jsonl has one record per window, at the window's last step N: step, tokens, val_loss and
    val_ppl of the merged weights, val_loss_last of the trunk's checkpoint at N, merged_steps and coefficients."""
    trunk_dir = Path(out_root) / suite / runs[0].name
    info = read_json(trunk_dir / "config.json")
    tokens_per_step = info["config"]["batch_size"] * info["config"]["seq_len"]
    for merge in MERGES:
        name = f"merge-{merge}"
        result_dir, out_dir = Path(results) / suite / name, Path(out_root) / suite / name
        if result_dir.exists():
            print(f"{suite}/{name}: done, skipped")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        records = []
        for start, end in merge_windows(runs):
            (out_dir / f"merged_{end}.pt").unlink(missing_ok=True)  # an interrupted merge's own: swa.py keeps files
            merged = swa.main([f"--run={trunk_dir}", f"--merge={merge}", f"--start_step={start}", f"--end_step={end}",
                               f"--out={out_dir / f'merged_{end}.pt'}", f"--device={device}"])
            records.append(dict(step=end, tokens=end * tokens_per_step, val_loss=merged["average"],
                                val_ppl=math.exp(merged["average"]), val_loss_last=merged["last"],
                                merged_steps=merged["steps"], coefficients=merged["coefficients"]))
        merge_info = dict(shape=merge, trunk=str(trunk_dir), windows=merge_windows(runs))
        (out_dir / "config.json").write_text(json.dumps(dict(info, merge=merge_info), indent=2))
        (out_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        publish(out_dir, result_dir)


def check_results_data(folders, data):
    """Every run under the folders (the results and the out_root) read `data` (a lab.data.Dataset): a result kept,
    resumed, branched off or copied never mixes two corpora. One line naming both fingerprints otherwise; runs that
    record none (made before fingerprints were recorded) are taken as this data's, and a note counts them."""
    unknown = 0
    for path in (path for folder in folders for path in sorted(Path(folder).glob("*/*/config.json"))):
        theirs = data_fingerprint(read_json(path))
        unknown += theirs is None
        if theirs not in (None, data.fingerprint):
            raise ConfigError(f"{path.parent} read other data ({short(theirs)}) than data_dir={data.data_dir} holds "
                              f"({short(data.fingerprint)}): give this data its own --results and --out_root")
    if unknown:
        print(f"note: {unknown} runs in {' and '.join(map(str, folders))} record no data fingerprint (made before they "
              f"were recorded): taken as runs on data_dir={data.data_dir} ({short(data.fingerprint)})")


def results_precision(results, cfg, device, vocab_size):
    """precision.Precision of every run of a sweep into `results`, so that no comparison mixes two. A dtype the
    scale sets is kept; 'auto' is the precision of the results already in the folder (the committed cpu-scale
    results are bf16: on a CPU that emulates bf16, new runs there are slow, and the warning says so), else what
    this device computes fastest. A folder that already mixes precisions is an error."""
    recorded = {read_json(path).get("config", {}).get("dtype") for path in Path(results).glob("*/*/config.json")}
    recorded.discard(None)
    if len(recorded) > 1:
        raise ConfigError(f"{results} holds runs in several precisions ({', '.join(sorted(recorded))}): a "
                          f"comparison would mix them; use another --results and --out_root")
    mconf = settings.model_config(cfg, vocab_size)
    chosen = settings.choose_precision(cfg, device, mconf, settings.micro_batching(cfg, world_size=1)[0],
                                    next(iter(recorded), None))
    if recorded and cfg["dtype"] == "auto":
        chosen.rule = f"that of the results in {results}/"
    return chosen


def plan_rates(entries, scale, given_gflops):
    """({model: FLOP/s} for the plan's estimate, where the rates come from)."""
    gflops = given_gflops or scale.gflops
    if gflops:
        return ({cfg["model"]: gflops * 1e9 for _, _, cfg in entries},
                "given" if given_gflops else "assumed for this scale; set --gflops")
    rates = {}  # small models reach fewer FLOP/s than large ones: time each model of the plan once
    for _, _, cfg in entries:
        rates[cfg["model"]] = rates.get(cfg["model"]) or measure_flops_per_s(cfg, scale.vocab_size)
    return rates, "timed just now, per model, the best of 3 training steps; a busy machine makes the estimate pessimistic"


SWEEP_SETTINGS = dict(
    scale=Setting("cpu", f"the runs' scale: {', '.join(SCALES)} (lab/suites.py)"),
    plan=Setting(False, "print every run with its steps, tokens and estimated time, and train nothing"),
    results=Setting(None, "where finished runs' logs go (None: results, results_<scale> at the other scales)",
                    types=(str, type(None))),
    out_root=Setting(None, "where runs train (None: out/sweeps, out/sweeps_<scale>)", types=(str, type(None))),
    data_dir=Setting(None, "the data (None: the scale's)", types=(str, type(None))),
    gflops=Setting(None, "estimate the time at this rate in GFLOP/s (None: time each model of the plan)", "> 0",
                   (float, type(None))),
    compile=Setting(None, "torch.compile every run (None: the scale's choice)", types=(bool, type(None))),
    device=Setting(None, "the runs' device (None: auto)", types=(str, type(None))),
)


def main(argv):
    names = [a for a in argv if not a.startswith("-")]  # options: --key=value, and -h
    opts = parse_args([a for a in argv if a.startswith("-")], SWEEP_SETTINGS)
    if len(names) != 1 or names[0] not in [*SUITES, "all"]:
        raise ConfigError(f"name one suite: {', '.join(SUITES)} or all")
    if opts["scale"] not in SCALES:  # looked up now: a test adds a scale of its own
        raise ConfigError(f"scale={opts['scale']!r}: must be one of {', '.join(SCALES)}")
    scale = SCALES[opts["scale"]]
    suffix = "" if opts["scale"] == "cpu" else f"_{opts['scale']}"  # the scales never share a folder
    results = opts["results"] or f"results{suffix}"
    out_root = opts["out_root"] or f"out/sweeps{suffix}"
    suites = list(scale.suites or SUITES) if names[0] == "all" else names
    entries = [(suite, run, run_config(scale, suite, run, out_root, opts["data_dir"], opts["compile"], opts["device"]))
               for suite in suites for run in SUITES[suite](scale)]

    procs = parallel.Processes.from_env()
    device = parallel.setup_device(entries[0][2]["device"], procs)
    dtype = None
    if procs.master:  # the other processes neither look at the results, nor time or print the plan
        chosen = results_precision(results, entries[0][2], device, scale.vocab_size)
        dtype = chosen.dtype
        entries = [(suite, run, dict(cfg, dtype=dtype)) for suite, run, cfg in entries]
        done = {(suite, run.name) for suite, run, _ in entries if (Path(results) / suite / run.name).exists()}
        print(f"scale {opts['scale']}: {results}/<suite>/<run>/ from {out_root}/<suite>/<run>/")
        print(f"precision: {dtype} ({chosen.requested}: {chosen.rule}); torch.compile "
              + ("on" if entries[0][2]["compile"] else "off"))
        if chosen.warning:
            print(f"warning: {chosen.warning}; to run the whole scale in float32 instead, give it folders of its "
                  f"own: --results={results}_fp32 --out_root={out_root}_fp32")
        planned = print_plan(entries, scale, *plan_rates(entries, scale, opts["gflops"]), done)
    if opts["plan"]:
        return entries

    data = Dataset(entries[0][2]["data_dir"])  # a missing dataset fails now, not after the first runs
    # under torchrun, one process group for the whole suite: each run's train.train joins it
    owned = parallel.init(procs, device, entries[0][2]["dist_timeout_s"])
    parallel.decided_by_master(lambda: check_results_data([results, out_root], data), procs)
    dtype = parallel.from_master(dtype)  # rank 0 looked at the results: every process runs in its precision
    entries = [(suite, run, dict(cfg, dtype=dtype)) for suite, run, cfg in entries]
    started = time.perf_counter()
    sweep = SweepProgress(planned, done) if procs.master else None  # rank 0 made the plan and prints
    diverged = []
    for suite, run, cfg in entries:
        if sweep:
            print(sweep.line(), flush=True)
        if execute(suite, run, cfg, results, out_root, procs):
            diverged.append(f"{suite}/{run.name}")
        if sweep:
            sweep.finished((suite, run.name))
    parallel.shutdown(owned)
    if procs.master and "c9_merge" in suites:  # merging needs the trunk's checkpoints only, no training
        merge_trunk("c9_merge", SUITES["c9_merge"](scale), results, out_root, entries[0][2]["device"])
    if procs.master:
        print(sweep.line())
        print(f"all {len(entries)} runs done in {duration(time.perf_counter() - started)}; results in {results}/"
              + (f"; diverged (kept with error.txt): {', '.join(diverged)}" if diverged else ""))
    return entries


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:], (*settings.USER_ERRORS, Interrupted))
