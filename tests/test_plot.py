"""plot.py on synthetic logs shaped like train.py's: every figure written (seeds and several results folders
included), missing suites skipped with a note, the figures beside their results, nothing replaced or deleted that
plot.py did not write, runs of other data refused, bad input reported in one line; and each figure's data: every
line, error bar and bar the logged values it claims to draw, in the colour and style that says what it is."""
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import cycler
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer, ErrorbarContainer

import plot
from helpers import REPO
from lab import owned, summary
from lab.config import ConfigError
from lab.runs import cfg, cycle, method
from lab.suites import SHAPES
from synthetic_runs import MERGED_LOSSES, write_merge, write_run, write_suites

MANIFEST = owned.manifest(".", "plot.py").name  # the names of the files plot.py wrote in a folder


def test_every_figure_and_the_summary_from_synthetic_runs(tmp_path, capsys):
    write_suites(tmp_path / "results", seeds=(1337, 1338))
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    expected = {f"{name}.{ext}" for name, _, _ in plot.FIGURES for ext in ("png", "pdf")} | {"summary.md"}
    assert {p.name for p in (tmp_path / "figures").iterdir()} == expected | {MANIFEST}
    assert len(expected) == 2 * 13 + 1
    assert set(json.loads((tmp_path / "figures" / MANIFEST).read_text())) == expected
    for name, _, _ in plot.FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "note" not in out and "wrote 26 figure files" in out
    assert {claim for claim, _ in rows} == {f"C{i}" for i in range(1, 10)} | {"noise"}  # c4 has 2 seeds
    assert (tmp_path / "figures" / "summary.md").read_text() == summary.markdown_table(rows) == summary.markdown_table(
        summary.summarize(plot.load_suites([tmp_path / "results"])))


def test_several_results_folders_are_one_set_of_suites(tmp_path):
    write_suites(tmp_path / "results", suites=("c4_cooldown_shapes",), seeds=(1337, 1338))
    write_run(tmp_path / "results_long", "c4_cooldown_shapes", "long", schedule="wsd", max_steps=600, lr=1e-3)
    suites = plot.load_suites([tmp_path / "results", tmp_path / "results_long"])
    assert sorted({r["info"]["config"]["max_steps"] for r in suites["c4_cooldown_shapes"]}) == [200, 400, 600]
    assert len(suites["c4_cooldown_shapes"]) == 2 * 2 * 5 + 1
    assert plot.fig_c4_gap(suites["c4_cooldown_shapes"]) is not None


def set_data(run_dirs, fingerprint):
    for run_dir in run_dirs:
        info = json.loads((run_dir / "config.json").read_text())
        (run_dir / "config.json").write_text(json.dumps(dict(info, data=dict(fingerprint=fingerprint))))


def test_runs_of_other_data_are_refused_and_runs_of_unknown_data_counted(tmp_path, capsys):
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    write_run(tmp_path / "results_long", "c4_cooldown_shapes", "long", schedule="wsd", max_steps=600, lr=1e-3)
    long = tmp_path / "results_long" / "c4_cooldown_shapes" / "long"
    runs = sorted((tmp_path / "results" / "c1_cosine_lengths").iterdir())
    set_data(runs, "a" * 64)
    set_data([long], "b" * 64)
    folders = [str(tmp_path / "results"), str(tmp_path / "results_long")]
    with pytest.raises(ConfigError) as info:
        plot.main([*folders, f"--out={tmp_path / 'figures'}"])
    assert str(info.value) == (f"the runs read different data: {runs[0]} read aaaaaaaaaaaaaaaa, {long} read "
                               f"bbbbbbbbbbbbbbbb; give each data's results apart (their own folders)")
    assert not (tmp_path / "figures").exists()
    info = json.loads((long / "config.json").read_text())
    (long / "config.json").write_text(json.dumps({k: v for k, v in info.items() if k != "data"}))  # from before
    capsys.readouterr()
    plot.main([*folders, f"--out={tmp_path / 'figures'}"])
    assert f"{', '.join(folders)}: data aaaaaaaaaaaaaaaa (4 runs), 1 runs of unknown data (no fingerprint recorded)\n" \
        in capsys.readouterr().out


