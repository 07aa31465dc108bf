"""lab/summary.py on synthetic logs whose losses follow a known law: the numbers of each claim, the seeds' spread,
the paired verdicts, C8 at each size's best LR, and the merges."""
import itertools
import math
import statistics

import pytest

from lab import scaling, summary
from lab.runs import cfg, final_ppl
from synthetic_runs import MERGED_LOSSES, write_run, write_suites


def finals(runs):
    return {(cfg(r)["max_steps"], cfg(r)["cooldown_shape"], cfg(r)["seed"]): final_ppl(r) for r in runs}


def seed_spread(ppl, name, seeds=(1337, 1338)):
    """'mean ± sd' of the final perplexities `ppl` of the runs <name>_<seed>."""
    values = [ppl[f"{name}_{seed}"] for seed in seeds]
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def paired(ppl, first, second, seeds=(1337, 1338)):
    """The paired gap first / second - 1 and its verdict's bracket: the seeds' offsets are shared by both settings,
    so the gap is the same at every seed and its interval has zero width."""
    gaps = [ppl[f"{first}_{seed}"] / ppl[f"{second}_{seed}"] - 1 for seed in seeds]
    assert gaps[0] == pytest.approx(gaps[-1], abs=1e-12)
    return gaps[0], f"({gaps[0]:+.2%}, 95 % CI {gaps[0]:+.2%} to {gaps[0]:+.2%}, {len(seeds)} seeds)"


def test_every_claim_has_its_numbers(tmp_path):
    write_suites(tmp_path, seeds=(1337, 1338))
    rows = summary.summarize(scaling.load_runs(tmp_path))
    assert {claim for claim, _ in rows} == {f"C{i}" for i in range(1, 10)} | {"noise"}  # c4 has 2 seeds
    text = "\n".join(f"{claim}: {line}" for claim, line in rows)
    # the synthetic best LRs: 2e-3 for cosine, 1e-3 with a cooldown, each inside its grid but wsd's (0.5e-3 ... 2e-3)
    assert "C3: best peak LR: cosine 0.002 of 0.001, 0.002, 0.004, 1x cosine's; " in text
    assert "wsd/1-sqrt 0.001 of 0.0005, 0.001, 0.002, 0.5x cosine's" in text
    # per size: trunk to 320 + cooldowns of 40, 60, 80 steps = 500 steps against cosine runs of 900
    assert text.count(f"trunk + 3 cooldowns cost {500 / 900:.3f} of 3 cosine runs") == 3
    assert "C8: fit to cosine runs: L = " in text and "C8: fit to cooldown runs: L = " in text


def test_cooldown_shapes_with_seeds_and_paired_verdicts(tmp_path):
    write_suites(tmp_path, suites=("c4_cooldown_shapes",), seeds=(1337, 1338))
    runs = scaling.load_runs(tmp_path)["c4_cooldown_shapes"]
    final = finals(runs)
    rows = summary.shape_rows(runs)
    assert [claim for claim, _ in rows] == ["C4", "C4"]
    linear = [final[400, "linear", s] for s in (1337, 1338)]
    sqrt = [final[400, "1-sqrt", s] for s in (1337, 1338)]
    assert linear[0] != linear[1]  # the seeds differ
    mean, std = (linear[0] + linear[1]) / 2, abs(linear[0] - linear[1]) / math.sqrt(2)
    assert rows[1][1].startswith(f"400 steps, 20% cooldown: linear {mean:.3f} ± {std:.3f} (2 seeds), 1-sqrt ")
    # the same seed offset in both: the paired gap is the same at both seeds, so it is far outside the noise
    gap = (linear[0] / sqrt[0] + linear[1] / sqrt[1]) / 2 - 1
    assert f"linear vs 1-sqrt: 1-sqrt better ({gap:+.2%}, 95 % CI {gap:+.2%} to {gap:+.2%}, 2 seeds)" in rows[1][1]
    shapes = ["linear", "1-sqrt", "cosine", "square", "1-x^0.7"]

    def seeds(shape):
        values = [final[400, shape, s] for s in (1337, 1338)]
        return f"{shape} {statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f} (2 seeds)"

    def versus(shape):  # every shape against 1-sqrt, each verdict from its own paired gaps
        g = statistics.fmean(final[400, shape, s] / final[400, "1-sqrt", s] - 1 for s in (1337, 1338))
        better = shape if g < 0 else "1-sqrt"
        return f"; {shape} vs 1-sqrt: {better} better ({g:+.2%}, 95 % CI {g:+.2%} to {g:+.2%}, 2 seeds)"
    assert rows[1] == ("C4", "400 steps, 20% cooldown: " + ", ".join(map(seeds, shapes))
                       + "".join(versus(shape) for shape in shapes if shape != "1-sqrt"))


