"""lab/suites.py: the plans of every suite at each scale: the runs' names, lengths, branch points, seeds and settings,
the long scale's suites, and the paper scale's settings."""
import pytest

import sweep
from lab import suites


def plan(suite, scale="cpu"):
    return [(run.name, run.overrides["max_steps"], run.branch_step) for run in suites.SUITES[suite](suites.SCALES[scale])]


def test_cpu_plans_name_the_expected_runs():
    assert plan("c1_cosine_lengths") == [("cosine_300", 300, None), ("cosine_600", 600, None),
                                         ("cosine_1200", 1200, None), ("cosine_cycle300_600", 600, None)]
    assert suites.SUITES["c1_cosine_lengths"](suites.SCALES["cpu"])[3].overrides["cycle_steps"] == 300
    seeds = ("_seed1337", "_seed1338")
    assert [name for name, _, _ in plan("c2_c3_lr_sweep")] == [
        f"cosine_lr{lr}{seed}" for lr in ("0.0015", "0.00212", "0.003", "0.00424", "0.006", "0.00849") for seed in seeds] + [
        f"wsd_linear_lr{lr}{seed}" for lr in ("0.00075", "0.00106", "0.0015", "0.00212", "0.003") for seed in seeds]
    shapes = ("linear", "1-sqrt", "cosine", "square", "1-x0.3", "1-x0.7")
    c4 = plan("c4_cooldown_shapes")
    assert c4[:2 * 13] == [run for seed in seeds for run in [(f"constant{seed}", 960, None)] + [
        (f"constant{seed}-to{n}-cd{c}-{shape}", n, n - c) for n, c in ((300, 60), (1200, 240)) for shape in shapes]]
    # the noise study: a third seed, and the first seed's initialization with two other data orders
    assert c4[2 * 13:] == [run for tag in ("_seed1339", "_seed1337_data1338", "_seed1337_data1339")
                           for run in ((f"constant{tag}", 960, None), (f"constant{tag}-to300-cd60-1-sqrt", 300, 240),
                                       (f"constant{tag}-to1200-cd240-1-sqrt", 1200, 960))]
    assert plan("c5_cooldown_lengths") == [("constant", 1170, None)] + [
        (f"constant-to{n}-cd{c}", n, n - c) for n, cooldowns in ((600, (15, 30, 60, 120, 240)),
                                                                (1200, (30, 60, 120, 240, 480))) for c in cooldowns]
    assert plan("c6_swa") == [("cosine_swa_1200", 1200, None)]  # with c9_merge's constant_swa and its cooldown
    assert [name for name, _, _ in plan("c7_schedulefree")] == [
        f"schedulefree_b{betas}_lr{lr}{seed}" for betas, lrs in (("0.9_0.95", ("0.0015", "0.003", "0.006", "0.012")),
                                                                 ("0.95_0.99", ("0.0015", "0.003", "0.006")))
        for lr in lrs for seed in seeds] + [f"wsd_600_lr0.003{seed}" for seed in seeds]
    c8 = plan("c8_scaling")
    assert len(c8) == 2 * 2 * 7 + 2 * 7 and c8[:7] == [
        ("cpu_130k_cosine_300_lr0.006", 300, None), ("cpu_130k_cosine_600_lr0.006", 600, None),
        ("cpu_130k_cosine_1200_lr0.006", 1200, None), ("cpu_130k_constant_lr0.006", 960, None),
        ("cpu_130k_constant_lr0.006-to300-cd60", 300, 240), ("cpu_130k_constant_lr0.006-to600-cd120", 600, 480),
        ("cpu_130k_constant_lr0.006-to1200-cd240", 1200, 960)]
    assert [name for name, _, _ in c8[::7]] == [f"{m}_cosine_300_lr{lr}" for m in ("cpu_130k", "cpu_250k")
                                               for lr in ("0.006", "0.003")] + ["cpu_500k_cosine_300",
                                                                                "cpu_tiny_cosine_300"]