def test_figure_colours_and_shades():
    shapes = [plot.color(f"wsd/{shape}") for shape in SHAPES]  # every shape of the suites: a colour of its own
    assert len(set(shapes)) == len(SHAPES) and plot.color("other") not in shapes
    assert plot.color("wsd/1-x^0.9") == plot.color("other")  # a shape no suite runs
    assert plot.color("cosine", shade=1.0) == (1.0, 1.0, 1.0)
    assert plot.shade_of(400, [200, 400]) == 0.0 < plot.shade_of(200, [200, 400])
    assert [plot.shade_of(n, [400, 200, 300, 200]) for n in (200, 300, 400)] == [0.55, 0.275, 0.0]  # evenly lighter


def test_missing_suites_and_runs_are_skipped_with_a_note(tmp_path, capsys):
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    (tmp_path / "results" / "c6_swa" / "unfinished").mkdir(parents=True)  # no logs: a run still going
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        MANIFEST, "c1_cosine_lengths.pdf", "c1_cosine_lengths.png", "schedules.pdf", "schedules.png", "summary.md"]
    out = capsys.readouterr().out
    assert "has no config.json and metrics.jsonl: skipped" in out
    for name, suite, _ in plot.FIGURES[2:]:
        where = f"{name}'s suites" if callable(suite) else f"{suite}/"
        assert f"note: no runs in {where}: {name} skipped" in out
    assert [claim for claim, _ in rows] == ["C1"]
    assert rows[0][1].startswith("final ppl, cosine cycle C / run N: C=200/N=200 ")


def test_only_figures_plot_py_wrote_are_replaced_or_deleted(tmp_path, capsys):
    figures = tmp_path / "figures"
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths", "c9_merge"))
    plot.main([str(tmp_path / "results"), f"--out={figures}"])
    assert (figures / "c9_merge.png").is_file()
    (figures / "notes.txt").write_text("yours")
    shutil.rmtree(tmp_path / "results" / "c9_merge")  # the suite is gone: its figures from the call before are too
    plot.main([str(tmp_path / "results"), f"--out={figures}"])
    assert sorted(p.name for p in figures.iterdir()) == [
        MANIFEST, "c1_cosine_lengths.pdf", "c1_cosine_lengths.png", "notes.txt", "schedules.pdf", "schedules.png",
        "summary.md"]
    assert (figures / "notes.txt").read_text() == "yours"
    assert "note: no runs in c9_merge/: c9_merge skipped" in capsys.readouterr().out
    # a file of a figure's name that plot.py did not write: refused, nothing written or deleted
    (figures / "c6_swa.png").write_text("yours")
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    with pytest.raises(ConfigError, match=rf"^{figures} already has c6_swa.png, which plot.py did not write: give it a "
                                          rf"folder of its own"):
        plot.main([str(tmp_path / "results"), f"--out={figures}"])
    assert {p.name: p.read_bytes() for p in figures.iterdir()} == before


def test_the_figures_follow_their_results_and_an_empty_folder_leaves_the_repository_unchanged(tmp_path, capsys):
    def snapshot():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for folder in ("figures", "results", "results_long")
                for p in (REPO / folder).rglob("*")} | {p: None for p in REPO.iterdir()}
    before = snapshot()
    (tmp_path / "empty").mkdir()
    plot.main([str(tmp_path / "empty")])
    assert snapshot() == before
    assert sorted(p.name for p in (tmp_path / "empty" / "figures").iterdir()) == [
        MANIFEST, "schedules.pdf", "schedules.png", "summary.md"]  # the schedules alone: no runs
    assert (tmp_path / "empty" / "figures" / "summary.md").read_text() == summary.markdown_table([])
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    with pytest.raises(ConfigError, match="^2 results folders: say where their figures go with --out=DIR$"):
        plot.main([str(tmp_path / "results"), str(tmp_path / "empty")])
    assert plot.output_folder([], None) == Path("figures")  # the repository's own results: its figures/


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


# ---------------------------------------------------------------------------------------------------------
# each figure's data: every line, error bar, bar and label read back from the figure, against the logged values
# (computed here from the runs' metrics as train.py logged them) and the colours of plot.COLORS worked out by hand

@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")  # pyplot keeps every figure a test drew


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """load_suites of the synthetic suites at two seeds, each suite written when a test first asks for it."""
    root, written = tmp_path_factory.mktemp("results"), {}

    def suite(name):
        if name not in written:
            write_suites(root / name, suites=(name,), seeds=(1337, 1338))
            written[name] = plot.load_suites([root / name])
        return written[name]
    return suite


