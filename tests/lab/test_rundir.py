"""lab/rundir.py: what a resume or a branch may change, config.json's history, the metrics log on resume, how the
same command starts, continues or leaves alone the run of its out_dir (init_from=auto, branch.py, sweep.py)."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

import train
from helpers import TINY_MODEL, fingerprint_of
from lab import parallel, rundir, settings
from lab.config import ConfigError


def run(tmp_path, name, data, *extra):
    out = tmp_path / name
    train.main([*TINY_MODEL, f"--data_dir={data}", f"--out_dir={out}", "--log_interval=2", "--eval_interval=4",
                *extra])
    return out


def history(out):
    return json.loads((out / "config.json").read_text())["history"]


def test_resume_refuses_every_change_of_what_the_run_is_in_one_line(tmp_path, tiny_data):
    run(tmp_path, "run", tiny_data, "--max_steps=8", "--schedule=constant")
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ConfigError) as info:  # the report's case: another seed, batch_size and lr
        run(tmp_path, "run", tiny_data, "--max_steps=12", "--schedule=constant", "--init_from=resume", "--seed=7",
            "--batch_size=16", "--lr=3e-3")
    message = str(info.value)
    assert message.startswith("cannot resume a run with other settings: seed=7 (the run's: 1337), batch_size=16 "
                              "(the run's: 8), lr=0.003 (the run's: 0.002); ")
    assert "alters the LR of step 0, already taken (2e-05 -> 3e-05)" in message
    assert (tmp_path / "run" / "config.json").read_text() == before  # nothing rewritten
    for setting in ("--data_seed=5", "--seq_len=32", "--dtype=float16", "--weight_decay=0.0",
                    "--optimizer=adamw_schedulefree", "--eval_tokens=1024", "--swa=True"):
        with pytest.raises(ConfigError, match=f"cannot resume a run with other settings: {setting[2:].split('=')[0]}="):
            run(tmp_path, "run", tiny_data, "--max_steps=12", "--schedule=constant", "--init_from=resume", setting)


def test_resume_may_extend_a_constant_run_and_change_bookkeeping_and_keeps_a_history(tmp_path, tiny_data):
    run(tmp_path, "trunk", tiny_data, "--max_steps=8", "--schedule=constant")
    out = run(tmp_path, "trunk", tiny_data, "--max_steps=12", "--schedule=constant", "--init_from=resume",
              "--eval_interval=2", "--keep_last_ckpts=3", "--micro_batch_size=4")
    reference = run(tmp_path, "reference", tiny_data, "--max_steps=12", "--schedule=constant")
    steps = lambda o: {r["step"]: r.get("train_loss") for r in map(json.loads, (o / "metrics.jsonl").open())}
    assert steps(out)[12] == pytest.approx(steps(reference)[12], rel=1e-5)  # the same run, only longer
    first, second = history(out)
    assert first["event"] == "start" and first["step"] == 0 and first["changed"] == {}
    assert second["event"] == "resume" and second["step"] == 8 and second["from"].endswith("ckpt_0000008")
    assert second["changed"] == {"max_steps": [8, 12], "eval_interval": [4, 2], "keep_last_ckpts": [2, 3],
                                 "micro_batch_size": [None, 4]}
    assert json.loads((out / "config.json").read_text())["config"]["max_steps"] == 12
    assert first["code"] == second["code"] == rundir.code_version()  # the git commit, and whether it was dirty
    assert not list(out.glob("*.tmp"))  # written atomically, through a temporary file


def test_resume_refuses_a_schedule_change_that_rewrites_steps_already_taken(tmp_path, tiny_data):
    run(tmp_path, "cosine", tiny_data, "--max_steps=8", "--schedule=cosine")
    with pytest.raises(ConfigError, match=r"cannot resume a run with other settings: max_steps=12 \(the run's: 8\); "
                                          r".*alters the LR of step 5, already taken"):
        run(tmp_path, "cosine", tiny_data, "--max_steps=12", "--schedule=cosine", "--init_from=resume")
    # wsd: raising max_steps before the cooldown starts only moves the cooldown, which has not begun
    run(tmp_path, "wsd", tiny_data, "--max_steps=20", "--schedule=wsd", "--cooldown_steps=4", "--ckpt_interval=8")
    shutil.rmtree(tmp_path / "wsd" / "ckpt_0000020")  # resume from step 16, where the cooldown would start
    run(tmp_path, "wsd", tiny_data, "--max_steps=24", "--schedule=wsd", "--cooldown_steps=4", "--init_from=resume")
    assert history(tmp_path / "wsd")[-1]["changed"] == {"max_steps": [20, 24], "ckpt_interval": [8, 100]}


def test_a_branch_may_change_the_schedule_but_not_the_data_stream_without_saying_so(tmp_path, tiny_data):
    trunk = run(tmp_path, "trunk", tiny_data, "--max_steps=8", "--schedule=constant")
    source = f"--init_from={trunk / 'ckpt_0000008'}"
    branch = run(tmp_path, "branch", tiny_data, "--max_steps=12", "--schedule=wsd", "--cooldown_steps=4",
                 "--cooldown_shape=linear", "--lr=1e-3", "--swa=True", "--swa_interval=2", "--swa_window=2", source)
    event, = history(branch)
    assert event["event"] == "branch" and event["step"] == 8 and event["from"] == str(trunk / "ckpt_0000008")
    assert event["changed"]["schedule"] == ["constant", "wsd"] and event["changed"]["lr"] == [0.002, 0.001]
    with pytest.raises(ConfigError, match=r"cannot branch off a run with other settings: seed=3 \(the run's: 1337\); "
                                          r"a branch continues its trunk's run: its data stream \(unless "
                                          r"allow_data_change=True\)"):
        run(tmp_path, "other", tiny_data, "--max_steps=12", "--seed=3", source)
    with pytest.raises(ConfigError, match="cannot branch off a run with other settings: beta2=0.99"):
        run(tmp_path, "other", tiny_data, "--max_steps=12", "--beta2=0.99", "--allow_data_change=True", source)
    other = run(tmp_path, "other", tiny_data, "--max_steps=12", "--seed=3", "--allow_data_change=True", source)
    assert history(other)[0]["changed"]["seed"] == [1337, 3]


def test_resume_and_branch_know_their_data_by_its_fingerprint(tmp_path, tiny_data):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    out = run(tmp_path, "run", data, "--max_steps=8", "--schedule=constant")
    ours = fingerprint_of(data)
    assert json.loads((out / "config.json").read_text())["data"]["fingerprint"] == ours
    moved = shutil.copytree(data, tmp_path / "moved")  # the same tokens elsewhere: the same data, the move recorded
    run(tmp_path, "run", moved, "--max_steps=10", "--schedule=constant", "--init_from=resume")
    assert history(out)[-1]["changed"]["data_dir"] == [str(data), str(moved)]
    shard = np.fromfile(data / "train_0000.bin", dtype="<u2")  # the same path, other tokens: as when the stdlib
    shard[100] = (shard[100] + 1) % 256                          # corpus is prepared again on another Python
    shard.tofile(data / "train_0000.bin")
    theirs = fingerprint_of(data)
    with pytest.raises(ConfigError) as info:
        run(tmp_path, "run", data, "--max_steps=12", "--schedule=constant", "--init_from=resume")
    assert str(info.value) == (f"cannot resume a run on other data: data_dir={data} has the fingerprint {theirs[:16]}, "
                               f"the checkpoint's run read {ours[:16]}; point data_dir at that data")
    source = f"--init_from={out / 'ckpt_0000010'}"
    with pytest.raises(ConfigError, match=rf"^cannot branch off a run on other data: data_dir={data} has the "
                                          rf"fingerprint {theirs[:16]}, the checkpoint's run read {ours[:16]}; point "
                                          rf"data_dir at that data, or pass allow_data_change=True to branch onto"):
        run(tmp_path, "branch", data, "--max_steps=12", "--schedule=constant", source)
    branch = run(tmp_path, "branch", data, "--max_steps=12", "--schedule=constant", "--allow_data_change=True", source)
    assert json.loads((branch / "config.json").read_text())["data"]["fingerprint"] == theirs


def test_a_checkpoint_older_than_fingerprints_is_continued_with_a_warning(capsys):
    cfg = dict(settings.DEFAULTS, init_from="resume", data_dir="data/x")
    assert rundir.check_same_data(cfg, {"data": {"seed": 1337, "next_step": 8}}, "ab" * 32, master=True) is None
    assert capsys.readouterr().out == ("warning: the checkpoint records no data fingerprint (written before they "
                                       "were recorded): that data_dir=data/x holds the data it was trained on is not "
                                       "checked\n")
    assert rundir.check_same_data(cfg, {"data": {"fingerprint": "ab" * 32}}, "ab" * 32, master=True) is True


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_code_version_is_the_checkouts_commit_and_whether_a_tracked_file_changed(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *args: subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    git("init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "a")
    ref = (repo / ".git" / "HEAD").read_text().removeprefix("ref: ").strip()
    commit = (repo / ".git" / ref).read_text().strip()  # the branch's file, not git's answer to rev-parse
    assert rundir.code_version(repo) == {"commit": commit, "dirty": False}
    (repo / "notes.txt").write_text("untracked")
    assert rundir.code_version(repo) == {"commit": commit, "dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    assert rundir.code_version(repo) == {"commit": commit, "dirty": True}
    (tmp_path / "plain").mkdir()
    assert rundir.code_version(tmp_path / "plain") is None


def test_changed_settings_leave_out_how_the_run_was_launched():
    previous = dict(settings.DEFAULTS, out_dir="a", init_from="scratch", warmup_steps=2)
    cfg = dict(previous, out_dir="b", init_from="resume", overwrite=True, log_interval=5)
    assert rundir.changed_settings(previous, cfg) == {"log_interval": [10, 5]}
    assert rundir.first_step_with_other_lr(dict(previous, schedule="constant", max_steps=10),
                                           dict(previous, schedule="constant", max_steps=99), 10) is None
    assert rundir.first_step_with_other_lr(dict(previous, lr=1e-3), dict(previous, lr=2e-3), 10) == 0


def test_resume_drops_log_lines_past_the_checkpoint_and_a_line_cut_short(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 0}\n{"step": 5, "origin": {"step": 3}}\n\n{"step": 10}\n{"step": 15, "origin": {"st')
    rundir.truncate_metrics(log, 5)
    assert log.read_text() == '{"step": 0}\n{"step": 5, "origin": {"step": 3}}\n'
    assert not (tmp_path / "metrics.jsonl.tmp").exists()
    log.write_text('{"step": 0}\n{"step": 5}\n{"st')  # the cut line is the last one logged, past the checkpoint
    rundir.truncate_metrics(log, 10)
    assert log.read_text() == '{"step": 0}\n{"step": 5}\n'


def test_optimizer_state_follows_this_runs_device_not_the_checkpoints():
    """load_state_dict takes `fused` from the file: a GPU checkpoint (fused) continued on a CPU, or a CPU trunk
    branched on a GPU, would keep the other device's implementation."""
    model = torch.nn.Linear(3, 3)
    trained = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 3)).sum().backward()
    trained.step()
    saved = trained.state_dict()
    saved["param_groups"][0]["fused"] = True  # as a CUDA run writes it
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rundir.load_optimizer_state(optimizer, saved, torch.device("cpu"))
    assert optimizer.param_groups[0]["fused"] is False
    assert optimizer.param_groups[0]["betas"] == saved["param_groups"][0]["betas"]  # the rest is the file's
    assert torch.equal(optimizer.state[model.weight]["exp_avg"], trained.state[model.weight]["exp_avg"])
    assert saved["param_groups"][0]["fused"] is True  # the caller's dict is left as it was
    optimizer.step()  # and it runs


