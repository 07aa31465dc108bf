"""Tests for lab/tracking.py: an offline wandb run under out_dir that a resume continues, and no wandb without
wandb_log."""
import json
import sys

import pytest

from lab import tracking
from lab.config import ConfigError, defaults_of

CFG = dict(defaults_of(tracking.SETTINGS), lr=2e-3, device="auto", max_steps=20, keep_ckpt_steps=[10])
RUN_INFO = dict(config=CFG, device="cpu", params=984448, model_config=dict(n_layer=5), origin=None)
RECORDS = [dict(step=0, tokens=0, val_loss=5.5, val_ppl=244.7, elapsed_s=0.0),
           dict(step=10, tokens=81920, lr=2e-3, train_loss=4.25, tokens_per_s=3.1e4, mfu=None, elapsed_s=2.5),
           dict(step=20, tokens=163840, lr=0.0, train_loss=3.75, val_loss=3.5, val_ppl=33.1, elapsed_s=5.0)]


def offline_runs(out_dir):
    return sorted((out_dir / "wandb").glob("offline-run-*"))


def test_offline_run_is_written_under_out_dir_and_a_resume_continues_it(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # optional: requirements-extra.txt
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)  # unset: the wandb files go under out_dir
    cfg = dict(CFG, wandb_log=True, wandb_run_name="cooldown")
    tracker = tracking.start(cfg, dict(RUN_INFO, config=cfg), tmp_path, master=True, resuming=False)
    for record in RECORDS:
        tracker.log(record)
    tracker.finish()
    run_id = (tmp_path / "wandb_id").read_text().strip()
    [run] = offline_runs(tmp_path)
    assert run.name.endswith(f"-{run_id}") and (run / f"run-{run_id}.wandb").stat().st_size > 0
    # The offline run's log (wandb's binary record file, uploaded later by `wandb sync`) holds the metrics and the
    # config: its exact payload is checked with a fake run below, here that wandb really wrote it.
    data = (run / f"run-{run_id}.wandb").read_bytes()
    assert all(text in data for text in (b"train_loss", b"3.75", b"163840", b"wandb_run_name", b"984448"))

    tracker = tracking.start(cfg, dict(RUN_INFO, config=cfg), tmp_path, master=True, resuming=True)
    tracker.log(dict(step=30, tokens=245760, lr=0.0, train_loss=3.5, elapsed_s=7.5))
    tracker.finish()
    assert (tmp_path / "wandb_id").read_text().strip() == run_id
    runs = offline_runs(tmp_path)
    # one wandb folder per start, named by the second it started in: two starts in one second share it
    assert 1 <= len(runs) <= 2 and all(f"-{run_id}" in run.name for run in runs)


def test_wandb_dir_when_set_holds_the_wandb_files_and_out_dir_the_run_id(tmp_path, monkeypatch):
    """wandb's own WANDB_DIR, when set, is where wandb writes (an explicit dir= used to override it, so the files
    always went to out_dir/wandb); the run id stays in out_dir, where a resume finds it."""
    pytest.importorskip("wandb")  # optional: requirements-extra.txt
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    scratch, out = tmp_path / "scratch", tmp_path / "run"
    scratch.mkdir()
    out.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(scratch))
    cfg = dict(CFG, wandb_log=True)
    tracker = tracking.start(cfg, dict(RUN_INFO, config=cfg), out, master=True, resuming=False)
    tracker.log(RECORDS[1])
    tracker.finish()
    run_id = (out / "wandb_id").read_text().strip()
    [run] = offline_runs(scratch)
    assert run.name.endswith(f"-{run_id}") and not (out / "wandb").exists()
    monkeypatch.delenv("WANDB_DIR")
    assert tracking.wandb_dir(out) == str(out)


def test_log_sends_the_numbers_of_a_record_at_its_step():
    class FakeRun:
        calls = []

        def log(self, data, step):
            self.calls.append((data, step))

    tracker = tracking.WandbTracker(FakeRun())
    tracker.log(dict(step=40, tokens=327680, origin={"step": 40, "out_dir": "out/trunk"}, val_loss=3.25, mfu=None,
                     lr=0, flag=True))
    assert FakeRun.calls == [(dict(tokens=327680, val_loss=3.25, lr=0), 40)]


def test_run_id_is_reused_only_when_resuming(tmp_path):
    assert tracking.stored_run_id(tmp_path, resuming=True) is None  # nothing stored yet: wandb makes one
    tracking.store_run_id(tmp_path, "abc123xy")
    assert tracking.stored_run_id(tmp_path, resuming=True) == "abc123xy"
    assert tracking.stored_run_id(tmp_path, resuming=False) is None  # a fresh start is a new wandb run
    assert not list(tmp_path.glob("*.tmp"))


def test_wandb_config_keeps_the_run_device_apart_from_the_config_key():
    config = tracking.wandb_config(RUN_INFO)
    assert config["device"] == "auto" and config["run"]["device"] == "cpu" and config["lr"] == 2e-3
    assert "config" not in config["run"]


def test_no_wandb_import_without_wandb_log_or_off_rank_0(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    for cfg, master in ((CFG, True), (dict(CFG, wandb_log=True), False)):
        tracker = tracking.start(cfg, None, tmp_path, master=master, resuming=False)
        tracker.log(RECORDS[0])
        tracker.finish()
        assert isinstance(tracker, tracking.NoTracker)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError) as error:
        tracking.start(dict(CFG, wandb_log=True), RUN_INFO, tmp_path, master=True, resuming=False)
    message = str(error.value)
    assert "\n" not in message and "pip install wandb" in message


def test_a_wandb_init_failure_is_one_line(tmp_path, monkeypatch):
    class FailingWandb:
        @staticmethod
        def init(**kwargs):
            raise RuntimeError("api_key not configured (no-tty)\ncall wandb.login()")

    monkeypatch.setitem(sys.modules, "wandb", FailingWandb)
    with pytest.raises(ConfigError) as error:
        tracking.start(dict(CFG, wandb_log=True), RUN_INFO, tmp_path, master=True, resuming=False)
    assert str(error.value).startswith("cannot start the wandb run (RuntimeError: api_key not configured (no-tty))")
    assert "\n" not in str(error.value) and not (tmp_path / "wandb_id").exists()


def test_train_logs_to_wandb_from_start_to_resume(tmp_path, tiny_data, monkeypatch):
    """train.py with wandb_log=True (offline): the run's wandb id is kept in out_dir, a resume continues that
    wandb run, and metrics.jsonl is written as without wandb."""
    pytest.importorskip("wandb")  # optional: requirements-extra.txt
    import train
    from helpers import TINY_MODEL
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={out}", "--schedule=constant", "--log_interval=2",
              "--wandb_log=True"]
    train.main([*common, "--max_steps=4"])
    run_id = (out / "wandb_id").read_text().strip()
    train.main([*common, "--max_steps=6", "--init_from=resume"])
    assert (out / "wandb_id").read_text().strip() == run_id
    runs = offline_runs(out)
    # one wandb folder per start, named by the second it started in: two starts in one second share it
    assert 1 <= len(runs) <= 2 and all(f"-{run_id}" in run.name for run in runs)
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [0, 2, 4, 6]
