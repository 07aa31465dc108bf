"""plot.py on synthetic logs shaped like train.py's: every figure written (seeds and several results folders
included), missing suites skipped with a note, bad input reported in one line."""
import math
import subprocess
import sys

import pytest

import plot
from helpers import REPO
from lab import summary
from lab.config import ConfigError
from lab.runs import cfg, cooldown_frac, cycle, final_ppl, method
from synthetic_runs import write_run, write_suites

def test_every_figure_and_the_summary_from_synthetic_runs(tmp_path, capsys):
    write_suites(tmp_path / "results", seeds=(1337, 1338))
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    expected = {f"{name}.{ext}" for name, _, _ in plot.FIGURES for ext in ("png", "pdf")} | {"summary.md"}
    assert {p.name for p in (tmp_path / "figures").iterdir()} == expected
    assert len(expected) == 2 * 13 + 1
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


def test_figure_colours_and_shades():
    assert plot.color("wsd/1-x^0.7") == plot.color("other") != plot.color("wsd/linear")
    assert plot.color("cosine", shade=1.0) == (1.0, 1.0, 1.0)
    assert plot.shade_of(400, [200, 400]) == 0.0 < plot.shade_of(200, [200, 400])


def test_missing_suites_and_runs_are_skipped_with_a_note(tmp_path, capsys):
    write_suites(tmp_path / "results", suites=("c1_cosine_lengths",))
    (tmp_path / "results" / "c6_swa" / "unfinished").mkdir(parents=True)  # no logs: a run still going
    rows = plot.main([str(tmp_path / "results"), f"--out={tmp_path / 'figures'}"])
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "c1_cosine_lengths.pdf", "c1_cosine_lengths.png", "schedules.pdf", "schedules.png", "summary.md"]
    out = capsys.readouterr().out
    assert "has no config.json and metrics.jsonl: skipped" in out
    for name, suite, _ in plot.FIGURES[2:]:
        where = f"{name}'s suites" if callable(suite) else f"{suite}/"
        assert f"note: no runs in {where}: {name} skipped" in out
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
    assert "note: no runs in c6_swa's suites: c6_swa skipped" in capsys.readouterr().out


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
