"""plot.py on synthetic logs shaped like train.py's: every figure written, the summary's numbers, missing suites
skipped with a note, bad input reported in one line."""
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import plot
import train
from config import ConfigError
from conftest import REPO
from model import GPTConfig, flops_per_token
from schedules import lr_multiplier, schedule_args

SEQ_LEN, BATCH = 64, 8
SUITES = ("c1_cosine_lengths", "c2_c3_lr_sweep", "c4_cooldown_shapes", "c5_cooldown_lengths", "c6_swa",
          "c7_schedulefree", "c8_scaling", "c9_merge")
MERGED_LOSSES = {"uniform": {200: 1.60, 400: 1.50}, "linear": {200: 1.55, 400: 1.45}, "1-sqrt": {200: 1.56, 400: 1.44}}


def synthetic_losses(cfg, non_embedding_params):
    """Validation loss after each step 0..max_steps: falls with N and with the LR-weighted tokens seen, carries
    a noise term proportional to the recent LR that a cooldown (or averaging) removes, and a penalty for
    leaving the best LR (2e-3 for cosine, 1e-3 otherwise). Returns (losses, noise terms, LR multipliers)."""
    multiplier = np.array([lr_multiplier(s, **schedule_args(cfg)) for s in range(cfg["max_steps"])])
    best_lr = 2e-3 if cfg["schedule"] == "cosine" else 1e-3
    progress = np.concatenate([[0], np.cumsum(multiplier)]) * BATCH * SEQ_LEN
    recent = np.array([multiplier[max(0, s - 20):s].mean() if s else 1.0 for s in range(cfg["max_steps"] + 1)])
    noise = 0.5 * recent * cfg["lr"] / best_lr * (0.5 if cfg["optimizer"] == "adamw_schedulefree" else 1.0)
    loss = 1.0 + 30 / non_embedding_params**0.3 + 15 / (progress + 1e4) ** 0.25 + noise \
        + 0.1 * math.log2(cfg["lr"] / best_lr) ** 2
    return loss, noise, multiplier