def test_start_or_resume_finishes_resumes_or_starts(tmp_path):
    assert rundir.start_or_resume(tmp_path / "none", 12, "trunk/ckpt_0000008.pt") == dict(
        init_from="trunk/ckpt_0000008.pt", overwrite=True)
    assert rundir.start_or_resume(tmp_path, 12) == dict(init_from="scratch", overwrite=True)
    (tmp_path / ".ckpt_0000010.partial").mkdir()  # a checkpoint being written, or left half-written by a kill
    (tmp_path / "ckpt_0000011").mkdir()  # a folder without its state.pt: not finished either
    assert rundir.start_or_resume(tmp_path, 12) == dict(init_from="scratch", overwrite=True)
    (tmp_path / "ckpt_0000010.pt").touch()
    assert rundir.start_or_resume(tmp_path, 12) == dict(init_from="resume")
    (tmp_path / "ckpt_0000012.pt").touch()
    assert rundir.start_or_resume(tmp_path, 12) is None


def test_auto_resumes_a_checkpoint_starts_over_a_start_that_died_and_refuses_another_runs_folder(tmp_path):
    out = tmp_path / "run"
    cfg = dict(settings.DEFAULTS, out_dir=str(out), max_steps=12, init_from="auto")
    alone = parallel.Processes()
    assert rundir.resolve_auto(dict(cfg, init_from="resume"), alone) == dict(cfg, init_from="resume")
    assert rundir.resolve_auto(cfg, alone) == dict(cfg, init_from="scratch", overwrite=True)  # nothing there yet
    out.mkdir()
    # a start killed before its first checkpoint leaves its config.json: the same run starts over
    (out / "config.json").write_text(json.dumps(dict(config=dict(cfg, init_from="scratch", dtype="float32"),
                                                     history=[dict(event="start", step=0)])))
    assert rundir.resolve_auto(cfg, alone) == dict(cfg, init_from="scratch", overwrite=True)
    with pytest.raises(ConfigError) as info:  # another run's: kept
        rundir.resolve_auto(dict(cfg, seed=7), alone)
    assert str(info.value).startswith(f"init_from=auto: {out} holds no checkpoint but the config.json of a run that "
                                      f"it would replace: cannot resume a run with other settings: seed=7 (the run's: "
                                      f"1337); ")
    (out / "ckpt_0000008.pt").touch()
    assert rundir.resolve_auto(dict(cfg, seed=7), alone) == dict(cfg, seed=7, init_from="resume")  # checked as resumed
    assert rundir.resolve_auto(dict(cfg, overwrite=True), alone) == dict(cfg, overwrite=True, init_from="scratch")
    (out / "ckpt_0000012.pt").touch()
    assert rundir.resolve_auto(cfg, alone) is None  # finished
