"""lab/checkpoint.py: folders of DCP shards written atomically, listed, loaded safely with clear errors, pruned; old
single files still load; resharding between FSDP, DDP and one process; each process reads only its own shards."""
import io
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import torch
from torch.distributed.checkpoint import metadata as dcp_metadata

import train
from helpers import ENV, REPO, TINY_MODEL, close, metrics, torchrun
from lab import checkpoint


def state(step):
    return {"model": {"w": torch.full((3,), float(step))}, "optimizer": {"state": {0: {"step": torch.tensor(1.0)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.95), "params": [0]}]}, "step": step, "rng": torch.ones(4)}


def test_a_write_killed_before_its_rename_leaves_no_checkpoint_that_looks_finished(tmp_path, monkeypatch):
    checkpoint.save(state(10), tmp_path, 10)

    def killed(*args):
        raise KeyboardInterrupt  # every shard and state.pt written, the process killed before the rename
    monkeypatch.setattr(checkpoint, "_publish", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(state(20), tmp_path, 20)
    monkeypatch.undo()
    assert (tmp_path / ".ckpt_0000020.partial" / "state.pt").is_file()
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [10]
    assert checkpoint.load_latest(tmp_path)["step"] == 10
    (tmp_path / "ckpt_0000030").mkdir()  # a folder without state.pt (a copy cut short) is no checkpoint either
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [10]
    checkpoint.prune(tmp_path, keep_last=2)  # and the next save's pruning clears what the kill left
    assert not (tmp_path / ".ckpt_0000020.partial").exists()


def test_a_folder_holds_dcp_shards_and_a_small_state_file_and_loads_back(tmp_path):
    path = checkpoint.save(state(7), tmp_path, 7)
    assert path == tmp_path / "ckpt_0000007" and {p.name for p in path.iterdir()} == {
        ".metadata", "__0_0.distcp", "state.pt"}
    rest = torch.load(path / "state.pt", weights_only=True)
    assert rest["model"]["w"] == {"__dcp__": "model.w", "shape": [3], "dtype": "float32"}
    assert torch.equal(rest["rng"], torch.ones(4))  # not a DCP tensor: rank 0's RNG
    loaded = checkpoint.load(path)
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 7.0))
    assert loaded["optimizer"]["param_groups"] == state(7)["optimizer"]["param_groups"]


def test_corrupt_checkpoints_name_themselves_and_the_previous_good_one(tmp_path):
    for step in (10, 20):
        checkpoint.save(state(step), tmp_path, step)
    (tmp_path / "ckpt_0000020" / "__0_0.distcp").write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load_latest(tmp_path)
    assert str(info.value) == (f"checkpoint {tmp_path / 'ckpt_0000020'} is corrupt or unreadable (CheckpointException)"
                               f"; the previous one is {tmp_path / 'ckpt_0000010'}, "
                               f"use init_from={tmp_path / 'ckpt_0000010'}")
    (tmp_path / "ckpt_0000020" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="ckpt_0000020 is corrupt or unreadable"):
        checkpoint.load_latest(tmp_path)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="is not a checkpoint of this repository"):
        checkpoint.load(tmp_path / "other.pt")


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_loading_never_runs_code_from_the_checkpoint(tmp_path, capsys):
    torch.save({"model": Payload(), "step": 1}, tmp_path / "evil.pt")  # an old single file
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or unreadable"):
        checkpoint.load(tmp_path / "evil.pt")
    path = checkpoint.save(state(5), tmp_path, 5)
    metadata = path / ".metadata"  # DCP's own metadata is a pickle: DCP would unpickle anything
    metadata.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or unreadable"):
        checkpoint.load(path)
    torch.save({"model": Payload(), "step": 1}, path / "state.pt")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or unreadable"):
        checkpoint.load(path)
    assert "pwned" not in capsys.readouterr().out


def call(module, name, *args):
    """A pickle that asks the unpickler for module.name and calls it with args, as a crafted .metadata would."""
    return f"c{module}\n{name}\n".encode() + pickle.dumps(args, protocol=0)[:-1] + b"R."


