"""
What a lost process costs a torchrun job: the seconds from a killed rank to training again, and what a checkpoint
interval costs against the work redone. At the 124M shape (GPT-2 vocabulary) on 3 CPU processes by default.

    python prepare_data.py --dataset=stdlib                      # once: data/stdlib-gpt2, GPT-2 tokens
    python -m bench.restart                                      # 124M, 3 CPU processes: a few minutes on 2 cores
    python -m bench.restart --model=cpu_tiny --data_dir=data/stdlib-bytes     # the same in a minute
    python -m bench.restart --device=cuda --nproc=8 --dtype=bfloat16 --seq_len=512 --batch_size=400
                                               # a node of 8 GPUs (not run yet: written on a machine without one)

It runs `torchrun --standalone --nproc_per_node=N --max-restarts=1 train.py ... --init_from=auto` (gloo on the
CPU), lets it write its first checkpoint (at step ckpt_steps), kills rank 1 with SIGKILL kill_after steps later, and
times rank 0's lines as they come. Measured: a step (train.py's tokens/s, which leaves checkpoints out), the
checkpoint's write (the gap between the lines around it, less a step) and its size; then from the kill: the other
processes give up (their one-line errors), the restarted job trains again (its start line, printed once the
checkpoint is read), its first step, and the step where it was killed reached again: the time lost, the restart
plus the kill_after steps redone. From these, for checkpoint intervals of I steps: the share of the training time
spent writing checkpoints, the time a failure costs on average (the restart plus I/2 steps redone), and the
interval that wastes least for a mean time between failures (Young's, sqrt(2 * write * MTBF)). No CPU matmul probe
runs at a start (peak_tflops given, dtype given): as on a GPU, whose peak is a table's.
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lab import checkpoint
from lab.config import ConfigError, Setting, parse_args
from lab.settings import run_script

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(
    model=Setting("124m", "the model preset trained"),
    data_dir=Setting("data/stdlib-gpt2", "a prepared dataset (GPT-2 tokens for the 124M shape)"),
    device=Setting("cpu", "the processes' device"),
    dtype=Setting("float32", "the precision (given: no CPU matmul probe at a start)"),
    nproc=Setting(3, "torchrun's processes", ">= 2"),
    seq_len=Setting(128, "tokens per sequence", ">= 1"),
    batch_size=Setting(3, "sequences per step, all processes together", ">= 1"),
    ckpt_steps=Setting(3, "the checkpoint interval: rank 1 is killed after the first checkpoint", ">= 1"),
    kill_after=Setting(2, "steps after that checkpoint when rank 1 is killed", ">= 1"),
    timeout_s=Setting(1200, "the whole job's time limit", "> 0", (int, float)),
)
INTERVALS = (25, 100, 250, 1000, 2500)  # steps between checkpoints, in the table
MTBF_HOURS = (1, 24, 168)  # mean times between failures of the whole job: an hour, a day, a week


def command(cfg, out_dir):
    """torchrun over train.py: a constant LR, a checkpoint every ckpt_steps, one log line per step, and an evaluation
    of one window per process at the start (the one a restart skips) and at the end only."""
    steps = cfg["ckpt_steps"] + 2 * cfg["kill_after"] + 1
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg['nproc']}",
            "--max-restarts=1", str(REPO / "train.py"), f"--model={cfg['model']}", f"--data_dir={cfg['data_dir']}",
            f"--device={cfg['device']}", f"--dtype={cfg['dtype']}", f"--seq_len={cfg['seq_len']}",
            f"--batch_size={cfg['batch_size']}", f"--max_steps={steps}", f"--ckpt_interval={cfg['ckpt_steps']}",
            "--schedule=constant", "--warmup_steps=1", "--log_interval=1", f"--eval_interval={steps}",
            f"--eval_tokens={cfg['nproc'] * cfg['seq_len']}", "--eval_batch_size=1", "--peak_tflops=100",
            f"--out_dir={out_dir}", "--init_from=auto"]


def worker_pid(agent, rank, round_=0):
    """The pid of the process of `rank` that torchrun's agent (pid `agent`) started in round `round_` of its
    restarts, or None."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):  # not a process, or one that ended meanwhile
            continue
        if int(fields[1]) == agent and {f"RANK={rank}".encode(),
                                        f"TORCHELASTIC_RESTART_COUNT={round_}".encode()} <= set(environ):
            return int(entry.name)
    return None


def stamped(stream, lines):
    """Append (seconds, line) to `lines` for each line of `stream`, as it comes."""
    for line in stream:
        lines.append((time.monotonic(), line.rstrip("\n")))


def step_times(lines, step):
    """When rank 0 printed the record of `step`, in order (twice for a step redone after the restart)."""
    return [t for t, line in lines if re.match(rf"step {step}/\d+: ", line)]


