"""Synthetic logs shaped like train.py's (config.json and metrics.jsonl), for the tests of plot.py, lab/runs.py and
lab/summary.py: losses that follow a known law, so the figures and the numbers can be checked; and in-memory runs
for the loss laws' tests (loaded_run)."""
import itertools
import json
import math

import numpy as np

from lab import laws
from lab.settings import DEFAULTS
from model import GPTConfig, flops_per_token
from schedules import lr_multiplier, schedule_args

SUITES = ("c1_cosine_lengths", "c2_c3_lr_sweep", "c4_cooldown_shapes", "c5_cooldown_lengths", "c6_swa",
          "c7_schedulefree", "c8_scaling", "c9_merge")
MERGED_LOSSES = {"uniform": {200: 1.60, 400: 1.50}, "linear": {200: 1.55, 400: 1.45}, "1-sqrt": {200: 1.56, 400: 1.44}}

SEQ_LEN, BATCH = 64, 8


def synthetic_losses(cfg, non_embedding_params):
    """Validation loss after each step 0..max_steps: falls with N and with the LR-weighted tokens seen, carries
    a noise term proportional to the recent LR that a cooldown (or averaging) removes, a penalty for leaving
    the best LR (2e-3 for cosine, 1e-3 otherwise), and an offset of the seeds. Returns (losses, noise terms,
    LR multipliers)."""
    multiplier = np.array([lr_multiplier(s, **schedule_args(cfg)) for s in range(cfg["max_steps"])])
    best_lr = 2e-3 if cfg["schedule"] == "cosine" else 1e-3
    progress = np.concatenate([[0], np.cumsum(multiplier)]) * BATCH * SEQ_LEN
    recent = np.array([multiplier[max(0, s - 20):s].mean() if s else 1.0 for s in range(cfg["max_steps"] + 1)])
    noise = 0.5 * recent * cfg["lr"] / best_lr * (0.5 if cfg["optimizer"] == "adamw_schedulefree" else 1.0)
    loss = 1.0 + 30 / non_embedding_params**0.3 + 15 / (progress + 1e4) ** 0.25 + noise \
        + 0.1 * math.log2(cfg["lr"] / best_lr) ** 2 + seed_offset(cfg)
    return loss, noise, multiplier


def seed_offset(cfg):
    """A run's own noise, fixed by its seeds: the same for every setting at those seeds, as a shared trunk's."""
    data_seed = cfg["seed"] if cfg.get("data_seed") is None else cfg["data_seed"]
    return 0.004 * (cfg["seed"] % 5 + 2 * (data_seed % 3))


def write_run(results, suite, name, origin=None, size=(2, 64), **settings):
    """<results>/<suite>/<name>/{config.json, metrics.jsonl} as train.py writes them; returns the run's out_dir."""
    n_layer, n_embd = size
    cfg = dict(DEFAULTS, out_dir=f"out/sweeps/{suite}/{name}", batch_size=BATCH, seq_len=SEQ_LEN,
               warmup_steps=20, eval_interval=50, log_interval=25, n_layer=n_layer, n_embd=n_embd, n_head=2,
               ffw_size=2 * n_embd, **settings)
    model_config = GPTConfig(vocab_size=320, block_size=SEQ_LEN, n_layer=n_layer, n_head=2, n_embd=n_embd,
                             ffw_size=2 * n_embd)
    flops = flops_per_token(model_config, SEQ_LEN)
    info = dict(config=cfg, origin=origin, world_size=1, device="cpu", model_config=model_config.__dict__,
                params=flops["six_n"] // 6 + 320 * n_embd, flops_per_token=flops, vocab_size=257, tokenizer="bytes")
    loss, noise, multiplier = synthetic_losses(cfg, flops["six_n"] / 6)
    start = origin["step"] if origin else 0

    def val(step):
        record = dict(val_loss=loss[step], val_ppl=math.exp(loss[step]))
        if cfg["swa"] and step >= cfg["swa_window"]:
            record["val_loss_swa"] = loss[step] - 0.7 * noise[step]
        return record

    records = [dict(step=start, tokens=start * BATCH * SEQ_LEN, **({"origin": origin} if origin else {}),
                    **val(start), elapsed_s=0.0)]
    for step in range(start + 1, cfg["max_steps"] + 1):
        if step % cfg["log_interval"] == 0 or step == cfg["max_steps"]:
            records.append(dict(step=step, tokens=step * BATCH * SEQ_LEN, lr=cfg["lr"] * multiplier[step - 1],
                                train_loss=loss[step] + 0.02, tokens_per_s=1e4, mfu=None, elapsed_s=step / 10))
            if step % cfg["eval_interval"] == 0 or step == cfg["max_steps"]:
                records[-1].update(val(step))
    folder = results / suite / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(info, indent=2))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return cfg["out_dir"]