METADATA = "torch.distributed.checkpoint.metadata"
# a payload through each name the metadata unpickler allows, and past it (target: a file it must not write)
PAYLOADS = {
    "torch.save": lambda target: call("torch", "save", {"pwned": 1}, str(target)),  # any torch.* but dtypes, Size
    "torch.Size, then builtins": lambda target: call("torch", "Size", [1])[:-1] + call("builtins", "exec", "1"),
    "a dtype called": lambda target: call("torch", "float32", str(target)),
    "the module's non-classes": lambda target: call(METADATA, "field"),
    "torch through the module": lambda target: call(METADATA, "torch"),
    "_get_layout past layouts": lambda target: call("torch.serialization", "_get_layout", "save"),
    "PosixPath, then builtins.getattr": lambda target: call("pathlib", "PosixPath", str(target))[:-1] + call(
        "builtins", "getattr", "x", "touch"),
    "another pathlib name": lambda target: call("pathlib", "Path", str(target)),
    "another filesystem name": lambda target: call("torch.distributed.checkpoint.filesystem", "FileSystemWriter",
                                                   str(target)),
}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_crafted_metadata_file_runs_nothing_through_any_allowed_name(tmp_path, payload):
    path = checkpoint.save(state(5), tmp_path, 5)
    target = tmp_path / "written_by_the_payload"
    (path / ".metadata").write_bytes(PAYLOADS[payload](target))
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or unreadable"):
        checkpoint.load(path)
    assert not target.exists()


def test_the_metadata_unpickler_builds_exactly_the_names_it_allows():
    from lab.checkpoint import _MetadataUnpickler
    from torch.distributed.checkpoint import filesystem, metadata

    def unpickled(data):
        return _MetadataUnpickler(io.BytesIO(data)).load()

    assert unpickled(call("torch", "Size", [2, 3])) == torch.Size([2, 3])
    assert unpickled(b"ctorch\nbfloat16\n.") is torch.bfloat16
    assert unpickled(call("torch.serialization", "_get_layout", "torch.strided")) is torch.strided
    assert unpickled(call("pathlib", "PosixPath", "/a")) == Path("/a")
    assert unpickled(call("pathlib", "PurePosixPath", "/a")) == PurePosixPath("/a")
    assert unpickled(call("torch.distributed.checkpoint.filesystem", "_StorageInfo", "f", 0, 8)) == \
        filesystem._StorageInfo("f", 0, 8)
    assert unpickled(call(METADATA, "StorageMeta")) == metadata.StorageMeta()
    with pytest.raises(pickle.UnpicklingError, match="^builtins.print is not part of a DCP checkpoint's metadata$"):
        unpickled(call("builtins", "print", "pwned"))


@pytest.mark.parametrize("module, name", [("torch", "save"), ("torch", "load"), (METADATA, "field"),
                                          (METADATA, "torch"), ("pathlib", "Path"), ("builtins", "getattr"),
                                          ("torch.distributed.checkpoint.filesystem", "FileSystemWriter")])
def test_the_metadata_unpickler_refuses_every_other_name_by_name(module, name):
    from lab.checkpoint import _MetadataUnpickler
    with pytest.raises(pickle.UnpicklingError, match=f"^{module}.{name} is not part of a DCP checkpoint's metadata$"):
        _MetadataUnpickler(io.BytesIO(f"c{module}\n{name}\n.".encode())).load()


def test_the_metadata_keeps_its_storage_meta_and_gets_this_loads_id(tmp_path):
    """The reader returns the checkpoint's own StorageMeta with this load's id; metadata written without one (an
    older DCP) gets a new one. A load records the bytes it read: here every shard's."""
    path = checkpoint.save(state(5), tmp_path, 5)
    saved = pickle.loads((path / ".metadata").read_bytes())  # trusted here: the test wrote it
    reader = checkpoint.SafeReader(path)
    read = reader.read_metadata()
    assert read.storage_meta.save_id == saved.storage_meta.save_id and read.storage_meta.load_id == reader.load_id
    del saved.storage_meta
    (path / ".metadata").write_bytes(pickle.dumps(saved))
    reader = checkpoint.SafeReader(path)
    assert reader.read_metadata().storage_meta == dcp_metadata.StorageMeta(load_id=reader.load_id)
    assert checkpoint.load(path)["step"] == 5
    assert checkpoint.SafeReader.bytes_read == sum(info.length for info in saved.storage_data.values())


