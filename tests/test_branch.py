"""branch.py: the plan, branches equal to single wsd runs, skipping finished branches, missing checkpoints."""
import json

import pytest

import branch
import train
from config import ConfigError
from conftest import TINY_MODEL


def losses(out):
    return {r["step"]: r["train_loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "train_loss" in r}


def test_plan_names_branch_points_and_out_dirs(tmp_path, capsys):
    plans = branch.main([f"--trunk={tmp_path}/trunk", "--lengths=[40,60]", "--cooldown_fracs=[0.25,0.1]", "--plan"])
    assert [(n, c, k, d.name) for n, c, k, d in plans] == [
        (40, 10, 30, "trunk-to40-cd10"), (40, 4, 36, "trunk-to40-cd4"),
        (60, 15, 45, "trunk-to60-cd15"), (60, 6, 54, "trunk-to60-cd6")]
    assert "--keep_ckpt_steps=[30,36,45,54]" in capsys.readouterr().out
    plans = branch.main([f"--trunk={tmp_path}/trunk", "--lengths=[40]", "--cooldown_steps_list=[5,20]", "--plan"])
    assert [(c, k) for _, c, k, _ in plans] == [(5, 35), (20, 20)]


def test_branches_equal_single_wsd_runs_and_are_skipped_when_done(tmp_path, tiny_data, capsys):
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--log_interval=1", "--eval_interval=100"]
    trunk = tmp_path / "trunk"
    train.main([*common, "--schedule=constant", "--max_steps=32", "--keep_ckpt_steps=[18,24]", f"--out_dir={trunk}"])
    args = [*common, f"--trunk={trunk}", "--lengths=[24,32]", "--cooldown_fracs=[0.25]", "--cooldown_shape=linear"]
    branch.main(args)
    single = tmp_path / "single"
    train.main([*common, "--schedule=wsd", "--max_steps=24", "--cooldown_steps=6", "--cooldown_shape=linear",
                f"--out_dir={single}"])
    assert losses(tmp_path / "trunk-to24-cd6") == {s: v for s, v in losses(single).items() if s > 18}
    to32 = losses(tmp_path / "trunk-to32-cd8")  # cools down where the trunk kept its constant LR
    assert sorted(to32) == list(range(25, 33)) and to32[25] == losses(trunk)[25] and to32[32] != losses(trunk)[32]
    capsys.readouterr()
    branch.main(args)  # everything is done: nothing runs again
    out = capsys.readouterr().out
    assert "trunk-to24-cd6 already finished, skipped" in out and "trunk-to32-cd8 already finished, skipped" in out


def test_missing_trunk_checkpoint_is_reported_before_any_branch_runs(tmp_path, tiny_data):
    trunk = tmp_path / "trunk"
    train.main([*TINY_MODEL, f"--data_dir={tiny_data}", "--schedule=constant", "--max_steps=12",
                "--keep_ckpt_steps=[8]", f"--out_dir={trunk}"])
    with pytest.raises(ConfigError, match=r"has no checkpoint at step\(s\) \[4, 6\] \(it has \[8, 12\]\): run the "
                                          r"trunk with --keep_ckpt_steps=\[4,6,8\]"):
        branch.main([*TINY_MODEL, f"--data_dir={tiny_data}", f"--trunk={trunk}", "--lengths=[8,10]",
                     "--cooldown_steps_list=[2,4]"])
    assert not list(tmp_path.glob("trunk-to*"))