def plotted(ax):
    """[(label, x, y, colour, line style, marker)] of the axes' lines in drawing order, error bars' own lines left
    out; an unlabelled line's label is None."""
    owned = {line for c in ax.containers if isinstance(c, ErrorbarContainer) for line in (c.lines[0], *c.lines[1])}
    return [(None if line.get_label().startswith("_") else line.get_label(), list(line.get_xdata()),
             list(line.get_ydata()), to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            for line in ax.get_lines() if line not in owned]


def error_bars(ax):
    """[(label, x, y, each bar's half length, colour)] of the axes' error bars, read from the bars themselves."""
    bars = [(c.get_label(), c.lines[2][0]) for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return [(label, [x for (x, _), _ in lines.get_segments()],
             [(bottom + top) / 2 for (_, bottom), (_, top) in lines.get_segments()],
             [(top - bottom) / 2 for (_, bottom), (_, top) in lines.get_segments()], to_hex(lines.get_color()[0]))
            for label, lines in bars]


def logged(run, key="val_loss"):
    """(steps, perplexities) of the run's records of `key`, from its metrics as train.py logged them."""
    points = [(r["step"], math.exp(r[key])) for r in run["metrics"] if r.get(key) is not None]
    return [step for step, _ in points], pytest.approx([ppl for _, ppl in points], rel=1e-12)


def final(run):
    """The run's logged perplexity at max_steps."""
    return math.exp(next(r["val_loss"] for r in run["metrics"] if r["step"] == cfg(run)["max_steps"]))


def mean_and_sd(values):
    """Over two seeds: the mean, and the sample standard deviation |a - b| / sqrt(2)."""
    a, b = values
    return pytest.approx((a + b) / 2, rel=1e-12), pytest.approx(abs(a - b) / math.sqrt(2), rel=1e-9)


# plot.COLORS, and the 0.55 and 0.4 shades of blue and pink: each channel c + (1 - c) x shade, in 0..255
BLUE, ORANGE, RED, GREY, GREEN, PINK = "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f", "#2ca02c", "#e377c2"
PALE_BLUE = "#9ac2dd"  # (31, 119, 180) + (224, 136, 75) x 0.55 = (154.2, 193.8, 221.25)
PALE_PINK = "#eeadda"  # (227, 119, 194) + (28, 136, 61) x 0.4 = (238.2, 173.4, 218.4)
PALE_RED = "#ed9e9e"  # (214, 39, 40) + (41, 216, 215) x 0.55 = (236.55, 157.8, 158.25)
PALEST_PINK = "#f9e4f3"  # (227, 119, 194) + (28, 136, 61) x 0.8 = (249.4, 227.8, 242.8)
# a default colour cycle of none of plot.COLORS: a line drawn without its colour would show
NOT_A_METHOD = {"axes.prop_cycle": cycler(color=["#000001"])}


def test_c1_draws_each_cosine_s_curve_dotted_before_its_cycle_ends_and_dashed_after(suites):
    c1 = suites("c1_cosine_lengths")["c1_cosine_lengths"]
    by = {(cycle(r), cfg(r)["max_steps"]): r for r in c1 if cfg(r)["seed"] == 1337}
    expected = [(f"cycle {c}, run {n} steps", *logged(by[(c, n)]), colour, style, "None") for c, n, colour, style in (
        (200, 200, PALE_BLUE, "-"), (200, 400, PALE_BLUE, "--"), (400, 200, BLUE, ":"), (400, 400, BLUE, "-"))]
    assert plotted(plot.fig_c1([by[key] for key in ((400, 200), (200, 400), (400, 400), (200, 200))]).axes[0]) == \
        expected


def test_c2_draws_every_seed_of_each_method_s_best_lr_and_its_schedule(suites):
    c2 = suites("c2_c3_lr_sweep")["c2_c3_lr_sweep"]
    fig = plot.fig_c2(c2)
    # the synthetic losses are lowest at 2e-3 for cosine and 1e-3 for the cooldowns (tests/synthetic_runs.py)
    best = [("cosine", 2e-3, BLUE), ("wsd/1-sqrt", 1e-3, RED), ("wsd/linear", 1e-3, ORANGE)]
    runs = {name: sorted((r for r in c2 if method(r) == name and cfg(r)["lr"] == lr), key=lambda r: cfg(r)["seed"])
            for name, lr, _ in best}
    assert plotted(fig.axes[0]) == [
        (label, *logged(run), colour, "-", "None") for name, lr, colour in best
        for label, run in zip((f"{name}, lr {lr:g} (2 seeds)", None), runs[name])]
    lrs = {name: [(r["step"], r["lr"]) for r in runs[name][0]["metrics"] if "lr" in r] for name in runs}
    assert plotted(fig.axes[1]) == [(None, [s for s, _ in lrs[name]], [lr for _, lr in lrs[name]], colour, "-", "None")
                                    for name, _, colour in best]
    one_seed = plot.fig_c2([r for r in c2 if cfg(r)["seed"] == 1338])
    assert [line[0] for line in plotted(one_seed.axes[0])] == [f"{name}, lr {lr:g} (1 seeds)" for name, lr, _ in best]
    assert [line[2] for line in plotted(one_seed.axes[1])] == [[lr for _, lr in lrs[name]] for name, _, _ in best]


def test_c3_draws_each_method_s_final_perplexity_by_lr_mean_sd_and_seeds(suites):
    c3 = suites("c2_c3_lr_sweep")["c2_c3_lr_sweep"]
    ax = plot.fig_c3(c3).axes[0]
    expected_bars, expected_dots = [], []
    for name, lrs, colour in (("cosine", (1e-3, 2e-3, 4e-3), BLUE), ("wsd/1-sqrt", (5e-4, 1e-3, 2e-3), RED),
                              ("wsd/linear", (5e-4, 1e-3, 2e-3), ORANGE)):
        seeds = [sorted(final(r) for r in c3 if method(r) == name and cfg(r)["lr"] == lr) for lr in lrs]
        means, sds = zip(*map(mean_and_sd, seeds))
        expected_bars.append((f"{name}, 200 steps", list(lrs), list(means), list(sds), colour))
        expected_dots += [(None, [lr, lr], pytest.approx(ppl), colour, "None", ".") for lr, ppl in zip(lrs, seeds)]
    assert error_bars(ax) == expected_bars
    assert [(c.lines[0].get_marker(), c.lines[0].get_linestyle()) for c in ax.containers] == [("o", "-")] * 3
    assert [(label, x, sorted(y), colour, style, marker) for label, x, y, colour, style, marker in plotted(ax)] == \
        expected_dots
    one_seed = plot.fig_c3([r for r in c3 if cfg(r)["seed"] == 1337]).axes[0]  # no spread: bars of 0
    assert [(label, x, sds) for label, x, _, sds, _ in error_bars(one_seed)] == [
        ("cosine, 200 steps", [1e-3, 2e-3, 4e-3], [0, 0, 0]), ("wsd/1-sqrt, 200 steps", [5e-4, 1e-3, 2e-3], [0, 0, 0]),
        ("wsd/linear, 200 steps", [5e-4, 1e-3, 2e-3], [0, 0, 0])]


C4_SHAPES = [("linear", ORANGE), ("1-sqrt", RED), ("cosine", "#17becf"), ("square", "#bcbd22"), ("1-x^0.7", "#8c6d31")]


def test_c4_draws_one_bar_per_cooldown_shape_and_length_with_its_seeds(suites):
    c4 = suites("c4_cooldown_shapes")["c4_cooldown_shapes"]
    cosines = suites("c1_cosine_lengths")["c1_cosine_lengths"]  # of 200 and 400 steps too: not a cooldown shape
    fig = plot.fig_c4(c4 + cosines)
    assert len(fig.axes) == 2
    for ax, length in zip(fig.axes, (200, 400)):
        seeds = [sorted(final(r) for r in c4 if cfg(r)["cooldown_shape"] == shape and cfg(r)["max_steps"] == length)
                 for shape, _ in C4_SHAPES]
        bars = next(c for c in ax.containers if isinstance(c, BarContainer))
        assert [bar.get_height() for bar in bars] == [mean_and_sd(s)[0] for s in seeds]
        assert [to_hex(bar.get_facecolor()) for bar in bars] == [colour for _, colour in C4_SHAPES]
        (label, x, means, sds, colour), = error_bars(ax)
        assert (x, means, sds) == (list(range(5)), [mean_and_sd(s)[0] for s in seeds], [mean_and_sd(s)[1] for s in seeds])
        assert [t.get_text() for t in ax.get_xticklabels()] == [shape for shape, _ in C4_SHAPES]
        assert [(x, sorted(y), colour) for _, x, y, colour, _, _ in plotted(ax)] == [
            ([i, i], pytest.approx(s), "#000000") for i, s in enumerate(seeds)]
    one_seed = plot.fig_c4([r for r in c4 if cfg(r)["seed"] == 1338]).axes[1]  # 400 steps
    bars = next(c for c in one_seed.containers if isinstance(c, BarContainer))
    assert [to_hex(bar.get_facecolor()) for bar in bars] == [colour for _, colour in C4_SHAPES]
    assert [t.get_text() for t in one_seed.get_xticklabels()] == [shape for shape, _ in C4_SHAPES]
    assert error_bars(one_seed)[0][3] == [0] * 5  # no spread


def test_c4_gap_draws_each_shape_against_1_sqrt_seed_by_seed_per_length(tmp_path):
    write_suites(tmp_path, suites=("c4_cooldown_shapes",), seeds=(1337, 1338))
    for seed in (1337, 1338):  # a shape without a colour of its own: 'other', dashed
        write_run(tmp_path, "c4_cooldown_shapes", f"x15-{seed}", schedule="wsd", cooldown_shape="1-x^1.5",
                  max_steps=200, lr=1e-3, seed=seed)
    metrics = tmp_path / "c4_cooldown_shapes" / "x15-1338" / "metrics.jsonl"  # this seed's own gap: a spread
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    records[-1]["val_loss"] += 0.01
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    for seed in (1337, 1338):  # not a cooldown shape, whatever cooldown_shape it records (a cosine ignores it)
        write_run(tmp_path, "c4_cooldown_shapes", f"cosine-{seed}", schedule="cosine", max_steps=200,
                  cooldown_shape="1-x^2", seed=seed)
    c4 = plot.load_suites([tmp_path])["c4_cooldown_shapes"]
    ax = plot.fig_c4_gap(c4).axes[0]
    ppl = {(cfg(r)["cooldown_shape"], cfg(r)["max_steps"], cfg(r)["seed"]): final(r) for r in c4
           if cfg(r)["schedule"] == "wsd"}
    expected_bars, expected_dots = [], []
    for shape, colour, style, lengths in (*[(s, c, "-", (200, 400)) for s, c in C4_SHAPES if s != "1-sqrt"],
                                          ("1-x^1.5", "#9467bd", "--", (200,))):
        gaps = [[ppl[(shape, n, seed)] / ppl[("1-sqrt", n, seed)] - 1 for seed in (1337, 1338)] for n in lengths]
        means, sds = zip(*map(mean_and_sd, gaps))
        expected_bars.append((f"{shape} / 1-sqrt - 1", list(lengths), list(means), list(sds), colour, style))
        expected_dots += [(None, [n, n], pytest.approx(g, rel=1e-9), colour, "None", ".") for n, g in zip(lengths, gaps)]
    styles = [c.lines[0].get_linestyle() for c in ax.containers]
    assert [c.lines[0].get_marker() for c in ax.containers] == ["o"] * 5
    assert error_bars(ax)[-1][3][0] > 1e-3  # the spread of 1-x^1.5's two gaps
    assert [(*bar, style) for bar, style in zip(error_bars(ax), styles)] == expected_bars
    assert plotted(ax) == expected_dots + [(None, [0, 1], [0, 0], "#000000", "-", "None")]  # the zero line last
    assert [t.get_text() for t in ax.get_xticklabels()] == ["200", "400"]
    assert ax.yaxis.get_major_formatter().xmax == 1.0  # a gap of 0.01 reads 1 %
    assert plot.fig_c4_gap([r for r in c4 if cfg(r)["cooldown_shape"] != "1-sqrt"]) is None


def test_c5_draws_the_final_perplexity_by_cooldown_length_and_the_cosine_s_as_a_line(tmp_path):
    write_suites(tmp_path, suites=("c5_cooldown_lengths",))
    for steps in (10, 40):  # a shorter run length: a lighter shade
        write_run(tmp_path, "c5_cooldown_lengths", f"short-{steps}", schedule="wsd", max_steps=200, lr=1e-3,
                  cooldown_steps=steps)
    write_run(tmp_path, "c5_cooldown_lengths", "short-cosine", schedule="cosine", max_steps=200)
    c5 = plot.load_suites([tmp_path])["c5_cooldown_lengths"]
    cooldowns = {n: sorted((r for r in c5 if cfg(r)["schedule"] == "wsd" and cfg(r)["max_steps"] == n),
                           key=lambda r: cfg(r)["cooldown_steps"]) for n in (200, 400)}
    cosine = {cfg(r)["max_steps"]: r for r in c5 if cfg(r)["schedule"] == "cosine"}
    with plt.rc_context(NOT_A_METHOD):
        ax = plot.fig_c5(c5).axes[0]
    assert plotted(ax) == [
        ("wsd/1-sqrt, 200 steps", [0.05, 0.2], pytest.approx([final(r) for r in cooldowns[200]]), PALE_RED, "-", "o"),
        # cooldowns of 20, 40, 80 and 160 of the 400 steps
        ("wsd/1-sqrt, 400 steps", [0.05, 0.1, 0.2, 0.4], pytest.approx([final(r) for r in cooldowns[400]]), RED, "-",
         "o"),
        ("cosine, 400 steps", [0, 1], pytest.approx([final(cosine[400])] * 2), BLUE, "--", "None"),
        ("cosine, 200 steps", [0, 1], pytest.approx([final(cosine[200])] * 2), PALE_BLUE, "--", "None")]


def test_c6_draws_each_run_and_its_average_in_its_panel(suites):
    c6 = summary.averaging_runs({**suites("c6_swa"), **suites("c9_merge")})
    fig = plot.fig_c6(c6)
    trunk = next(r for r in c6 if cfg(r)["schedule"] == "constant")
    cooldown = next(r for r in c6 if cfg(r)["schedule"] == "wsd")
    cosine = next(r for r in c6 if cfg(r)["schedule"] == "cosine")
    assert plotted(fig.axes[0]) == [("constant, 400 steps", *logged(trunk), GREY, "-", "None"),
                                    ("constant + SWA", *logged(trunk, "val_loss_swa"), GREEN, "--", "None"),
                                    ("wsd/1-sqrt, 400 steps", *logged(cooldown), RED, "-", "None")]
    assert plotted(fig.axes[1]) == [("cosine, 400 steps", *logged(cosine), BLUE, "-", "None"),
                                    ("cosine + SWA", *logged(cosine, "val_loss_swa"), GREEN, "--", "None")]
    assert [ax.get_title() for ax in fig.axes] == ["C6: weight averaging, constant LR and cooldowns",
                                                   "C6: weight averaging, cosine"]
    ema = dict(cosine, metrics=[dict(r, val_loss_ema=r["val_loss"] - 0.01) if "val_loss" in r else r
                                for r in cosine["metrics"]])  # an EMA beside the SWA
    assert plotted(plot.fig_c6([ema]).axes[0])[1:] == [
        ("cosine + SWA", *logged(ema, "val_loss_swa"), GREEN, "--", "None"),
        ("cosine + EMA", *logged(ema, "val_loss_ema"), "#8c564b", "--", "None")]
    assert plot.fig_c6([r for r in c6 if not cfg(r)["swa"]]) is None  # no average to show
    assert len(plot.fig_c6([trunk]).axes) == 1  # no cosine: one panel


def test_c7_draws_each_optimizer_s_lr_curve_and_the_best_lr_s_curves(suites, tmp_path):
    c7 = summary.schedulefree_runs(suites("c7_schedulefree"))
    fig = plot.fig_c7(c7)
    kinds = [("schedule-free (0.9, 0.95)", dict(optimizer="adamw_schedulefree", beta1=0.9), PINK, "-"),
             ("schedule-free (0.95, 0.99)", dict(optimizer="adamw_schedulefree", beta1=0.95), PALE_PINK, "--"),
             ("wsd/1-sqrt", dict(optimizer="adamw"), RED, ":")]
    runs = {name: sorted((r for r in c7 if all(cfg(r)[k] == v for k, v in which.items())),
                         key=lambda r: cfg(r)["seed"]) for name, which, _, _ in kinds}
    assert error_bars(fig.axes[0]) == [(f"{name}, 400 steps", [1e-3], *map(list, zip(mean_and_sd(
        [final(r) for r in runs[name]]))), colour) for name, _, colour, _ in kinds]
    assert plotted(fig.axes[1]) == [  # each seed's curve; the method's colour, the betas told apart by the line style
        (label, *logged(run), RED if name == "wsd/1-sqrt" else PINK, style, "None") for name, _, _, style in kinds
        for label, run in zip((f"{name}, lr 0.001 (2 seeds)", None), runs[name])]
    # a shorter run of the second betas: its length's shade (0.55) and its betas' (0.4), at most 0.8
    write_run(tmp_path, "c7_schedulefree", "short", optimizer="adamw_schedulefree", schedule="constant", beta1=0.95,
              beta2=0.99, max_steps=200, lr=1e-3)
    short = plot.load_suites([tmp_path])["c7_schedulefree"]
    left = plot.fig_c7(c7 + short).axes[0]
    assert [(label, colour) for label, *_, colour in error_bars(left)] == [
        ("schedule-free (0.9, 0.95), 400 steps", PINK), ("schedule-free (0.95, 0.99), 200 steps", PALEST_PINK),
        ("schedule-free (0.95, 0.99), 400 steps", PALE_PINK), ("wsd/1-sqrt, 400 steps", RED)]


def test_c8_draws_each_size_s_envelopes_trunk_and_its_average_against_tokens(suites):
    c8 = suites("c8_scaling")["c8_scaling"]
    fig = plot.fig_c8_envelopes(c8)
    assert len(fig.axes) == 3
    for ax, n_embd in zip(fig.axes, (64, 96, 128)):  # smallest first
        size = sorted((r for r in c8 if cfg(r)["n_embd"] == n_embd), key=lambda r: cfg(r)["max_steps"])
        cosines = [r for r in size if cfg(r)["schedule"] == "cosine"]
        cooldowns = [r for r in size if cfg(r)["schedule"] == "wsd"]
        trunk = next(r for r in size if cfg(r)["schedule"] == "constant")

        def tokens(run, key="val_loss"):  # 8 x 64 tokens a step
            steps, ppl = logged(run, key)
            return [512 * s for s in steps], ppl
        assert plotted(ax) == [
            *[(None, *tokens(r), BLUE, "-", "None") for r in cosines],
            ("cosine runs", [512 * 200, 512 * 300, 512 * 400], pytest.approx([final(r) for r in cosines]), BLUE, "-",
             "o"),
            *[(None, *tokens(r), RED, "-", "None") for r in cooldowns],
            ("trunk + cooldowns", [512 * 200, 512 * 300, 512 * 400], pytest.approx([final(r) for r in cooldowns]),
             RED, "-", "o"),
            ("constant trunk", *tokens(trunk), GREY, "-", "None"),
            ("trunk + SWA", *tokens(trunk, "val_loss_swa"), GREEN, "-", "None")]
    one_each = [r for r in c8 if cfg(r)["max_steps"] == 400 and cfg(r)["n_embd"] == 64]  # one cosine, one cooldown
    assert [line[0] for line in plotted(plot.fig_c8_envelopes(one_each).axes[0])] == [None, "cosine runs", None,
                                                                                        "trunk + cooldowns"]


def test_c8_scatter_draws_each_cooldown_against_the_cosine_of_its_size_and_length_and_their_fit(suites):
    c8 = suites("c8_scaling")["c8_scaling"]
    ppl = {(cfg(r)["n_embd"], cfg(r)["schedule"], cfg(r)["max_steps"]): final(r) for r in c8}
    x = [ppl[(n, "cosine", length)] for n in (64, 96, 128) for length in (200, 300, 400)]
    y = [ppl[(n, "wsd", length)] for n in (64, 96, 128) for length in (200, 300, 400)]
    span = [min(x + y) * 0.98, max(x + y) * 1.02]
    slope, intercept = np.polyfit(x, y, 1)
    labels = [summary.scaling.size_label(next(r for r in c8 if cfg(r)["n_embd"] == n)) for n in (64, 96, 128)]
    assert labels == ["0.103M", "0.308M", "0.697M"]
    with plt.rc_context(NOT_A_METHOD):
        fig = plot.fig_c8_scatter(c8)
    assert plotted(fig.axes[0]) == [
        *[(label, pytest.approx(x[3 * i:3 * i + 3]), pytest.approx(y[3 * i:3 * i + 3]), RED, "None", marker)
          for i, (label, marker) in enumerate(zip(labels, "osD"))],
        ("y = x", pytest.approx(span), pytest.approx(span), "#000000", ":", "None"),
        (f"fit: y = {slope:.3f} x {intercept:+.3f}", pytest.approx(span),
         pytest.approx([slope * v + intercept for v in span]), BLUE, "-", "None")]
    two = [r for r in c8 if cfg(r)["n_embd"] == 64 and cfg(r)["max_steps"] in (200, 300)]  # two pairs: a line
    assert [line[0][:5] for line in plotted(plot.fig_c8_scatter(two).axes[0])] == ["0.103", "y = x", "fit: "]
    one = [r for r in two if cfg(r)["max_steps"] == 200]  # one pair: no line to fit
    assert [line[0] for line in plotted(plot.fig_c8_scatter(one).axes[0])] == ["0.103M", "y = x"]


def test_c8_compute_draws_both_studies_compute_per_size_side_by_side_with_their_ratio(suites):
    c8 = suites("c8_scaling")["c8_scaling"]
    rows = summary.scaling.compute_savings(c8)
    ax = plot.fig_c8_compute(c8).axes[0]
    cosine, cooldown = (c for c in ax.containers if isinstance(c, BarContainer))
    assert (cosine.get_label(), cooldown.get_label()) == ("cosine, one run per length", "one trunk + cooldowns")
    for bars, side, offset, colour in ((cosine, "cosine", -0.2, BLUE), (cooldown, "cooldown", 0.2, RED)):
        assert [(bar.get_x() + bar.get_width() / 2, bar.get_width(), bar.get_height(), to_hex(bar.get_facecolor()))
                for bar in bars] == [(pytest.approx(i + offset), pytest.approx(0.4), row[side]["chinchilla"], colour)
                                     for i, row in enumerate(rows)]
    assert [(t.get_text(), t.xy) for t in ax.texts] == [
        (f"{row['ratio']:.2f}x", (pytest.approx(i + 0.2), row["cooldown"]["chinchilla"])) for i, row in enumerate(rows)]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{label}\n(3 lengths)" for label in ("0.103M", "0.308M",
                                                                                                    "0.697M")]