def test_the_long_scale_runs_c4_and_c7_only_at_4800_and_2400_steps(capsys, tmp_path):
    long = suites.SCALES["long"]
    c4 = plan("c4_cooldown_shapes", "long")
    assert c4[:10] == [("constant_seed1337", 3840, None)] + [
        (f"constant_seed1337-to{n}-cd{c}-{shape}", n, n - c) for n, c in ((600, 120), (2400, 480), (4800, 960))
        for shape in ("linear", "1-sqrt", "1-x0.3")] and len(c4) == 20
    assert {run.overrides["seed"] for run in suites.SUITES["c4_cooldown_shapes"](long)} == {1337, 1338}
    c7 = plan("c7_schedulefree", "long")
    assert {steps for _, steps, _ in c7} == {2400}
    # the cooldown at 2400 steps is c4's 1-sqrt branch (summary.schedulefree_runs): c7 trains schedule-free only
    assert [name for name, _, _ in c7] == [f"schedulefree_b{betas}_lr{lr}_seed{seed}" for betas, lr in (
        ("0.9_0.95", "0.0015"), ("0.9_0.95", "0.003"), ("0.9_0.95", "0.006"), ("0.95_0.99", "0.003"))
        for seed in (1337, 1338)]
    assert ("constant_seed1337-to2400-cd480-1-sqrt", 2400, 1920) in c4
    entries = sweep.main(["all", "--scale=long", "--plan", "--gflops=100", f"--results={tmp_path}", "--device=cpu"])
    assert {suite for suite, _, _ in entries} == {"c4_cooldown_shapes", "c7_schedulefree"}
    assert f"scale long: {tmp_path}/<suite>/<run>/ from out/sweeps_long/" in capsys.readouterr().out


def test_cpu_runs_have_the_settings_their_claims_need():
    s = suites.SCALES["cpu"]
    runs = {r.name: r.overrides for suite in suites.SUITES.values() for r in suite(s)}
    assert runs["wsd_linear_lr0.003_seed1338"] == dict(schedule="wsd", lr=3e-3, max_steps=600, cooldown_frac=0.2,
                                                       cooldown_shape="linear", model="cpu_tiny", seed=1338)
    assert runs["constant_seed1338-to1200-cd240-1-x0.3"]["cooldown_shape"] == "1-x^0.3"
    assert runs["constant_seed1338-to1200-cd240-1-x0.3"]["seed"] == runs["constant_seed1338"]["seed"] == 1338
    assert runs["constant_seed1337_data1339"]["seed"] == 1337 and runs["constant_seed1337_data1339"]["data_seed"] == 1339
    assert "data_seed" not in runs["constant_seed1339"]
    assert runs["constant_swa"]["swa"] and runs["cosine_swa_1200"]["swa"]
    assert not runs["constant_swa-to1200-cd240-1-sqrt"].get("swa")  # the cooldown it is compared with (c9's)
    assert runs["schedulefree_b0.95_0.99_lr0.003_seed1337"] == dict(
        model="cpu_tiny", optimizer="adamw_schedulefree", schedule="constant", lr=3e-3, max_steps=600, beta1=0.95,
        beta2=0.99, seed=1337)
    assert runs["cpu_250k_constant_lr0.003"]["swa"] and runs["cpu_250k_constant_lr0.003"]["lr"] == 1.5e-3
    assert runs["cpu_250k_cosine_600_lr0.006"]["lr"] == 6e-3 and runs["cpu_500k_constant"]["lr"] == 3e-3
    cfg = sweep.run_config(s, "c1_cosine_lengths", suites.Run("cosine_300", runs["cosine_300"]), "out/x", None)
    assert (cfg["batch_size"], cfg["seq_len"], cfg["warmup_steps"], cfg["data_dir"], cfg["out_dir"]) == (
        16, 256, 30, "data/stdlib-bytes", "out/x/c1_cosine_lengths/cosine_300")


