"""bench/checkpoint.py under torchrun: its table, written from a folder of its own inside --dir, which it deletes and
nothing else."""
from helpers import torchrun


def test_the_bench_measures_in_a_folder_of_its_own_and_deletes_only_that(tmp_path):
    (tmp_path / "yours.txt").write_text("kept")
    done = torchrun(1, "bench.checkpoint", "--model=cpu_130k", "--vocab_size=257", f"--dir={tmp_path}", script="-m")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split()[0:2] for line in done.stdout.splitlines()[2:]]
    assert [" ".join(r) for r in rows] == ["dcp save", "dcp async", "dcp resume", "file save", "file resume"]
    assert [p.name for p in tmp_path.iterdir()] == ["yours.txt"] and (tmp_path / "yours.txt").read_text() == "kept"
    refused = torchrun(1, "bench.checkpoint", f"--dir={tmp_path / 'nowhere'}", script="-m")
    assert refused.returncode != 0 and f"--dir={tmp_path / 'nowhere'} is not a folder" in refused.stderr
