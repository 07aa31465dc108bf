"""checkpoint.py, the converter: a folder to one file and back, the same tensors; the file resumes a run exactly."""
import subprocess
import sys

import torch

import train
from helpers import REPO, TINY_MODEL, metrics
from lab import checkpoint


def test_conversion_round_trip_and_an_old_single_file_resumes_exactly(tmp_path, tiny_data):
    """A folder converted to one file (checkpoint.py --to_file) and back (--to_dcp) holds the same tensors; the
    single file, as earlier versions wrote it, resumes a run to the same losses as the uninterrupted run."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=6", "--log_interval=1", "--eval_interval=3",
              "--dtype=float32", "--ema=True", "--ema_decay=0.9", "--keep_ckpt_steps=[3]"]
    full = tmp_path / "full"
    train.main([*common, f"--out_dir={full}"])
    old = tmp_path / "old"
    old.mkdir()
    run = lambda *args: subprocess.run([sys.executable, str(REPO / "checkpoint.py"), *args], capture_output=True,
                                       text=True, cwd=tmp_path)
    assert run(f"--to_file={full / 'ckpt_0000003'}", f"--out={old / 'ckpt_0000003.pt'}").returncode == 0
    back = run(f"--to_dcp={old / 'ckpt_0000003.pt'}", f"--out={tmp_path / 'back' / 'ckpt_0000003'}")
    assert back.returncode == 0, back.stderr
    original, single, again = (checkpoint.load(p) for p in (
        full / "ckpt_0000003", old / "ckpt_0000003.pt", tmp_path / "back" / "ckpt_0000003"))
    for name in ("model", "ema"):
        flat = lambda s: {k: v for k, v in (s[name].items() if name == "model" else s[name]["average"].items())}
        assert all(torch.equal(flat(original)[k], flat(single)[k]) and torch.equal(flat(again)[k], v)
                   for k, v in flat(single).items())
    assert original["optimizer"]["state"][0]["exp_avg"].equal(again["optimizer"]["state"][0]["exp_avg"])
    bad = run("--to_file=nowhere", "--out=x.pt")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: checkpoint nowhere does not exist"
    (tmp_path / "kept.pt").write_text("yours")  # a file, or a folder, already there is never replaced
    for args in ([f"--to_file={full / 'ckpt_0000003'}", f"--out={tmp_path / 'kept.pt'}"],
                 [f"--to_dcp={old / 'ckpt_0000003.pt'}", f"--out={tmp_path / 'back' / 'ckpt_0000003'}"]):
        refused, what = run(*args), "file" if "to_file" in args[0] else "folder"
        assert refused.returncode == 1 and refused.stderr.strip().endswith(f"exists: give a new {what}")
    assert (tmp_path / "kept.pt").read_text() == "yours"

    train.main([*common, f"--out_dir={old}", "--init_from=resume"])
    later = lambda out: [r for r in metrics(out) if r["step"] > 3]
    assert later(old) == [dict(r, elapsed_s=mine["elapsed_s"], tokens_per_s=mine["tokens_per_s"], mfu=mine["mfu"])
                          for r, mine in zip(later(full), later(old), strict=True)]
