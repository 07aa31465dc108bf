"""
Our train.py against karpathy/nanoGPT at the same shape, side by side on this machine's CPU or GPU.

    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT                  # default settings on both sides, CPU
    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT --isa=avx2       # as on a CPU without AVX-512 (see below)
    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT --ours="--dtype=float32 --compile=False"
    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT --isa=avx2 --profile=True   # where each step's time goes
    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT --device=cuda    # 124M, 50 x 512, compiled bf16, one GPU
    python -m bench.nanogpt --nanogpt=/path/to/nanoGPT --device=cuda --ours="--fused_loss=liger"   # with a lever

--device=cuda compares at the paper's 124M shape (12 layers, 12 heads, width 768, 50 sequences of 512 per step,
GPT-2 tokens from data/stdlib-gpt2: python prepare_data.py --dataset=stdlib), both compiled in bf16: ours is
train.py with configs/124m_cooldown.py at one micro-step of 50, nanoGPT's is its own bench.py, unchanged
(`--real_data=False --batch_size=50 --block_size=512 --compile=True`, the reference of docs/performance.md: 520k
tokens/s on an H200), which times a bare training loop after its burn-in; ours is the whole loop, data and logging
included.

nanoGPT is not part of this repository: pass a checkout of it (git clone https://github.com/karpathy/nanoGPT).
Its train.py, model.py and configurator.py are copied to a temporary folder with our prepared bytes corpus as
its data/stdlib/{train,val}.bin (a one-shard split of prepare_data.py is byte for byte a nanoGPT .bin), and run
there unchanged. The shape is nanoGPT's "baby" CPU size: 4 layers, 4 heads, width 128, sequences of 256, 16
sequences a step, the byte vocabulary; our SwiGLU's hidden size is 352 so that its three matrices hold about
as many weights as nanoGPT's two of 4 x 128. The two alternate (ours, nanoGPT, ours, ...) `pairs` times, so
that load from elsewhere falls on both alike; each run's speed is the median tokens/s of its steps after the
first `skip` (ours from metrics.jsonl, logged every step; nanoGPT from its "iter N: ... time X ms" lines), and
the ratio is taken within each pair.

--isa=avx2 runs both as on a CPU whose best vector instructions are AVX2 (most laptops and many cloud VMs):
ATEN_CPU_CAPABILITY=avx2 makes PyTorch's own kernels use AVX2 and ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN's
matmuls from AVX-512 and its bf16 instructions, so bf16 is emulated as it is on such a CPU.

--profile=True compares the two models instead of the two programs: both in one process, in fp32, on the same
random batch, each training step (forward, backward, clipping, AdamW) timed in alternating turns and then
profiled (torch.profiler), printing milliseconds per step by operator side by side.
"""

import importlib.util
import json
import os
import pickle
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import profile

from lab.config import ConfigError, Setting, parse_args
from lab.data import Dataset
from model import GPT, GPTConfig, padded_vocab_size

