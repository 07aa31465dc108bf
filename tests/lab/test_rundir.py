"""lab/rundir.py: what a resume or a branch may change, config.json's history, the metrics log on resume, how the
same command starts, continues or leaves alone the run of its out_dir (init_from=auto, branch.py, sweep.py)."""
import json
import shutil
import subprocess
from types import SimpleNamespace

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
    log.write_text("\n")  # a log with no line yet (killed before the first): nothing to drop
    rundir.truncate_metrics(log, 10)
    assert log.read_text() == ""


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
    # no step was taken: a start over may change the schedule (lr is checked from step 0, not step 1)
    assert rundir.resolve_auto(dict(cfg, lr=1e-3), alone) == dict(cfg, lr=1e-3, init_from="scratch", overwrite=True)
    (out / "config.json").write_text(json.dumps(dict(history=[dict(event="start", step=0)])))  # no settings kept
    assert rundir.resolve_auto(cfg, alone) == dict(cfg, init_from="scratch", overwrite=True)
    (out / "ckpt_0000008.pt").touch()
    assert rundir.resolve_auto(dict(cfg, seed=7), alone) == dict(cfg, seed=7, init_from="resume")  # checked as resumed
    assert rundir.resolve_auto(dict(cfg, overwrite=True), alone) == dict(cfg, overwrite=True, init_from="scratch")
    (out / "ckpt_0000012.pt").touch()
    assert rundir.resolve_auto(cfg, alone) is None  # finished


# ---------------------------------------------------------------------------------------------------------
# the guards one by one, on configs and checkpoint files written here (the runs above train; these take
# milliseconds, so that the mutation run can run them for every mutant)

WHY_RESUME = ("resuming continues the same run: start a new one, or branch off a checkpoint "
              "(init_from=<out_dir>/ckpt_<step>) with its own out_dir")
WHY_BRANCH = ("a branch continues its trunk's run: its data stream (unless allow_data_change=True), model, precision, "
              "optimizer and validation set")
# a constant-LR trunk of 8 steps: the warmup's 4 steps from 1 % of the peak 2e-3 (2e-5 at step 0), then 2e-3
TRUNK = dict(settings.DEFAULTS, schedule="constant", max_steps=8, warmup_steps=4, dtype="float32", out_dir="trunk")


def test_a_resume_refuses_what_the_run_is_in_one_line_and_names_the_schedule_keys_that_rewrite_the_past():
    cfg = dict(TRUNK, init_from="resume", max_steps=12, seed=7, batch_size=16, lr=3e-3)
    with pytest.raises(ConfigError) as info:
        rundir.check_changes(TRUNK, cfg, 8, branch=False)
    # max_steps alone rewrites no step of a constant run: lr alone is named, with the first step it rewrites
    assert str(info.value) == ("cannot resume a run with other settings: seed=7 (the run's: 1337), batch_size=16 (the "
                               f"run's: 32), lr=0.003 (the run's: 0.002); {WHY_RESUME}; the schedule change alters "
                               "the LR of step 0, already taken (2e-05 -> 3e-05)")
    with pytest.raises(ConfigError, match=r"^cannot resume a run with other settings: swa=True \(the run's: False\); "
                                          r"resuming continues"):
        rundir.check_changes(TRUNK, dict(TRUNK, swa=True), 8, branch=False)  # the averages are the run's too
    assert rundir.check_changes(TRUNK, dict(cfg, seed=1337, batch_size=32, lr=2e-3), 8, branch=False) == {
        "max_steps": [8, 12]}  # a constant run extended: the same run, longer