def write_run(results, suite, name, origin=None, size=(2, 64), **settings):
    """<results>/<suite>/<name>/{config.json, metrics.jsonl} as train.py writes them; returns the run's out_dir."""
    n_layer, n_embd = size
    cfg = dict(train.DEFAULTS, out_dir=f"out/sweeps/{suite}/{name}", batch_size=BATCH, seq_len=SEQ_LEN,
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


def write_suites(results, suites=SUITES):
    """A small version of every suite. Folder names say nothing: plot.py must read the configs."""
    names = (f"run{i}" for i in itertools.count())

    def run(suite, **settings):
        return write_run(results, suite, next(names), **settings) if suite in suites else None

    def branches(suite, trunk, lengths, cooldown_steps, **settings):
        for length, steps in zip(lengths, cooldown_steps):
            origin = dict(checkpoint=f"{trunk}/ckpt_{length - steps:07d}.pt", out_dir=trunk, step=length - steps)
            run(suite, schedule="wsd", max_steps=length, cooldown_steps=steps, origin=origin, **settings)

    for max_steps, cycle in [(200, None), (400, None), (400, 200), (200, 400)]:
        run("c1_cosine_lengths", schedule="cosine", max_steps=max_steps, cycle_steps=cycle)
    for lr in (1e-3, 2e-3, 4e-3):
        run("c2_c3_lr_sweep", schedule="cosine", max_steps=200, lr=lr)
        for shape in ("linear", "1-sqrt"):
            run("c2_c3_lr_sweep", schedule="wsd", cooldown_shape=shape, max_steps=200, lr=lr / 2)
    for max_steps, shape in itertools.product((200, 400), ("linear", "1-sqrt", "cosine", "square", "1-x^0.7")):
        run("c4_cooldown_shapes", schedule="wsd", cooldown_shape=shape, max_steps=max_steps, lr=1e-3)
    trunk = run("c5_cooldown_lengths", schedule="constant", max_steps=380, lr=1e-3)
    branches("c5_cooldown_lengths", trunk, [400] * 4, [20, 40, 80, 160], lr=1e-3)
    run("c5_cooldown_lengths", schedule="cosine", max_steps=400)
    run("c6_swa", schedule="constant", max_steps=400, lr=1e-3, swa=True, swa_window=100)
    run("c6_swa", schedule="cosine", max_steps=400, swa=True, swa_window=100)
    run("c6_swa", schedule="wsd", max_steps=400, lr=1e-3)
    for betas in ((0.9, 0.95), (0.95, 0.99)):
        run("c7_schedulefree", optimizer="adamw_schedulefree", schedule="constant", beta1=betas[0], beta2=betas[1],
            max_steps=400, lr=1e-3)
    run("c7_schedulefree", schedule="wsd", max_steps=400, lr=1e-3)
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


def test_every_figure_and_the_summary_from_synthetic_runs(tmp_path, capsys):
    write_suites(tmp_path / "results")
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    expected = {f"{name}.{ext}" for name, _, _ in plot.FIGURES for ext in ("png", "pdf")} | {"summary.md"}
    assert {p.name for p in (tmp_path / "figures").iterdir()} == expected
    assert len(expected) == 2 * 12 + 1
    for name, _, _ in plot.FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "note" not in out and "wrote 24 figure files" in out
    assert {claim for claim, _ in rows} == {f"C{i}" for i in range(1, 10)}
    assert (tmp_path / "figures" / "summary.md").read_text() == plot.markdown_table(rows)
    text = "\n".join(f"{claim}: {line}" for claim, line in rows)
    # the synthetic best LRs: 2e-3 for cosine, 1e-3 with a cooldown
    assert "C3: best peak LR: cosine 0.002 (1x cosine's), wsd/1-sqrt 0.001 (0.5x cosine's)" in text
    # per size: trunk to 320 + cooldowns of 40, 60, 80 steps = 500 steps against cosine runs of 900
    assert text.count(f"trunk + 3 cooldowns cost {500 / 900:.3f} of 3 cosine runs") == 3
    assert "C8: fit to cosine runs: L = " in text and "C8: fit to cooldown runs: L = " in text
    c8 = [text for claim, text in rows if claim == "C8"]
    assert "ratio" in c8[-1] and c8[-1].startswith("C = ")


def test_summary_numbers_of_the_cooldown_shapes(tmp_path):
    write_suites(tmp_path, suites=("c4_cooldown_shapes",))
    suites = plot.scaling.load_runs(tmp_path)
    final = {(plot.cfg(r)["max_steps"], plot.cfg(r)["cooldown_shape"]): math.exp(plot.scaling.final_loss(r))
             for r in suites["c4_cooldown_shapes"]}
    rows = plot.summarize(suites)
    assert [claim for claim, _ in rows] == ["C4", "C4"]
    gap = final[400, "linear"] - final[400, "1-sqrt"]
    assert gap > 0  # the synthetic noise term falls faster under 1-sqrt
    assert rows[1][1].startswith(f"400 steps: linear {final[400, 'linear']:.3f}, 1-sqrt {final[400, '1-sqrt']:.3f}, "
                                 f"cosine {final[400, 'cosine']:.3f}, square ")
    assert rows[1][1].endswith(f"1-x^0.7 {final[400, '1-x^0.7']:.3f}; linear - 1-sqrt = {gap:+.3f} ppl "
                               f"({final[400, 'linear'] / final[400, '1-sqrt'] - 1:+.2%})")


def test_summary_numbers_of_the_merges(tmp_path):
    write_suites(tmp_path, suites=("c9_merge",))
    suites = plot.scaling.load_runs(tmp_path)
    runs = [r for r in suites["c9_merge"] if not r["info"].get("merge")]
    trunk = next(r for r in runs if plot.cfg(r)["schedule"] == "constant")
    logged = {r["step"]: r for r in trunk["metrics"] if "val_loss" in r}
    cooldown = {(plot.cfg(r)["max_steps"], plot.cfg(r)["cooldown_shape"]): plot.final_ppl(r)
                for r in runs if r is not trunk}
    merged = {(n, shape): math.exp(loss) for shape, losses in MERGED_LOSSES.items() for n, loss in losses.items()}
    assert plot.summarize(suites) == [("C9", (
        f"{n} steps, ppl: constant trunk {math.exp(logged[n]['val_loss']):.3f}, "
        f"trunk + SWA {math.exp(logged[n]['val_loss_swa']):.3f}, merge uniform {merged[n, 'uniform']:.3f}, "
        f"merge linear {merged[n, 'linear']:.3f}, cooldown linear {cooldown[n, 'linear']:.3f}, "
        f"merge 1-sqrt {merged[n, '1-sqrt']:.3f}, cooldown 1-sqrt {cooldown[n, '1-sqrt']:.3f}")) for n in (200, 400)]
    assert plot.fig_c9(runs) is None  # no merges: nothing to compare with
    assert plot.fig_c9(suites["c9_merge"]) is not None


def test_runs_are_classified_by_their_config_not_their_folder():
    def run(**settings):
        return dict(info=dict(config={**dict(optimizer="adamw", schedule="wsd", cooldown_shape="1-sqrt"), **settings}))
    assert plot.method(run()) == "wsd/1-sqrt"
    assert plot.method(run(schedule="cosine")) == "cosine"
    assert plot.method(run(schedule="constant", optimizer="adamw_schedulefree")) == "schedule-free"
    assert plot.color("wsd/1-x^0.7") == plot.color("other") != plot.color("wsd/linear")
    assert plot.color("cosine", shade=1.0) == (1.0, 1.0, 1.0)
    assert sorted(["1-x^2", "square", "1-x^0.7", "linear", "1-sqrt"], key=plot.shape_order) == [
        "linear", "1-sqrt", "square", "1-x^0.7", "1-x^2"]


def test_missing_suites_and_runs_are_skipped_with_a_note(tmp_path, capsys):
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    (tmp_path / "results" / "c6_swa" / "unfinished").mkdir(parents=True)  # no logs: a run still going
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "c1_cosine_lengths.pdf", "c1_cosine_lengths.png", "schedules.pdf", "schedules.png", "summary.md"]
    out = capsys.readouterr().out
    assert "has no config.json and metrics.jsonl: skipped" in out
    for name, suite, _ in plot.FIGURES[2:]:
        assert f"note: no runs in {suite}/: {name} skipped" in out
    assert [claim for claim, _ in rows] == ["C1"]
    assert rows[0][1].startswith("final ppl, cosine cycle C / run N: C=200/N=200 ")