def write_merge(results, shape, losses):
    """A merge of a trunk's checkpoints as sweep.merge_trunk writes it: the trunk's config.json plus `merge`, and one
    record per cooldown window, at its last step."""
    write_run(results, "c9_merge", f"merge-{shape}", schedule="constant", max_steps=400, lr=1e-3, swa=True,
              swa_window=100)
    folder = results / "c9_merge" / f"merge-{shape}"
    info = json.loads((folder / "config.json").read_text())
    info["merge"] = dict(shape=shape, trunk="out/sweeps/c9_merge/run0", windows=[[160, 200], [320, 400]])
    (folder / "config.json").write_text(json.dumps(info))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(dict(
        step=n, val_loss=loss, merged_steps=[n - 40, n - 20, n], coefficients=[0.2, 0.5, 0.3])) + "\n"
        for n, loss in losses.items()))


def write_suites(results, suites=SUITES, seeds=(1337,)):
    """A small version of every suite, the claims that need seeds (c2_c3, c4, c7) at each of `seeds`. Folder
    names say nothing: plot.py must read the configs."""
    names = (f"run{i}" for i in itertools.count())

    def run(suite, **settings):
        return write_run(results, suite, next(names), **settings) if suite in suites else None

    def branches(suite, trunk, lengths, cooldown_steps, **settings):
        for length, steps in zip(lengths, cooldown_steps):
            origin = dict(checkpoint=f"{trunk}/ckpt_{length - steps:07d}.pt", out_dir=trunk, step=length - steps)
            run(suite, schedule="wsd", max_steps=length, cooldown_steps=steps, origin=origin, **settings)

    for max_steps, cycle in [(200, None), (400, None), (400, 200), (200, 400)]:
        run("c1_cosine_lengths", schedule="cosine", max_steps=max_steps, cycle_steps=cycle)
    for lr, seed in itertools.product((1e-3, 2e-3, 4e-3), seeds):
        run("c2_c3_lr_sweep", schedule="cosine", max_steps=200, lr=lr, seed=seed)
        for shape in ("linear", "1-sqrt"):
            run("c2_c3_lr_sweep", schedule="wsd", cooldown_shape=shape, max_steps=200, lr=lr / 2, seed=seed)
    for max_steps, shape, seed in itertools.product((200, 400), ("linear", "1-sqrt", "cosine", "square", "1-x^0.7"),
                                                    seeds):
        run("c4_cooldown_shapes", schedule="wsd", cooldown_shape=shape, max_steps=max_steps, lr=1e-3, seed=seed)
    trunk = run("c5_cooldown_lengths", schedule="constant", max_steps=380, lr=1e-3)
    branches("c5_cooldown_lengths", trunk, [400] * 4, [20, 40, 80, 160], lr=1e-3)
    run("c5_cooldown_lengths", schedule="cosine", max_steps=400)
    run("c6_swa", schedule="cosine", max_steps=400, swa=True, swa_window=100)  # the rest of C6 is c9's
    for betas, seed in itertools.product(((0.9, 0.95), (0.95, 0.99)), seeds):
        run("c7_schedulefree", optimizer="adamw_schedulefree", schedule="constant", beta1=betas[0], beta2=betas[1],
            max_steps=400, lr=1e-3, seed=seed)
    for seed in seeds:
        run("c7_schedulefree", schedule="wsd", max_steps=400, lr=1e-3, seed=seed)
    for size in ((2, 64), (3, 96), (4, 128)):
        for length in (200, 300, 400):
            run("c8_scaling", schedule="cosine", max_steps=length, size=size)
        trunk = run("c8_scaling", schedule="constant", max_steps=320, lr=1e-3, swa=True, swa_window=100, size=size)
        branches("c8_scaling", trunk, [200, 300, 400], [40, 60, 80], lr=1e-3, size=size)
    trunk = run("c9_merge", schedule="constant", max_steps=400, lr=1e-3, swa=True, swa_window=100)
    for shape in ("linear", "1-sqrt"):
        branches("c9_merge", trunk, [200, 400], [40, 80], lr=1e-3, cooldown_shape=shape)
    for shape, losses in MERGED_LOSSES.items() if "c9_merge" in suites else ():
        write_merge(results, shape, losses)


# In-memory runs as lab/streams.load_runs gives them, for the tests of lab/streams.py and lab/validation.py.
LAW_BASE = dict(DEFAULTS, model="cpu_tiny", max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=50, batch_size=16,
                seq_len=64, schedule="constant")


def loaded_run(name, final=1.5, **settings):
    """An in-memory run: its config (LAW_BASE with `settings`), LRs and val losses every 50 steps, ending at `final`."""
    cfg = dict(LAW_BASE, **settings)
    steps = np.arange(50, cfg["max_steps"] + 1, 50)
    return dict(name=name, cfg=cfg, steps=steps, losses=np.linspace(final + 1.0, final, len(steps)), data=None,
                trained=True, lrs=laws.schedule_lrs(cfg, cfg["max_steps"]))