def test_keys_that_rewrite_past_steps_only_together_are_named_together():
    # a cosine whose cycle was set to its 8 steps: max_steps=12 alone keeps the cycle, cycle_steps=None alone means a
    # cycle of max_steps = 8; together the cycle is 12 steps. Step 5, (5 - 4) / (8 - 4) = 1/4 of the cycle, had
    # 2e-3 (0.1 + 0.9 (1 + cos(pi/4)) / 2) = 1.736e-3; at 1/8 of the longer cycle it would be 1.931e-3
    trunk = dict(TRUNK, schedule="cosine", cycle_steps=8)
    cfg = dict(trunk, max_steps=12, cycle_steps=None)
    with pytest.raises(ConfigError) as info:
        rundir.check_changes(trunk, cfg, 8, branch=False)
    assert str(info.value) == ("cannot resume a run with other settings: max_steps=12 (the run's: 8), cycle_steps=None "
                               f"(the run's: 8); {WHY_RESUME}; the schedule change alters the LR of step 5, already "
                               "taken (0.00174 -> 0.00193)")
    with pytest.raises(ConfigError) as info:  # a bookkeeping change beside them is not named: it rewrites no LR
        rundir.check_changes(trunk, dict(cfg, eval_interval=2), 8, branch=False)
    assert str(info.value).startswith("cannot resume a run with other settings: max_steps=12 (the run's: 8), "
                                      "cycle_steps=None (the run's: 8); resuming")
    assert rundir.check_changes(trunk, cfg, 5, branch=False) == {"max_steps": [8, 12], "cycle_steps": [8, None]}
    assert rundir.first_step_with_other_lr(trunk, cfg, 8) == 5 and rundir.first_step_with_other_lr(trunk, cfg, 5) is None


def test_a_schedule_that_no_longer_validates_counts_as_rewriting_step_0():
    wsd = dict(TRUNK, schedule="wsd", max_steps=20, cooldown_steps=4)
    assert rundir.first_step_with_other_lr(wsd, dict(wsd, cooldown_steps=100), 16) == 0  # 100 > max_steps
    assert rundir.first_step_with_other_lr(wsd, dict(wsd, max_steps=24), 16) is None  # the cooldown only moves
    # a cooldown of 6 starts at step 14 at the full LR (t = 0): step 15 is the first whose LR it lowers
    assert rundir.first_step_with_other_lr(wsd, dict(wsd, cooldown_steps=6), 16) == 15


def test_dtype_auto_continues_the_run_s_precision_and_another_dtype_is_refused_with_why():
    assert rundir.check_changes(TRUNK, dict(TRUNK, dtype="auto"), 8, branch=False) == {}
    auto = dict(TRUNK, dtype="auto")  # a run started with dtype=auto, resumed with it: nothing changed
    assert rundir.check_changes(auto, auto, 8, branch=False) == {}
    assert rundir.check_changes(TRUNK, dict(TRUNK, dtype="auto", lr=1e-3), 8, branch=True) == {"lr": [0.002, 0.001]}
    with pytest.raises(ConfigError) as info:
        rundir.check_changes(TRUNK, dict(TRUNK, dtype="bfloat16"), 8, branch=False)
    assert str(info.value) == ("cannot resume a run with other settings: dtype='bfloat16' (the run's: 'float32'); "
                               f"{WHY_RESUME}; dtype is the precision the run computes in: dtype=auto continues in the "
                               "run's own")


def test_schedule_free_freezes_its_lr_and_warmup_even_before_a_step_is_taken():
    # at step 0 no LR has been used: AdamW may change them, schedule-free's averaged weights depend on them
    for key, value in (("lr", 1e-3), ("warmup_steps", 2)):
        assert rundir.check_changes(TRUNK, dict(TRUNK, **{key: value}), 0, branch=False) == {
            key: [TRUNK[key], value]}
        free = dict(TRUNK, optimizer="adamw_schedulefree")
        with pytest.raises(ConfigError) as info:
            rundir.check_changes(free, dict(free, **{key: value}), 0, branch=False)
        assert str(info.value) == (f"cannot resume a run with other settings: {key}={value!r} (the run's: "
                                   f"{TRUNK[key]!r}); {WHY_RESUME}")
    free = dict(TRUNK, optimizer="adamw_schedulefree")  # and what the run is, as for AdamW
    with pytest.raises(ConfigError, match=r"^cannot resume a run with other settings: seed=7 \(the run's: 1337\), "
                                          r"swa=True \(the run's: False\); resuming"):
        rundir.check_changes(free, dict(free, seed=7, swa=True), 0, branch=False)


