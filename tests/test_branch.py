"""branch.py: the plan, branches equal to single wsd runs, skipping finished branches, missing checkpoints."""
import json
import os
import subprocess
import sys

import pytest

import branch
import train
from helpers import REPO, TINY_MODEL
from lab.config import ConfigError


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


def test_a_branch_that_died_before_its_first_checkpoint_starts_again(tmp_path, tiny_data, capsys):
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--log_interval=1"]
    trunk = tmp_path / "trunk"
    train.main([*common, "--schedule=constant", "--max_steps=12", "--keep_ckpt_steps=[8]", f"--out_dir={trunk}"])
    dead = tmp_path / "trunk-to12-cd4"  # what a branch leaves when killed before its first checkpoint
    dead.mkdir()
    started = dict(json.loads((trunk / "config.json").read_text()),
                   history=[dict(event="branch", step=8, **{"from": str(trunk / "ckpt_0000008")})])
    (dead / "config.json").write_text(json.dumps(started))
    (dead / "metrics.jsonl").write_text(json.dumps(dict(step=8, val_loss=9.9)) + "\n")
    capsys.readouterr()
    branch.main([*common, f"--trunk={trunk}", "--lengths=[12]", "--cooldown_steps_list=[4]"])
    assert f"starting {dead}" in capsys.readouterr().out
    assert sorted(losses(dead)) == list(range(9, 13))
    first = json.loads((dead / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 8 and first["origin"]["step"] == 8 and first["val_loss"] != 9.9
    assert json.loads((dead / "config.json").read_text())["config"]["schedule"] == "wsd"


def test_a_run_of_yours_where_a_branch_goes_is_refused_not_overwritten(tmp_path, tiny_data):
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--log_interval=1", "--schedule=constant"]
    trunk, yours = tmp_path / "trunk", tmp_path / "trunk-to12-cd4"
    train.main([*common, "--max_steps=12", "--keep_ckpt_steps=[8]", f"--out_dir={trunk}"])
    train.main([*common, "--max_steps=4", "--ckpt_interval=100", f"--out_dir={yours}"])  # no checkpoint: stopped early
    (yours / "ckpt_0000004").rename(tmp_path / "elsewhere")
    before = {p.name: p.read_bytes() for p in yours.iterdir()}
    with pytest.raises(ConfigError, match=rf"^{yours} holds a run that did not start from {trunk / 'ckpt_0000008'} "
                                          r"\(it started from scratch\): move it away, or give the branches another "
                                          r"trunk name$"):
        branch.main([*common, f"--trunk={trunk}", "--lengths=[12]", "--cooldown_steps_list=[4]"])
    assert {p.name: p.read_bytes() for p in yours.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["--lengths=['300']"], "lengths=['300']: each item must be int >= 1"),
    (["--lengths=[300]", "--cooldown_fracs=['a']"], "cooldown_fracs=['a']: each item must be float in (0, 1]"),
    (["--lengths=[300]", "--cooldown_steps_list=[0]"], "cooldown_steps_list=[0]: each item must be int >= 1"),
    (["--lengths=[300]", "--cooldown_steps_list=[400]"], "the branch of length 300 with a cooldown of 400 steps: "
                                                        "cooldown_steps=400: the cooldown is longer than the run"),
    (["--lengths=[300]", "--cooldown_fracs=[]"], "give the cooldowns, e.g. --cooldown_fracs=[0.2]"),
    # the second branch's cooldown would start at step 15, inside the warmup: found before the first one trains
    (["--lengths=[100,30]", "--cooldown_fracs=[0.5]", "--warmup_steps=20"],
     "the branch of length 30 with a cooldown of fraction 0.5: cooldown_frac=0.5 of max_steps=30 = 15 steps: the "
     "cooldown would start at step 15, inside the warmup (warmup_steps=20)"),
])
def test_bad_branches_are_refused_before_any_runs(tmp_path, args, message):
    with pytest.raises(ConfigError) as error:
        branch.main([f"--trunk={tmp_path}/trunk", *args])
    assert str(error.value).startswith(message)
    assert not list(tmp_path.iterdir())


def test_bad_lengths_are_one_line_errors_from_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "branch.py", f"--trunk={tmp_path}/trunk", "--lengths=['300']", "--plan"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "error: lengths=['300']: each item must be int >= 1\n"


def test_branches_under_torchrun_with_three_processes_equal_one_process(tmp_path, tiny_data):
    """Rank 0 decides which branch runs; 3 processes train each branch like one (up to float32 summation order),
    and a second invocation skips them on every process."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--log_interval=1", "--eval_interval=100", "--batch_size=6",
              "--dtype=float32"]
    trunk = tmp_path / "trunk"
    train.main([*common, "--schedule=constant", "--max_steps=16", "--keep_ckpt_steps=[12]", f"--out_dir={trunk}"])
    single = tmp_path / "single"
    train.main([*common, "--schedule=wsd", "--max_steps=16", "--cooldown_steps=4", f"--out_dir={single}"])

    def torchrun():
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3",
                                 str(REPO / "branch.py"), *common, f"--trunk={trunk}", "--lengths=[16]",
                                 "--cooldown_fracs=[0.25]"], capture_output=True, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    assert torchrun().count(f"starting {tmp_path / 'trunk-to16-cd4'}") == 1
    branched, reference = losses(tmp_path / "trunk-to16-cd4"), losses(single)
    assert sorted(branched) == list(range(13, 17))
    assert all(branched[s] == pytest.approx(reference[s], rel=1e-5) for s in branched)
    assert torchrun().count("trunk-to16-cd4 already finished, skipped") == 1