@pytest.mark.parametrize("scale", list(suites.SCALES))
@pytest.mark.parametrize("suite", list(suites.SUITES))
def test_trunks_come_first_and_keep_their_branch_points(suite, scale):
    runs = suites.SUITES[suite](suites.SCALES[scale])
    names = [r.name for r in runs]
    assert len(set(names)) == len(names)
    for index, run in enumerate(runs):
        if run.trunk is None:
            continue
        trunk = runs[names.index(run.trunk)]
        assert names.index(run.trunk) < index and trunk.trunk is None
        assert trunk.overrides["schedule"] == "constant" and run.overrides["schedule"] == "wsd"
        assert run.branch_step in trunk.overrides["keep_ckpt_steps"] and run.branch_step <= trunk.overrides["max_steps"]
        assert run.overrides["max_steps"] - run.overrides["cooldown_steps"] == run.branch_step
        assert (run.overrides["model"], run.overrides["lr"]) == (trunk.overrides["model"], trunk.overrides["lr"])
    for trunk in (r for r in runs if "keep_ckpt_steps" in r.overrides):  # every kept checkpoint is used
        points = sorted({r.branch_step for r in runs if r.trunk == trunk.name})
        if suite == "c9_merge":  # and the merges' checkpoints, over each cooldown's window
            points = sorted({s for start, end in suites.merge_windows(runs) for s in trunk.overrides["keep_ckpt_steps"]
                             if start <= s <= end})
        assert trunk.overrides["keep_ckpt_steps"] == points


def test_c9_merge_plan_names_its_runs_and_keeps_the_windows_checkpoints():
    assert plan("c9_merge") == [("constant_swa", 1200, None)] + [
        (f"constant_swa-to{n}-cd{c}-{shape}", n, n - c) for n, c in ((300, 60), (600, 120), (1200, 240))
        for shape in ("linear", "1-sqrt")]
    runs = suites.SUITES["c9_merge"](suites.SCALES["cpu"])
    assert runs[0].overrides["swa"] and runs[0].overrides["schedule"] == "constant"
    assert runs[0].overrides["keep_ckpt_steps"] == [*range(240, 301, 20), *range(480, 601, 20), *range(960, 1201, 20)]
    assert suites.merge_windows(runs) == [(240, 300), (480, 600), (960, 1200)]
    assert {r.overrides["cooldown_shape"] for r in runs[1:]} == {"linear", "1-sqrt"}
    quick = suites.SUITES["c9_merge"](suites.SCALES["quick"])  # every 7 steps: round(20 / 3)
    assert quick[0].overrides["keep_ckpt_steps"][:4] == [80, 87, 94, 100] and len(quick) == 7


def test_quick_is_smaller_and_paper_uses_the_papers_settings():
    assert len(plan("c2_c3_lr_sweep", "quick")) == 4 and plan("c1_cosine_lengths", "quick")[0] == ("cosine_100", 100, None)
    paper = suites.SCALES["paper"]
    cfg = sweep.run_config(paper, "c1_cosine_lengths", suites.SUITES["c1_cosine_lengths"](paper)[0], "out/p", None)
    assert (cfg["model"], cfg["seq_len"], cfg["batch_size"], cfg["warmup_steps"], cfg["data_dir"], cfg["lr"]) == (
        "124m", 512, 200, 300, "data/slimpajama-gpt2", 1e-3)
    c8 = {r.name: r.overrides for r in suites.SUITES["c8_scaling"](paper)}
    # 1.5B, 2.6B, 3.6B tokens of 200 x 512 = 102400 per step (configs/124m.py says the same)
    assert [c8[f"124m_cosine_{n}"]["max_steps"] for n in (14648, 25391, 35156)] == [14648, 25391, 35156]
    assert c8["124m_constant"]["keep_ckpt_steps"] == [11718, 20313, 28125]
    assert (c8["33m_cosine_9766"]["lr"], c8["33m_constant"]["lr"]) == (2e-3, 1e-3)
    assert (c8["360m_cosine_99609"]["lr"], c8["360m_constant"]["lr"]) == (1e-3, 5e-4)
    assert len([n for n in c8 if n.endswith("_constant")]) == 8