def test_figures_of_a_suite_without_runs_are_deleted(tmp_path, capsys):
    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("c6_swa.png", "c6_swa.pdf", "c8_envelopes.png", "notes.txt"):  # an earlier invocation's, and ours
        (figures / name).write_text("old")
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    plot.main([str(tmp_path / "results"), f"--out={figures}"])
    assert sorted(p.name for p in figures.iterdir()) == [
        "c1_cosine_lengths.pdf", "c1_cosine_lengths.png", "notes.txt", "schedules.pdf", "schedules.png", "summary.md"]
    assert (figures / "notes.txt").read_text() == "old"
    assert "note: no runs in c6_swa/: c6_swa skipped" in capsys.readouterr().out


def test_a_result_being_published_is_not_a_run(tmp_path, capsys):
    write_suites(tmp_path, suites=("c1_cosine_lengths",))
    write_run(tmp_path, "c1_cosine_lengths", "late.partial", schedule="cosine", max_steps=200)  # sweep.publish's copy
    (tmp_path / "c1_cosine_lengths" / "early.partial").mkdir()  # its copy not begun: no files yet
    runs = plot.scaling.load_runs(tmp_path)["c1_cosine_lengths"]
    assert sorted(r["name"] for r in runs) == ["run0", "run1", "run2", "run3"]
    assert "note" not in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="results directory '.*nowhere' does not exist"):
        plot.main([str(tmp_path / "nowhere")])
    write_suites(tmp_path, suites=("c1_cosine_lengths",))
    config = tmp_path / "c1_cosine_lengths" / "run0" / "config.json"
    config.write_text('{"config": ')
    with pytest.raises(ConfigError, match=f"cannot read {config}: Expecting value"):
        plot.scaling.load_runs(tmp_path)
    config.write_text('{"schedule": "cosine"}')
    with pytest.raises(ConfigError, match="is not a train.py config.json \\(no config, origin, model_config"):
        plot.scaling.load_runs(tmp_path)
    result = subprocess.run([sys.executable, "plot.py", str(tmp_path / "nowhere")], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: results directory")