def run_and_kill(cfg, out_dir):
    """Run the job, kill rank 1 once the record of step ckpt_steps + kill_after is printed. Returns its stdout and
    stderr lines, each with when it came, and when it was launched, killed and restarted (torchrun's new processes
    seen)."""
    launched = time.monotonic()
    job = subprocess.Popen(command(cfg, out_dir), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS=str(max(1, os.cpu_count() // cfg["nproc"]))))
    out, err = [], []
    readers = [threading.Thread(target=stamped, args=(stream, lines)) for stream, lines in ((job.stdout, out),
                                                                                            (job.stderr, err))]
    for reader in readers:
        reader.start()
    deadline, kill_step = time.monotonic() + cfg["timeout_s"], cfg["ckpt_steps"] + cfg["kill_after"]
    killed = respawned = None
    while job.poll() is None and time.monotonic() < deadline:
        victim = worker_pid(job.pid, 1) if killed is None and step_times(out, kill_step) else None
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
        if killed is not None and respawned is None and worker_pid(job.pid, 0, round_=1):
            respawned = time.monotonic()
        time.sleep(0.05)
    if job.poll() is None:
        job.kill()
    job.wait()
    for reader in readers:
        reader.join()
    if job.returncode != 0 or respawned is None:
        raise ConfigError(f"the job failed (exit {job.returncode}, killed: {killed is not None}, restarted: "
                          f"{respawned is not None}): " + " | ".join(line for _, line in err[-5:]))
    return out, err, dict(launched=launched, killed=killed, respawned=respawned)


def timeline(cfg, out, err, times, records):
    """The figures of one run (seconds), from its stamped lines, run_and_kill's times and metrics.jsonl's records."""
    seconds = sorted(cfg["batch_size"] * cfg["seq_len"] / r["tokens_per_s"] for r in records if "tokens_per_s" in r)
    step_s = seconds[len(seconds) // 2]  # the median: other load only slows a step
    ckpt, kill_step, killed = cfg["ckpt_steps"], cfg["ckpt_steps"] + cfg["kill_after"], times["killed"]
    # each start prints its first line once set up, just before it trains
    starts = [t for t, line in out if line.startswith("device ")]
    restarted = next(t for t in starts if t > killed)
    stopped = [t for t, line in err if line.startswith("error:") and t > killed]
    return dict(step_s=step_s, write_s=step_times(out, ckpt + 1)[0] - step_times(out, ckpt)[0] - step_s,
                first_start_s=starts[0] - times["launched"], others_stopped_s=max(stopped, default=math.nan) - killed,
                respawned_s=times["respawned"] - killed, training_again_s=restarted - killed,
                first_step_s=step_times(out, ckpt + 1)[-1] - killed, lost_s=step_times(out, kill_step)[-1] - killed,
                redone_steps=cfg["kill_after"])


def interval_costs(step_s, write_s, restart_s, intervals=INTERVALS, mtbf_hours=MTBF_HOURS):
    """For a checkpoint every I steps: (I, the share of training time spent writing checkpoints, the seconds a
    failure costs on average: the restart and I/2 steps redone); and the interval of least waste for each mean
    time between failures, Young's sqrt(2 * write * MTBF) of training time, in steps."""
    rows = [(i, write_s / (i * step_s), restart_s + i / 2 * step_s) for i in intervals]
    best = {h: math.sqrt(2 * write_s * h * 3600) / step_s for h in mtbf_hours}
    return rows, best


def report(cfg, figures, size_gb):
    lines = [f"{cfg['model']} on {cfg['nproc']} processes ({cfg['device']}, {cfg['dtype']}), {cfg['batch_size']} x "
             f"{cfg['seq_len']} tokens a step; checkpoint {size_gb:.2f} GB",
             f"step {figures['step_s']:.2f} s, checkpoint write {figures['write_s']:.2f} s; the first start trained "
             f"{figures['first_start_s']:.2f} s after its launch (no checkpoint to read)",
             f"after the kill of rank 1, {figures['redone_steps']} steps after the checkpoint:",
             f"  the others gave up          {figures['others_stopped_s']:7.2f} s",
             f"  torchrun started them again {figures['respawned_s']:7.2f} s",
             f"  training again (restarted)  {figures['training_again_s']:7.2f} s (set up, the checkpoint read)",
             f"  first step done             {figures['first_step_s']:7.2f} s",
             f"  back where it was killed    {figures['lost_s']:7.2f} s (the time lost: restart + steps redone)",
             "checkpoint every    writing share   a failure costs (restart + half an interval redone)"]
    rows, best = interval_costs(figures["step_s"], figures["write_s"], figures["training_again_s"])
    lines += [f"  {i:6d} steps    {share:10.2%}      {lost:10.0f} s" for i, share, lost in rows]
    lines.append("least waste (Young): " + ", ".join(f"every {steps:.0f} steps for a failure every {h} h"
                                                     for h, steps in best.items()))
    return "\n".join(lines)


def main(argv):
    cfg = parse_args(argv, SETTINGS)
    if not (REPO / cfg["data_dir"] / "meta.json").exists() and not (Path(cfg["data_dir"]) / "meta.json").exists():
        raise ConfigError(f"data_dir={cfg['data_dir']} holds no prepared dataset: python prepare_data.py "
                          f"--dataset=stdlib (GPT-2 tokens) or --tokenizer=bytes, then --data_dir=data/stdlib-bytes")
    out_dir = Path(tempfile.mkdtemp(prefix="bench_restart_")) / "run"
    try:
        out, err, times = run_and_kill(cfg, out_dir)
        records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
        last = checkpoint.list_checkpoints(out_dir)[-1][1]  # every checkpoint of a run is the same size
        size = sum(f.stat().st_size for f in last.rglob("*") if f.is_file())
        print(report(cfg, timeline(cfg, out, err, times, records), size / 1e9))
    finally:
        shutil.rmtree(out_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    run_script(main, sys.argv[1:])