def test_c9_draws_each_merge_and_cooldown_relative_to_the_trunk(suites):
    c9 = suites("c9_merge")["c9_merge"]
    trunk = next(r for r in c9 if cfg(r)["schedule"] == "constant" and not r["info"].get("merge") and
                 not r["info"].get("origin"))
    at = {r["step"]: r for r in trunk["metrics"]}
    ppl = {n: math.exp(at[n]["val_loss"]) for n in (200, 400)}
    swa = {n: math.exp(at[n]["val_loss_swa"]) for n in (200, 400)}
    cooldowns = {(cfg(r)["cooldown_shape"], cfg(r)["max_steps"]): final(r) for r in c9 if cfg(r)["schedule"] == "wsd"}

    def line(label, values, colour, style, marker):
        return label, [200, 400], pytest.approx([values[n] / ppl[n] - 1 for n in (200, 400)]), colour, style, marker
    merged = {shape: {n: math.exp(loss) for n, loss in losses.items()} for shape, losses in MERGED_LOSSES.items()}
    ax = plot.fig_c9(c9).axes[0]
    assert plotted(ax) == [line("constant trunk", ppl, GREY, "-", "o"), line("trunk + SWA", swa, GREEN, "-", "o"),
                           line("merge uniform", merged["uniform"], GREEN, "--", "s"),
                           line("merge linear", merged["linear"], ORANGE, "--", "s"),
                           line("cooldown linear", {n: cooldowns[("linear", n)] for n in (200, 400)}, ORANGE, "-", "o"),
                           line("merge 1-sqrt", merged["1-sqrt"], RED, "--", "s"),
                           line("cooldown 1-sqrt", {n: cooldowns[("1-sqrt", n)] for n in (200, 400)}, RED, "-", "o")]
    assert ax.yaxis.get_major_formatter().xmax == 1.0
    assert plot.fig_c9([r for r in c9 if not r["info"].get("merge")]) is None  # nothing merged: nothing to compare