def test_the_noise_rows_separate_seeds_from_data_orders(tmp_path):
    for name, seed, data_seed in (("a", 1337, None), ("b", 1338, None), ("c", 1339, None), ("d", 1337, 1338),
                                  ("e", 1337, 1339)):
        write_run(tmp_path, "c4_cooldown_shapes", name, schedule="wsd", cooldown_shape="1-sqrt", max_steps=200,
                  lr=1e-3, seed=seed, data_seed=data_seed)
    runs = scaling.load_runs(tmp_path)["c4_cooldown_shapes"]
    ppl = {r["name"]: final_ppl(r) for r in runs}
    seeds, orders = summary.spread([ppl[n] for n in "abc"]), summary.spread([ppl[n] for n in "ade"])
    assert seeds.n == orders.n == 3 and seeds.std > 0 and orders.std > 0 and seeds.mean != orders.mean
    assert summary.noise_rows(runs) == [("noise", (
        f"200 steps, wsd/1-sqrt 20 %: seeds: {seeds} ({seeds.std / seeds.mean:.2%} of the mean, 3 runs); "
        f"data order only: {orders} ({orders.std / orders.mean:.2%} of the mean, 3 runs)"))]


def test_lr_rows_flag_an_optimum_on_the_grid_edge(tmp_path):
    for lr in (1e-3, 2e-3):  # cosine's synthetic optimum is 2e-3: the top of this grid
        for seed in (1337, 1338):
            write_run(tmp_path, "c2_c3_lr_sweep", f"cos{lr:g}_{seed}", schedule="cosine", max_steps=200, lr=lr,
                      seed=seed)
            write_run(tmp_path, "c2_c3_lr_sweep", f"wsd{lr:g}_{seed}", schedule="wsd", cooldown_shape="linear",
                      max_steps=200, lr=lr / 2, seed=seed)
    c2, c3 = summary.lr_rows(scaling.load_runs(tmp_path)["c2_c3_lr_sweep"])
    assert c3 == ("C3", "best peak LR: cosine 0.002 of 0.001, 0.002 (the grid's edge: the optimum may lie beyond), "
                        "1x cosine's; wsd/linear 0.001 of 0.0005, 0.001 (the grid's edge: the optimum may lie "
                        "beyond), 0.5x cosine's")
    # each at its best LR
    ppl = {r["name"]: final_ppl(r) for r in scaling.load_runs(tmp_path)["c2_c3_lr_sweep"]}
    gap, interval = paired(ppl, "wsd0.002", "cos0.002")
    assert gap < 0  # the synthetic law favours the cooldown
    assert c2 == ("C2", f"best final ppl: cosine {seed_spread(ppl, 'cos0.002')} at lr 0.002 (2 seeds); wsd/linear "
                        f"{seed_spread(ppl, 'wsd0.002')} at lr 0.001 (2 seeds); wsd/linear better {interval}")