def test_a_branch_may_change_its_schedule_and_averages_and_its_data_stream_only_when_allowed():
    cfg = dict(TRUNK, init_from="trunk/ckpt_0000008", out_dir="branch", schedule="wsd", max_steps=12,
               cooldown_steps=4, lr=1e-3, swa=True, seed=3, beta2=0.99)
    with pytest.raises(ConfigError) as info:
        rundir.check_changes(TRUNK, cfg, 8, branch=True)
    assert str(info.value) == ("cannot branch off a run with other settings: seed=3 (the run's: 1337), beta2=0.99 "
                               f"(the run's: 0.95); {WHY_BRANCH}")
    with pytest.raises(ConfigError, match=r"^cannot branch off a run with other settings: beta2=0.99 \(the run's: "
                                          r"0.95\); a branch"):
        rundir.check_changes(TRUNK, dict(cfg, allow_data_change=True), 8, branch=True)
    assert rundir.check_changes(TRUNK, dict(cfg, allow_data_change=True, beta2=0.95), 8, branch=True) == {
        "seed": [1337, 3], "allow_data_change": [False, True], "lr": [0.002, 0.001], "max_steps": [8, 12],
        "schedule": ["constant", "wsd"], "cooldown_steps": [None, 4], "swa": [False, True]}


def test_the_data_is_known_by_its_fingerprint(capsys):
    ours, theirs = "a" * 64, "b" * 64
    resume = dict(TRUNK, init_from="resume", data_dir="data/x")
    branch = dict(resume, init_from="trunk/ckpt_0000008")
    state = {"data": {"fingerprint": theirs}}
    with pytest.raises(ConfigError) as info:
        rundir.check_same_data(resume, state, ours, master=True)
    assert str(info.value) == ("cannot resume a run on other data: data_dir=data/x has the fingerprint aaaaaaaaaaaaaaaa, "
                               "the checkpoint's run read bbbbbbbbbbbbbbbb; point data_dir at that data")
    with pytest.raises(ConfigError) as info:
        rundir.check_same_data(dict(resume, allow_data_change=True), state, ours, master=True)  # not for a resume
    assert str(info.value).startswith("cannot resume a run on other data: ")
    with pytest.raises(ConfigError) as info:
        rundir.check_same_data(branch, state, ours, master=True)
    assert str(info.value) == ("cannot branch off a run on other data: data_dir=data/x has the fingerprint "
                               "aaaaaaaaaaaaaaaa, the checkpoint's run read bbbbbbbbbbbbbbbb; point data_dir at that "
                               "data, or pass allow_data_change=True to branch onto this one")
    assert rundir.check_same_data(dict(branch, allow_data_change=True), state, ours, master=True) is False
    assert rundir.check_same_data(resume, state, theirs, master=True) is True
    assert rundir.check_same_data(resume, {"data": None}, ours, master=False) is None  # before fingerprints
    assert capsys.readouterr().out == ""  # only rank 0 warns