def test_c9_draws_a_merge_of_a_shape_without_a_style_of_its_own_dotted_with_triangles(tmp_path):
    write_suites(tmp_path, suites=("c9_merge",))
    write_merge(tmp_path, "square", {200: 1.58, 400: 1.47})
    c9 = plot.load_suites([tmp_path])["c9_merge"]
    trunk = next(r for r in c9 if cfg(r)["schedule"] == "constant" and not r["info"].get("merge") and
                 not r["info"].get("origin"))
    ppl = {r["step"]: math.exp(r["val_loss"]) for r in trunk["metrics"] if r["step"] in (200, 400)}
    assert plotted(plot.fig_c9(c9).axes[0])[-1] == (
        "merge square", [200, 400], pytest.approx([math.exp(1.58) / ppl[200] - 1, math.exp(1.47) / ppl[400] - 1]),
        "#9467bd", ":", "^")


def test_a_figure_without_the_runs_it_draws_is_none():
    for draw in (plot.fig_c1, plot.fig_c2, plot.fig_c3, plot.fig_c4, plot.fig_c4_gap, plot.fig_c5, plot.fig_c6,
                 plot.fig_c7, plot.fig_c8_scatter, plot.fig_c8_compute, plot.fig_c9):
        assert draw([]) is None, draw.__name__