def test_one_seed_gets_no_verdict_and_an_optimum_inside_the_grid_no_warning(tmp_path):
    for lr in (1e-3, 2e-3, 4e-3):  # cosine's synthetic optimum, 2e-3, and wsd's, 1e-3, inside their grids
        write_run(tmp_path, "c2_c3_lr_sweep", f"cos{lr:g}", schedule="cosine", max_steps=200, lr=lr)
        write_run(tmp_path, "c2_c3_lr_sweep", f"wsd{lr:g}", schedule="wsd", cooldown_shape="linear", max_steps=200,
                  lr=lr / 2)
    for shape in ("linear", "1-sqrt"):
        write_run(tmp_path, "c4_cooldown_shapes", shape, schedule="wsd", cooldown_shape=shape, max_steps=200, lr=1e-3)
    write_run(tmp_path, "c4_cooldown_shapes", "cosine", schedule="cosine", max_steps=200, lr=1e-3)  # no cooldown
    write_run(tmp_path, "c4_cooldown_shapes", "alone", schedule="wsd", cooldown_shape="1-sqrt", max_steps=400,
              lr=1e-3)  # one run at 400 steps
    suites = scaling.load_runs(tmp_path)
    ppl = {r["name"]: final_ppl(r) for runs in suites.values() for r in runs}
    assert summary.lr_rows(suites["c2_c3_lr_sweep"]) == [
        ("C2", f"best final ppl: cosine {ppl['cos0.002']:.3f} at lr 0.002 (1 seed); wsd/linear {ppl['wsd0.002']:.3f} "
               "at lr 0.001 (1 seed); one seed: no verdict"),
        ("C3", "best peak LR: cosine 0.002 of 0.001, 0.002, 0.004, 1x cosine's; wsd/linear 0.001 of 0.0005, 0.001, "
               "0.002, 0.5x cosine's")]
    assert summary.shape_rows(suites["c4_cooldown_shapes"]) == [
        ("C4", f"200 steps, 20% cooldown: linear {ppl['linear']:.3f} (1 seed), 1-sqrt {ppl['1-sqrt']:.3f} (1 seed); "
               "linear vs 1-sqrt: one seed"),
        ("C4", f"400 steps, 20% cooldown: 1-sqrt {ppl['alone']:.3f} (1 seed)")]


def test_cosine_better_names_cosine(tmp_path):
    for seed in (1337, 1338):  # wsd only far from its optimum: 8e-3, three octaves above it
        write_run(tmp_path, "c2_c3_lr_sweep", f"cos_{seed}", schedule="cosine", max_steps=200, lr=2e-3, seed=seed)
        write_run(tmp_path, "c2_c3_lr_sweep", f"wsd_{seed}", schedule="wsd", cooldown_shape="linear", max_steps=200,
                  lr=8e-3, seed=seed)
    ppl = {r["name"]: final_ppl(r) for r in scaling.load_runs(tmp_path)["c2_c3_lr_sweep"]}
    gap, interval = paired(ppl, "wsd", "cos")
    c2, _ = summary.lr_rows(scaling.load_runs(tmp_path)["c2_c3_lr_sweep"])
    assert gap > 0 and c2[1].endswith(f"at lr 0.008 (2 seeds); cosine better {interval}")


def test_schedulefree_rows_take_each_betas_best_lr(tmp_path):
    for lr in (1e-3, 4e-3):
        for seed in (1337, 1338):
            write_run(tmp_path, "c7_schedulefree", f"sf{lr:g}_{seed}", optimizer="adamw_schedulefree",
                      schedule="constant", beta1=0.9, beta2=0.95, max_steps=400, lr=lr, seed=seed)
    for seed in (1337, 1338):
        write_run(tmp_path, "c7_schedulefree", f"wsd_{seed}", schedule="wsd", max_steps=400, lr=1e-3, seed=seed)
    (row,) = summary.schedulefree_rows(scaling.load_runs(tmp_path)["c7_schedulefree"])
    ppl = {r["name"]: final_ppl(r) for r in scaling.load_runs(tmp_path)["c7_schedulefree"]}
    gap, interval = paired(ppl, "sf0.001", "wsd")
    assert gap > 0  # the synthetic law favours the cooldown
    # schedule-free's best LR is the lower end of its grid (0.001, 0.004); the cooldown has one LR: no edge
    assert row == ("C7", f"400 steps: schedule-free (0.9, 0.95) {seed_spread(ppl, 'sf0.001')} at lr 0.001 (2 seeds) "
                         f"(the grid's edge); wsd/1-sqrt {seed_spread(ppl, 'wsd')} at lr 0.001 (2 seeds); best "
                         f"schedule-free vs the cooldown: the cooldown better {interval}")


