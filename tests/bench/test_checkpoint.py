"""bench/checkpoint.py under torchrun: its table, written from a folder of its own inside --dir, which it deletes and
nothing else."""
import pytest

from bench import checkpoint as bench_checkpoint
from helpers import torchrun
from lab.config import ConfigError


def test_the_bench_measures_in_a_folder_of_its_own_and_deletes_only_that(tmp_path):
    (tmp_path / "yours.txt").write_text("kept")
    done = torchrun(1, "bench.checkpoint", "--model=cpu_130k", "--vocab_size=257", f"--dir={tmp_path}", script="-m")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split()[0:2] for line in done.stdout.splitlines()[2:]]
    assert [" ".join(r) for r in rows] == ["dcp save", "dcp async", "dcp resume", "file save", "file resume"]
    assert [p.name for p in tmp_path.iterdir()] == ["yours.txt"] and (tmp_path / "yours.txt").read_text() == "kept"


def test_a_dir_that_is_not_there_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")  # as under torchrun; refused before any process group
    with pytest.raises(ConfigError, match=rf"^--dir={tmp_path / 'nowhere'} is not a folder$"):
        bench_checkpoint.main([f"--dir={tmp_path / 'nowhere'}"])