def write_checkpoint(path, step=8, config=TRUNK, **extra):
    """A single-file checkpoint (the older format, which load reads too) with what load_start reads: settings, a
    model config, a data fingerprint, no weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = dict(model={}, optimizer={}, scaler={}, rng=torch.get_rng_state(), step=step, config=config,
                 model_config=dict(n_layer=2, n_embd=64, block_size=64), **extra)
    torch.save(state, path)
    return path


def test_load_start_checks_the_model_and_the_data_and_records_data_that_moved(tmp_path, capsys):
    trunk = dict(TRUNK, out_dir=str(tmp_path / "trunk"), data_dir="data/old")
    path = write_checkpoint(tmp_path / "trunk" / "ckpt_0000008.pt", config=trunk, data=dict(fingerprint="f" * 64))
    cfg = dict(trunk, init_from="resume", max_steps=12, data_dir="data/moved")
    mconf = SimpleNamespace(n_layer=2, n_embd=64, block_size=256)  # block_size only sizes the rotary tables
    alone = parallel.Processes()
    state, changed, source = rundir.load_start(cfg, alone, mconf, "f" * 64)
    assert (state["step"], source) == (8, path) and state["config"] == trunk
    assert changed == {"max_steps": [8, 12], "data_dir": ["data/old", "data/moved"]}
    with pytest.raises(ConfigError, match=r"^cannot resume a run on other data: data_dir=data/moved has the "
                                          r"fingerprint eeeeeeeeeeeeeeee"):
        rundir.load_start(cfg, alone, mconf, "e" * 64)
    with pytest.raises(rundir.checkpoint.CheckpointError) as info:
        rundir.load_start(cfg, alone, SimpleNamespace(n_layer=3, n_embd=64, block_size=64), "f" * 64)
    assert str(info.value) == "the checkpoint's model does not match this run's model: n_layer=2 (this run: 3)"
    with pytest.raises(rundir.checkpoint.CheckpointError) as info:
        rundir.load_start(cfg, alone, SimpleNamespace(n_layer=3, n_embd=32, block_size=64), "f" * 64)
    assert str(info.value) == ("the checkpoint's model does not match this run's model: n_layer=2 (this run: 3), "
                               "n_embd=64 (this run: 32)")
    branch = dict(cfg, init_from=str(path), out_dir=str(tmp_path / "branch"), lr=1e-3, data_dir="data/old")
    assert rundir.load_start(branch, alone, mconf, "f" * 64)[1] == {"max_steps": [8, 12], "lr": [0.002, 0.001]}
    # a checkpoint from before fingerprints: data_dir is all there is to know the data by, and may not change
    write_checkpoint(tmp_path / "trunk" / "ckpt_0000010.pt", step=10, config=trunk)
    with pytest.raises(ConfigError, match=r"^cannot resume a run with other settings: data_dir='data/moved' \(the "
                                          r"run's: 'data/old'\)"):
        rundir.load_start(cfg, alone, mconf, "f" * 64)
    assert capsys.readouterr().out == ("warning: the checkpoint records no data fingerprint (written before they were "
                                       "recorded): that data_dir=data/moved holds the data it was trained on is not "
                                       "checked\n")  # on rank 0
    (tmp_path / "trunk" / "ckpt_0000012.pt").write_text("not a checkpoint")  # the newest, corrupt: the hint
    with pytest.raises(rundir.checkpoint.CheckpointError, match=r"is corrupt or unreadable \(\w+\); the previous one "
                                                                r"is \S+ckpt_0000010.pt, use init_from="):
        rundir.load_start(cfg, alone, mconf, "f" * 64)
    (tmp_path / "trunk" / "ckpt_0000012.pt").unlink()
    assert rundir.load_start(dict(cfg, data_dir="data/old"), alone, mconf, "f" * 64)[1] == {"max_steps": [8, 12]}


def test_load_start_refuses_a_weight_file_as_a_training_checkpoint(tmp_path):
    path = tmp_path / "trunk" / "ckpt_0000008.pt"
    path.parent.mkdir()
    torch.save(dict(model={}, step=8, config=TRUNK), path)  # weights only, like swa.pt
    cfg = dict(TRUNK, init_from=str(path), out_dir=str(tmp_path / "branch"))
    with pytest.raises(rundir.checkpoint.CheckpointError) as info:
        rundir.load_start(cfg, parallel.Processes(), SimpleNamespace(n_layer=2), "f" * 64)
    assert str(info.value) == (f"{path} holds no optimizer, scaler, rng, model_config: a weight file, not a training "
                               f"checkpoint")


def test_the_starting_point_of_a_new_run_a_resume_and_a_branch(tmp_path):
    alone, mconf = parallel.Processes(), SimpleNamespace(n_layer=2, n_embd=64)
    assert rundir.starting_point(dict(TRUNK, init_from="scratch"), alone, mconf, "f" * 64) == ({}, {}, None, None, 0)
    trunk = dict(TRUNK, out_dir=str(tmp_path / "trunk"))
    earlier = {"checkpoint": "first/ckpt_0000004", "out_dir": "first", "step": 4}
    path = write_checkpoint(tmp_path / "trunk" / "ckpt_0000008.pt", config=trunk, origin=earlier,
                            data=dict(fingerprint="f" * 64))
    state, changed, source, origin, step = rundir.starting_point(dict(trunk, init_from="resume", max_steps=12), alone,
                                                                 mconf, "f" * 64)
    assert (changed, source, origin, step) == ({"max_steps": [8, 12]}, path, earlier, 8)  # a resume keeps its origin
    branch = dict(trunk, init_from=str(path), out_dir=str(tmp_path / "branch"), max_steps=12)
    assert rundir.starting_point(branch, alone, mconf, "f" * 64)[3] == {
        "checkpoint": str(path), "out_dir": str(tmp_path / "trunk"), "step": 8}  # a branch records its trunk
    with pytest.raises(ConfigError, match=r"^the starting checkpoint is at step 8, not before max_steps=8$"):
        rundir.starting_point(dict(trunk, init_from="resume"), alone, mconf, "f" * 64)


def test_claiming_an_out_dir_clears_only_a_replaced_run_and_refuses_mixing_two(tmp_path, monkeypatch):
    out = tmp_path / "run"
    rundir.claim_out_dir(dict(TRUNK, out_dir=str(out / "deep"), init_from="scratch"))
    assert (out / "deep").is_dir()  # made, parents too
    for name in ("config.json", "metrics.jsonl", "swa.pt", "ema.pt", "notes.txt", "ckpt_0000004.pt"):
        (out / name).write_text("x")
    (out / "ckpt_0000008").mkdir()
    (out / "ckpt_0000008" / "state.pt").write_text("x")
    with pytest.raises(ConfigError) as info:
        rundir.claim_out_dir(dict(TRUNK, out_dir=str(out), init_from="scratch"))
    assert str(info.value) == (f"{out} already holds a run: use --init_from=resume to continue it, --overwrite=True to "
                               f"replace it, or another out_dir")
    with pytest.raises(ConfigError) as info:
        rundir.claim_out_dir(dict(TRUNK, out_dir=str(out), init_from=str(out / "ckpt_0000008"), overwrite=True))
    assert str(info.value) == f"init_from={out / 'ckpt_0000008'} lies in out_dir {out}: a branch needs its own out_dir"
    rundir.claim_out_dir(dict(TRUNK, out_dir=str(out), init_from="resume"))
    assert sorted(p.name for p in out.iterdir()) == ["ckpt_0000004.pt", "ckpt_0000008", "config.json", "deep",
                                                     "ema.pt", "metrics.jsonl", "notes.txt", "swa.pt"]
    rundir.claim_out_dir(dict(TRUNK, out_dir=str(out), init_from="scratch", overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "deep", "notes.txt"]  # config.json: rewritten
    rundir.claim_out_dir(dict(TRUNK, out_dir=str(tmp_path / "branch"), init_from=str(out / "ckpt_0000008")))
    assert (tmp_path / "branch").is_dir()  # a branch off a checkpoint of another folder
    monkeypatch.chdir(out)  # out_dir '.': 'scratch' and 'resume' are no checkpoint lying in it
    rundir.claim_out_dir(dict(TRUNK, out_dir=".", init_from="resume"))
    rundir.claim_out_dir(dict(TRUNK, out_dir=".", init_from="scratch", overwrite=True))


def test_config_json_keeps_the_history_of_a_resumed_run_and_starts_one_for_a_new_run(tmp_path):
    def event(kind, step):
        return dict(event=kind, step=step)
    rundir.write_config(tmp_path, dict(config=dict(max_steps=8)), event("start", 0))
    rundir.write_config(tmp_path, dict(config=dict(max_steps=12)), event("resume", 8))
    text = (tmp_path / "config.json").read_text()
    assert text == json.dumps(dict(config=dict(max_steps=12), history=[event("start", 0), event("resume", 8)]),
                              indent=2) + "\n"
    rundir.write_config(tmp_path, dict(config=dict(max_steps=12)), event("branch", 8))  # a new run in its place
    assert history(tmp_path) == [event("branch", 8)]
    (tmp_path / "config.json").write_text("[1, 2]")  # unreadable as a run's: the checkpoint still says what it was
    rundir.write_config(tmp_path, dict(config={}), event("resume", 10))
    assert history(tmp_path) == [event("resume", 10)]
    (tmp_path / "config.json").write_text('{"config": {}}')  # a run's, written before histories were kept
    rundir.write_config(tmp_path, dict(config={}), event("resume", 11))
    assert history(tmp_path) == [event("resume", 11)]
    (tmp_path / "config.json").write_text('{"config": ')
    rundir.write_config(tmp_path, dict(config={}), event("resume", 12))
    assert history(tmp_path) == [event("resume", 12)]


def test_a_run_is_replaced_only_by_a_start_from_where_it_started(tmp_path, monkeypatch):
    rundir.check_started_from(tmp_path / "nothing", "scratch")  # no run there
    def started(history):
        (tmp_path / "config.json").write_text(json.dumps(dict(config={}, history=history)))
    started([dict(event="start", step=0)])
    rundir.check_started_from(tmp_path, "scratch")
    with pytest.raises(ConfigError) as info:
        rundir.check_started_from(tmp_path, "trunk/ckpt_0000008")
    assert str(info.value) == (f"{tmp_path} holds a run that did not start from trunk/ckpt_0000008 (it started from "
                               f"scratch): move it away, or give the branches another trunk name")
    monkeypatch.chdir(tmp_path)  # a checkpoint folder named 'scratch' is not where a run from scratch started
    with pytest.raises(ConfigError, match=r"did not start from \S+scratch \(it started from scratch\)"):
        rundir.check_started_from(tmp_path, tmp_path / "scratch")
    trunk = tmp_path / "trunk" / "ckpt_0000008"
    started([dict(event="branch", step=8, **{"from": str(trunk)}), dict(event="resume", step=10)])
    rundir.check_started_from(tmp_path, trunk)
    rundir.check_started_from(tmp_path, tmp_path / "trunk" / ".." / "trunk" / "ckpt_0000008")  # the same file
    with pytest.raises(ConfigError, match=rf"did not start from scratch \(it started from {trunk}\)"):
        rundir.check_started_from(tmp_path, "scratch")
    with pytest.raises(ConfigError, match=r"did not start from other/ckpt_0000008 \(it started from "):
        rundir.check_started_from(tmp_path, "other/ckpt_0000008")
    for unknown in ([], ["start"], None):  # no history, or not one this code writes
        started(unknown)
        for source in ("scratch", trunk):
            with pytest.raises(ConfigError, match=r"\(it started from an unknown point\): move it away"):
                rundir.check_started_from(tmp_path, source)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ConfigError, match=r"\(it started from an unknown point\)"):
        rundir.check_started_from(tmp_path, "scratch")


def test_auto_says_when_the_run_is_finished_on_rank_0_alone(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt_0000012.pt").touch()
    cfg = dict(settings.DEFAULTS, out_dir=str(out), max_steps=12, init_from="auto")
    assert rundir.resolve_auto(cfg, parallel.Processes()) is None
    assert capsys.readouterr().out == f"{out} holds a finished run (step 12): nothing to train\n"
    (out / "ckpt_0000012.pt").unlink()
    (out / "ckpt_0000008.pt").touch()
    assert rundir.resolve_auto(cfg, parallel.Processes()) == dict(cfg, init_from="resume")
    assert capsys.readouterr().out == ""  # not finished: nothing said