def test_c7_rows_name_the_best_betas_and_say_when_there_is_one_seed_or_no_cooldown(tmp_path):
    def free(name, betas, lr, length, seed=1337):
        write_run(tmp_path, "c7_schedulefree", name, optimizer="adamw_schedulefree", schedule="constant",
                  beta1=betas[0], beta2=betas[1], max_steps=length, lr=lr, seed=seed)
    for seed in (1337, 1338):  # 400 steps: betas a far from the optimum (4e-3), b at it; the cooldown far off
        free(f"a_{seed}", (0.9, 0.95), 4e-3, 400, seed)
        for lr in (1e-4, 3e-4, 1e-3):  # b's optimum at the top of its grid
            free(f"b{lr:g}_{seed}", (0.95, 0.99), lr, 400, seed)
        write_run(tmp_path, "c7_schedulefree", f"wsd_{seed}", schedule="wsd", max_steps=400, lr=8e-3, seed=seed)
    free("c", (0.9, 0.95), 1e-3, 300)  # 300 steps, one seed of each
    write_run(tmp_path, "c7_schedulefree", "wsd300", schedule="wsd", max_steps=300, lr=1e-3)
    free("d", (0.9, 0.95), 1e-3, 200)  # 200 steps: no cooldown to compare with, one seed at two LRs
    free("d4", (0.9, 0.95), 4e-3, 200)
    ppl = {r["name"]: final_ppl(r) for r in scaling.load_runs(tmp_path)["c7_schedulefree"]}
    gap, interval = paired(ppl, "b0.001", "wsd")
    assert gap < 0  # the cooldown at 8e-3 is far from its optimum: schedule-free better
    assert summary.schedulefree_rows(scaling.load_runs(tmp_path)["c7_schedulefree"]) == [
        ("C7", f"200 steps: schedule-free (0.9, 0.95) {ppl['d']:.3f} at lr 0.001 (1 seed) (the grid's edge)"),
        ("C7", f"300 steps: schedule-free (0.9, 0.95) {ppl['c']:.3f} at lr 0.001 (1 seed); wsd/1-sqrt "
               f"{ppl['wsd300']:.3f} at lr 0.001 (1 seed); best schedule-free vs the cooldown: one seed"),
        ("C7", f"400 steps: schedule-free (0.9, 0.95) {seed_spread(ppl, 'a')} at lr 0.004 (2 seeds); schedule-free "
               f"(0.95, 0.99) {seed_spread(ppl, 'b0.001')} at lr 0.001 (2 seeds) (the grid's edge); wsd/1-sqrt "
               f"{seed_spread(ppl, 'wsd')} at lr 0.008 (2 seeds); best schedule-free vs the cooldown: schedule-free "
               f"better {interval}")]