SHAPE = dict(n_layer=4, n_head=4, n_embd=128, seq_len=256, batch_size=16)  # the CPU's
GPU_SHAPE = dict(n_layer=12, n_head=12, n_embd=768, seq_len=512, batch_size=50)  # the paper's 124M at 50 x 512
DATA_DIRS = {"cpu": "data/stdlib-bytes", "cuda": "data/stdlib-gpt2"}
NANOGPT_BENCH_TIME = re.compile(r"^time per iteration: ([\d.]+)ms")
# inductor's cache of compiled C++ kernels does not tell AVX2 builds from AVX-512 ones (PyTorch 2.13): a compiled run
# that loads the other ISA's kernels corrupts memory and aborts. --isa=avx2 keeps a cache folder of its own.
ISA_ENV = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                  "TORCHINDUCTOR_CACHE_DIR": str(Path(tempfile.gettempdir()) / "torchinductor_avx2")}}
REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(
    nanogpt=Setting("", "a checkout of karpathy/nanoGPT"),
    device=Setting("cpu", "cpu: nanoGPT's baby shape, in fp32; cuda: the paper's 124M, compiled bf16",
                   tuple(DATA_DIRS)),
    data_dir=Setting(None, "the prepared data (None: data/stdlib-bytes on cpu, data/stdlib-gpt2 on cuda)",
                     types=(str, type(None))),
    pairs=Setting(2, "runs of each, taking turns", ">= 1"),
    steps=Setting(40, "steps of each run", ">= 2"),
    skip=Setting(5, "steps left out of each run's median (the warm-up)", ">= 0"),
    isa=Setting("native", "native, or avx2: as on a CPU without AVX-512", tuple(ISA_ENV)),
    ours=Setting("", "more train.py settings for our side, e.g. \"--dtype=float32\""),
    profile=Setting(False, "compare the two models operator by operator instead (one process, fp32)"),
    turns=Setting(6, "--profile: timed turns of each model", ">= 1"),
    top_ops=Setting(12, "--profile: the operators shown", ">= 1"),
)
NANOGPT_STEP = re.compile(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms")


def nanogpt_folder(checkout, data_dir, work):
    """A copy of nanoGPT's three training files in `work`, reading our prepared corpus as its dataset 'stdlib'."""
    checkout = Path(checkout)
    missing = [name for name in ("train.py", "model.py", "configurator.py") if not (checkout / name).is_file()]
    if missing:
        raise ConfigError(f"--nanogpt={checkout} is not a nanoGPT checkout (no {', '.join(missing)})")
    for name in ("train.py", "model.py", "configurator.py"):
        shutil.copy(checkout / name, work / name)
    data = Dataset(data_dir)
    dataset = work / "data" / "stdlib"
    dataset.mkdir(parents=True)
    for split in ("train", "val"):
        shards = sorted(Path(data_dir).glob(f"{split}_*.bin"))
        if len(shards) != 1:
            raise ConfigError(f"{data_dir} has {len(shards)} {split} shards; nanoGPT reads one .bin per split")
        (dataset / f"{split}.bin").symlink_to(shards[0].resolve())
    with open(dataset / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": data.vocab_size}, f)
    return work


def nanogpt_command(cfg):
    s = SHAPE
    return [sys.executable, "train.py", "--dataset=stdlib", "--device=cpu", "--compile=False", "--dtype=float32",
            f"--n_layer={s['n_layer']}", f"--n_head={s['n_head']}", f"--n_embd={s['n_embd']}",
            f"--block_size={s['seq_len']}", f"--batch_size={s['batch_size']}", "--gradient_accumulation_steps=1",
            f"--max_iters={cfg['steps']}", "--lr_decay_iters=2000", "--eval_interval=100000", "--eval_iters=1",
            "--log_interval=1", "--dropout=0.0", "--always_save_checkpoint=False", "--out_dir=out"]


def nanogpt_gpu_command():
    s = GPU_SHAPE
    return [sys.executable, "bench.py", "--real_data=False", f"--batch_size={s['batch_size']}",
            f"--block_size={s['seq_len']}", "--compile=True"]


def our_gpu_command(cfg, out_dir):
    s = GPU_SHAPE
    return [sys.executable, str(REPO / "train.py"), "configs/124m_cooldown.py", "--device=cuda",
            f"--data_dir={cfg['data_dir']}", f"--out_dir={out_dir}", "--overwrite=True", "--schedule=constant",
            f"--batch_size={s['batch_size']}", f"--micro_batch_size={s['batch_size']}", f"--max_steps={cfg['steps']}",
            "--warmup_steps=5", "--log_interval=5", f"--eval_tokens={s['batch_size'] * s['seq_len']}",
            "--eval_interval=100000", "--ckpt_interval=100000", *shlex.split(cfg["ours"])]


def our_command(cfg, out_dir):
    s = SHAPE
    return [sys.executable, str(REPO / "train.py"), "configs/cpu_tiny.py", "--device=cpu",
            f"--data_dir={cfg['data_dir']}", f"--out_dir={out_dir}", "--overwrite=True",
            f"--n_layer={s['n_layer']}", f"--n_head={s['n_head']}", f"--n_embd={s['n_embd']}", "--ffw_size=352",
            f"--seq_len={s['seq_len']}", f"--batch_size={s['batch_size']}", f"--max_steps={cfg['steps']}",
            "--warmup_steps=5", "--log_interval=1", "--eval_interval=100000", "--ckpt_interval=100000",
            *shlex.split(cfg["ours"])]


def run(command, cwd, env):
    """(stdout, wall seconds) of a command that must succeed."""
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise ConfigError(f"{' '.join(command[:3])} ... failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    return done.stdout, time.perf_counter() - t0


def our_speed(out_dir, skip):
    records = [json.loads(l) for l in (Path(out_dir) / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return statistics.median(r["tokens_per_s"] for r in records if "tokens_per_s" in r and r["step"] > skip)


def nanogpt_gpu_speed(stdout):
    """Tokens/s of nanoGPT's bench.py: its own timing of the steps after its burn-in."""
    times = [float(m.group(1)) for line in stdout.splitlines() if (m := NANOGPT_BENCH_TIME.match(line))]
    if not times:
        raise ConfigError("nanoGPT's bench.py printed no 'time per iteration: X ms' line: another version?")
    return GPU_SHAPE["batch_size"] * GPU_SHAPE["seq_len"] / (times[-1] / 1e3)


def nanogpt_speed(stdout, skip):
    tokens = SHAPE["batch_size"] * SHAPE["seq_len"]
    times = [float(m.group(2)) for line in stdout.splitlines()
             if (m := NANOGPT_STEP.match(line)) and int(m.group(1)) > skip]
    if not times:
        raise ConfigError("nanoGPT's output has no 'iter N: ... time X ms' lines: another version of its train.py?")
    return statistics.median(tokens / (t / 1e3) for t in times)


def both_models(checkout, vocab_size):
    """(ours, nanoGPT's) models at SHAPE with the same initialisation seed; nanoGPT's from its checkout's model.py,
    with bias=False as its train.py sets."""
    path = Path(checkout) / "model.py"
    if not path.is_file():
        raise ConfigError(f"--nanogpt={checkout} is not a nanoGPT checkout (no model.py)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
    s = SHAPE
    shape = dict(n_layer=s["n_layer"], n_head=s["n_head"], n_embd=s["n_embd"], block_size=s["seq_len"])
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=padded_vocab_size(vocab_size), ffw_size=352, **shape))
    torch.manual_seed(0)
    return ours, theirs.GPT(theirs.GPTConfig(vocab_size=vocab_size, dropout=0.0, bias=False, **shape))


def profile_models(cfg):
    """Milliseconds per training step of both models, then per operator (the profiler's self time)."""
    torch.set_flush_denormal(True)  # as train.py (parallel.setup_device) does on a CPU
    vocab_size = Dataset(cfg["data_dir"]).vocab_size
    models = dict(zip(("ours", "nanoGPT"), both_models(cfg["nanogpt"], vocab_size)))
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, vocab_size, (2, SHAPE["batch_size"], SHAPE["seq_len"]), generator=generator)

    def steps(name, n):
        for _ in range(n):
            _, loss = models[name](x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(models[name].parameters(), 1.0)
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

    times = {name: [] for name in models}
    for turn in range(cfg["turns"] + 1):  # the first turn warms up, untimed
        for name in models:
            t0 = time.perf_counter()
            steps(name, 3)
            if turn:
                times[name].append((time.perf_counter() - t0) / 3 * 1e3)
    print(f"shape {SHAPE}, fp32, isa {cfg['isa']}: ms per step (fastest / median of {cfg['turns']} turns of 3): "
          + ", ".join(f"{n} {min(t):.0f} / {statistics.median(t):.0f}" for n, t in times.items()), flush=True)
    per_op = {}
    for name in models:
        with profile() as prof:
            steps(name, 6)
        per_op[name] = {e.key: e.self_cpu_time_total / 6e3 for e in prof.key_averages()}  # us over 6 steps -> ms
    top = sorted(set().union(*per_op.values()), key=lambda k: -max(p.get(k, 0.0) for p in per_op.values()))
    print(f"{'operator (self time)':55} {'ours':>8} {'nanoGPT':>8}  ms/step")
    for key in top[:cfg["top_ops"]]:
        print(f"{key[:55]:55} " + " ".join(f"{p.get(key, 0.0):8.1f}" for p in per_op.values()))
    print(f"{'all':55} " + " ".join(f"{sum(p.values()):8.1f}" for p in per_op.values()))


def main(argv):
    cfg = parse_args(argv, SETTINGS)
    if not cfg["nanogpt"]:
        raise ConfigError("pass --nanogpt=<a checkout of karpathy/nanoGPT>")
    if cfg["skip"] >= cfg["steps"]:
        raise ConfigError(f"skip={cfg['skip']} leaves none of the steps={cfg['steps']} to time")
    cfg["data_dir"] = cfg["data_dir"] or DATA_DIRS[cfg["device"]]
    env = dict(os.environ, **ISA_ENV[cfg["isa"]])
    if cfg["device"] == "cuda":
        return compare_on_gpu(cfg, env)
    if cfg["profile"]:
        if ISA_ENV[cfg["isa"]].items() <= os.environ.items():
            return profile_models(cfg)
        # PyTorch reads the ISA variables when it loads: profile in a process that starts under them
        sys.exit(subprocess.run([sys.executable, "-m", "bench.nanogpt", *argv], env=env, cwd=REPO).returncode)
    with tempfile.TemporaryDirectory() as tmp:
        work = nanogpt_folder(cfg["nanogpt"], cfg["data_dir"], Path(tmp))
        print(f"shape {SHAPE}, {cfg['steps']} steps, median tokens/s of steps {cfg['skip'] + 1}-{cfg['steps']}, "
              f"isa {cfg['isa']}; ours: {' '.join(our_command(cfg, 'OUT')[2:])}", flush=True)
        ratios = []
        for pair in range(cfg["pairs"]):
            out, ours_wall = run(our_command(cfg, Path(tmp) / "ours"), REPO, env)
            ours = our_speed(Path(tmp) / "ours", cfg["skip"])
            start_line = next((l for l in out.splitlines() if l.startswith("device ")), "")
            stdout, theirs_wall = run(nanogpt_command(cfg), work, env)
            theirs = nanogpt_speed(stdout, cfg["skip"])
            ratios.append(ours / theirs)
            print(f"pair {pair + 1}: ours {ours:,.0f} tokens/s ({ours_wall:.1f} s wall), nanoGPT {theirs:,.0f} "
                  f"tokens/s ({theirs_wall:.1f} s wall): {ours / theirs:.2f}x", flush=True)
            if pair == 0:
                print(f"  ours: {start_line}", flush=True)
        print(f"ours / nanoGPT: {statistics.median(ratios):.2f}x (median of {len(ratios)} pairs)")


def compare_on_gpu(cfg, env):
    """Ours and nanoGPT's bench.py in turns, `pairs` times; the ratio within each pair, their median."""
    if not (Path(cfg["nanogpt"]) / "bench.py").is_file():
        raise ConfigError(f"--nanogpt={cfg['nanogpt']} is not a nanoGPT checkout (no bench.py)")
    Dataset(cfg["data_dir"])  # prepared? (python prepare_data.py --dataset=stdlib)
    print(f"shape {GPU_SHAPE} on {torch.cuda.get_device_name()}, compiled bf16; ours: median tokens/s of steps "
          f"{cfg['skip'] + 1}-{cfg['steps']} of train.py {' '.join(our_gpu_command(cfg, 'OUT')[2:])}; nanoGPT: "
          f"{' '.join(nanogpt_gpu_command()[1:])}", flush=True)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(cfg["pairs"]):
            out, ours_wall = run(our_gpu_command(cfg, Path(tmp) / "ours"), REPO, env)
            ours = our_speed(Path(tmp) / "ours", cfg["skip"])
            stdout, theirs_wall = run(nanogpt_gpu_command(), cfg["nanogpt"], env)
            theirs = nanogpt_gpu_speed(stdout)
            ratios.append(ours / theirs)
            print(f"pair {pair + 1}: ours {ours:,.0f} tokens/s ({ours_wall:.1f} s wall), nanoGPT {theirs:,.0f} "
                  f"tokens/s ({theirs_wall:.1f} s wall): {ours / theirs:.2f}x", flush=True)
    print(f"ours / nanoGPT: {statistics.median(ratios):.2f}x (median of {len(ratios)} pairs)")
    return statistics.median(ratios)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConfigError as e:
        from lab.config import fail
        fail(str(e))