def test_load_says_what_is_wrong_and_reads_tensors_only_when_asked(tmp_path, monkeypatch):
    with pytest.raises(checkpoint.CheckpointError, match=f"^checkpoint {tmp_path / 'none'} does not exist$"):
        checkpoint.load(tmp_path / "none")
    torch.save({"model": Payload(), "step": 1}, tmp_path / "evil.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch.load's default would then unpickle code
    with pytest.raises(checkpoint.CheckpointError, match=f"^checkpoint {tmp_path / 'evil.pt'} is corrupt or "
                                                          r"unreadable \(UnpicklingError\)$"):
        checkpoint.load(tmp_path / "evil.pt")
    for other in ({"model": {}}, ["model", "step"]):  # no step; a list that holds both names
        torch.save(other, tmp_path / "other.pt")
        with pytest.raises(checkpoint.CheckpointError, match="^.*other.pt is not a checkpoint of this repository"):
            checkpoint.load(tmp_path / "other.pt")
    torch.save({"model": {}, "step": 3}, tmp_path / "weights.pt")
    with pytest.raises(checkpoint.CheckpointError, match=f"^{tmp_path / 'weights.pt'} holds no optimizer, rng: a "
                                                          "weight file, not a training checkpoint; see the other$"):
        checkpoint.load(tmp_path / "weights.pt", "; see the other", required=("model", "optimizer", "step", "rng"))
    path = checkpoint.save(state(5), tmp_path, 5)
    assert checkpoint.load(path, tensors=False)["model"] == {"w": {"__dcp__": "model.w", "shape": [3],
                                                                    "dtype": "float32"}}  # references
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.full((3,), 5.0))


def test_a_checkpoint_written_on_a_gpu_loads_on_a_cpu(tmp_path, monkeypatch):
    """Its tensors are tagged for CUDA (a location tag forged here); torch.load alone would refuse them."""
    import torch.serialization
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"model": {"w": torch.ones(2)}, "step": 1}, tmp_path / "gpu.pt")
    assert torch.equal(checkpoint.load(tmp_path / "gpu.pt")["model"]["w"], torch.ones(2))


def test_prune_keeps_the_last_k_and_every_permanent_step_folders_and_old_files(tmp_path):
    for step in (5, 10, 15, 20, 25):
        checkpoint.save(state(step), tmp_path, step)
    torch.save(state(1), tmp_path / "ckpt_0000001.pt")  # of an earlier version
    checkpoint.prune(tmp_path, keep_last=2, keep_steps=[5, 15])
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [5, 15, 20, 25]
    assert not (tmp_path / "ckpt_0000010").exists() and not (tmp_path / "ckpt_0000001.pt").exists()
    checkpoint.prune(tmp_path, keep_last=None)  # None keeps every checkpoint
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [5, 15, 20, 25]
    with pytest.raises(ValueError, match="keep_last=0: a resume needs the newest checkpoint"):
        checkpoint.prune(tmp_path, keep_last=0)  # never all of them
    checkpoint.prune(tmp_path, keep_last=1)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [25]


def test_fsdp_on_three_processes_resumes_under_ddp_on_two_and_on_one_process(tmp_path, tiny_data):
    """Resharding: a checkpoint saved by FSDP2 on 3 processes (whose shards do not split evenly), with an EMA,
    continues under DDP on 2 processes and on one process with the losses of the uninterrupted FSDP run."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=6", "--log_interval=1", "--eval_interval=3",
              "--dtype=float32", "--schedule=constant", "--batch_size=6", "--ema=True", "--ema_decay=0.9",
              "--keep_ckpt_steps=[3]"]
    fsdp = tmp_path / "fsdp"
    result = torchrun(3, *common, f"--out_dir={fsdp}", "--parallelism=fsdp")
    assert result.returncode == 0, result.stderr[-3000:]
    later = lambda out: [r for r in metrics(out) if r["step"] > 3]
    for name, processes in (("ddp", 2), ("one", 1)):
        (tmp_path / name).mkdir()
        shutil.copytree(fsdp / "ckpt_0000003", tmp_path / name / "ckpt_0000003")
        args = [*common, f"--out_dir={tmp_path / name}", "--init_from=resume"]
        if processes > 1:
            result = torchrun(processes, *args)
            assert result.returncode == 0, result.stderr[-3000:]
        else:
            train.main(args)
        close(later(tmp_path / name), later(fsdp), keys=("train_loss", "val_loss", "val_loss_ema"))


def test_each_of_three_fsdp_processes_reads_only_its_own_shards(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3",
                             str(REPO / "tests" / "torchrun_shards.py"), str(tmp_path)],
                            capture_output=True, text=True, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("report_*.json"))]
    assert sorted(r["rank"] for r in reports) == [0, 1, 2] and all(r["same"] for r in reports)
    total = reports[0]["total"]
    for r in reports:  # about a third (rows of 320 and 96 split 107/107/106, 32/32/32) and the step counts
        assert r["read"] < total / 3 * 1.03 + 2048, (r, total)
    assert sum(r["read"] for r in reports) >= total - 4096