def test_c7_takes_c4s_1_sqrt_cooldown_at_a_length_where_it_has_none(tmp_path):
    for length, seed in itertools.product((200, 400), (1337, 1338)):
        write_run(tmp_path, "c7_schedulefree", f"sf{length}_{seed}", optimizer="adamw_schedulefree",
                  schedule="constant", max_steps=length, lr=1e-3, seed=seed)
        for shape in ("linear", "1-sqrt"):
            write_run(tmp_path, "c4_cooldown_shapes", f"{shape}{length}_{seed}", schedule="wsd", max_steps=length,
                      cooldown_steps=length // 5, cooldown_shape=shape, lr=1e-3, seed=seed)
        write_run(tmp_path, "c4_cooldown_shapes", f"short{length}_{seed}", schedule="wsd", max_steps=length,
                  cooldown_steps=length // 10, cooldown_shape="1-sqrt", lr=1e-3, seed=seed)
    for seed in (1337, 1338):  # at 200 steps c7 has its own cooldown: c4's is not added
        write_run(tmp_path, "c7_schedulefree", f"wsd200_{seed}", schedule="wsd", max_steps=200, lr=1e-3, seed=seed,
                  cooldown_shape="1-sqrt")
    runs = summary.schedulefree_runs(scaling.load_runs(tmp_path))
    names = sorted(cfg(r)["out_dir"].removeprefix("out/sweeps/") for r in runs)
    assert [n for n in names if n.startswith("c4")] == ["c4_cooldown_shapes/1-sqrt400_1337",
                                                        "c4_cooldown_shapes/1-sqrt400_1338"]
    assert len(names) == 8
    rows = summary.schedulefree_rows(runs)
    assert [text.split(":")[0] for _, text in rows] == ["200 steps", "400 steps"]
    assert "wsd/1-sqrt " in rows[1][1] and "; best schedule-free vs the cooldown: " in rows[1][1]


def test_scaling_uses_each_sizes_best_lr(tmp_path):
    for lr in (2e-3, 8e-3):  # 2e-3 is the synthetic cosine optimum
        for length in (200, 400):
            write_run(tmp_path, "c8_scaling", f"cos{lr:g}_{length}", schedule="cosine", max_steps=length, lr=lr)
    runs = scaling.load_runs(tmp_path)["c8_scaling"]
    kept = scaling.best_lrs(runs)
    assert sorted((cfg(r)["lr"], cfg(r)["max_steps"]) for r in kept) == [(2e-3, 200), (2e-3, 400)]
    assert scaling.report(runs)[0].startswith(f"{scaling.size_label(runs[0])}: best LRs cosine 0.002 (of 0.002, 0.008)")


def test_summary_numbers_of_the_merges(tmp_path):
    write_suites(tmp_path, suites=("c9_merge",))
    suites = scaling.load_runs(tmp_path)
    runs = [r for r in suites["c9_merge"] if not r["info"].get("merge")]
    trunk = next(r for r in runs if cfg(r)["schedule"] == "constant")
    logged = {r["step"]: r for r in trunk["metrics"] if "val_loss" in r}
    cooldown = {(cfg(r)["max_steps"], cfg(r)["cooldown_shape"]): final_ppl(r) for r in runs if r is not trunk}
    merged = {(n, shape): math.exp(loss) for shape, losses in MERGED_LOSSES.items() for n, loss in losses.items()}
    assert [row for row in summary.summarize(suites) if row[0] == "C9"] == [("C9", (
        f"{n} steps, ppl: constant trunk {math.exp(logged[n]['val_loss']):.3f}, "
        f"trunk + SWA {math.exp(logged[n]['val_loss_swa']):.3f}, merge uniform {merged[n, 'uniform']:.3f}, "
        f"merge linear {merged[n, 'linear']:.3f}, cooldown linear {cooldown[n, 'linear']:.3f}, "
        f"merge 1-sqrt {merged[n, '1-sqrt']:.3f}, cooldown 1-sqrt {cooldown[n, '1-sqrt']:.3f}")) for n in (200, 400)]


@pytest.mark.parametrize("suite", ["c1_cosine_lengths", "c5_cooldown_lengths", "c6_swa"])
def test_single_seed_suites_list_their_runs(tmp_path, suite):
    write_suites(tmp_path, suites=(suite,))
    rows = summary.summarize(scaling.load_runs(tmp_path))
    assert rows and all(text and "±" not in text for _, text in rows)


def test_c6_takes_c9s_trunk_and_its_longest_1_sqrt_cooldown(tmp_path):
    write_suites(tmp_path, suites=("c6_swa", "c9_merge"))
    suites = scaling.load_runs(tmp_path)
    runs = summary.averaging_runs(suites)
    assert sorted((cfg(r)["schedule"], cfg(r)["max_steps"], cfg(r)["cooldown_shape"] if cfg(r)["schedule"] == "wsd"
                   else None, bool(cfg(r)["swa"])) for r in runs) == [
        ("constant", 400, None, True), ("cosine", 400, None, True), ("wsd", 400, "1-sqrt", False)]
    rows = summary.averaging_rows(runs)
    assert [text.split(":")[0] for _, text in rows] == ["constant 400 steps", "cosine 400 steps", "wsd/1-sqrt 400 steps"]
    assert "+SWA" in rows[0][1] and "+SWA" in rows[1][1] and "+SWA" not in rows[2][1]
