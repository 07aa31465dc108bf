"""checkpoint.py: atomic writes, listing, safe loading with clear errors, pruning."""
import pytest
import torch

import checkpoint


def state(step):
    return {"model": {"w": torch.full((3,), float(step))}, "step": step}


def test_a_write_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    checkpoint.save(state(10), tmp_path, 10)

    def dies_halfway(obj, path):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is killed during the write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(state(20), tmp_path, 20)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [10]  # the .tmp file is not a checkpoint
    assert checkpoint.load_latest(tmp_path)["step"] == 10


def test_corrupt_files_name_themselves_and_the_previous_good_one(tmp_path):
    checkpoint.save(state(10), tmp_path, 10)
    checkpoint.save(state(20), tmp_path, 20)
    (tmp_path / "ckpt_0000020.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load_latest(tmp_path)
    message = str(info.value)
    assert message.startswith(f"checkpoint {tmp_path / 'ckpt_0000020.pt'} is corrupt or unreadable (")
    assert message.endswith(f"); the previous one is {tmp_path / 'ckpt_0000010.pt'}, "
                            f"use init_from={tmp_path / 'ckpt_0000010.pt'}")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="is not a checkpoint of this repository"):
        checkpoint.load(tmp_path / "other.pt")


def test_loading_never_runs_code_from_the_file(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"model": Payload(), "step": 1}, tmp_path / "evil.pt")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or unreadable"):
        checkpoint.load(tmp_path / "evil.pt")


def test_prune_keeps_the_last_k_and_every_permanent_step(tmp_path):
    for step in (5, 10, 15, 20, 25):
        checkpoint.save(state(step), tmp_path, step)
    checkpoint.prune(tmp_path, keep_last=2, keep_steps=[5, 15])
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [5, 15, 20, 25]
