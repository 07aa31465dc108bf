"""plot.py on synthetic logs shaped like train.py's: every figure written (seeds and several results folders
included), missing suites skipped with a note, the figures beside their results, nothing replaced or deleted that
plot.py did not write, runs of other data refused, each line's data the logged series it claims to draw, bad input
reported in one line."""
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import plot
from helpers import REPO
from lab import owned, summary
from lab.config import ConfigError
from lab.runs import cfg, cooldown_frac, cycle, final_ppl, method
from lab.suites import SHAPES
from synthetic_runs import write_run, write_suites

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


def drawn(fig):
    """{label: (x, y)} of every labelled line in the figure, read back from its axes."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for ax in fig.axes
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def logged(run, key="val_loss"):
    """(steps, perplexities) of the run's records of `key`, from its metrics as train.py logged them."""
    points = [(r["step"], math.exp(r[key])) for r in run["metrics"] if r.get(key) is not None]
    return [step for step, _ in points], pytest.approx([ppl for _, ppl in points], rel=1e-12)


def test_each_line_of_a_figure_draws_the_logged_series_it_names(tmp_path):
    write_suites(tmp_path, suites=("c1_cosine_lengths", "c5_cooldown_lengths", "c6_swa", "c9_merge"))
    suites = plot.load_suites([tmp_path])
    c1 = suites["c1_cosine_lengths"]
    assert drawn(plot.fig_c1(c1)) == {f"cycle {cycle(r)}, run {cfg(r)['max_steps']} steps": logged(r) for r in c1}
    c6 = summary.averaging_runs(suites)  # the trunk and its SWA, its cooldown, a cosine and its SWA
    expected = {f"{method(r)}, {cfg(r)['max_steps']} steps": logged(r) for r in c6}
    expected |= {f"{method(r)} + SWA": logged(r, "val_loss_swa") for r in c6 if cfg(r)["swa"]}
    assert len(expected) == 5 and drawn(plot.fig_c6(c6)) == expected
    c5 = suites["c5_cooldown_lengths"]
    cooldowns = sorted((r for r in c5 if cfg(r)["schedule"] == "wsd"), key=cooldown_frac)
    cosine = next(r for r in c5 if cfg(r)["schedule"] == "cosine")
    assert drawn(plot.fig_c5(c5)) == {
        "wsd/1-sqrt, 400 steps": ([cooldown_frac(r) for r in cooldowns], [final_ppl(r) for r in cooldowns]),
        "cosine, 400 steps": ([0, 1], [final_ppl(cosine)] * 2)}
