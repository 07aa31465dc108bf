"""bench/data.py: every bad input is one line and exit 1, the child prepare_data.py's own error included; the
times of a start's data checks are of the folder's own shards."""
import sys

import pytest

from bench import data as bench_data


@pytest.mark.parametrize("args, message", [
    (["--repeat=0"], "repeat=0: must be >= 1"),
    (["--trials=0"], "trials=0: must be >= 1"),
    (["--num_proc=0"], "num_proc=0: must be >= 1"),
    (["--tokenizer=nope"], "unknown tokenizer 'nope'"),
])
def test_bench_data_bad_input_is_one_line(monkeypatch, capsys, args, message):
    monkeypatch.setattr(sys, "argv", ["bench.data", *args])
    with pytest.raises(SystemExit) as exited:
        bench_data.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_check_times_are_of_the_folders_own_shards(tmp_path, capsys):
    from helpers import write_bytes_dataset
    folder = write_bytes_dataset(tmp_path / "data", "some text " * 30000, val_tokens=100000)
    bench_data.print_check_times(folder, trials=1)
    line = capsys.readouterr().out
    assert line.startswith("a start's data checks, 0.6 MB of shards: ") and "with meta.json's record" in line
    assert line.endswith(" GB/s: sha256 and the largest token)\n")


def test_the_child_prepare_data_py_s_own_error_is_reported(monkeypatch, capsys, tmp_path):
    (tmp_path / "prepare_data.py").write_text("import sys\nprint('error: the disk is full', file=sys.stderr)\n"
                                              "sys.exit(1)\n")
    monkeypatch.setattr(bench_data, "REPO", tmp_path)  # a prepare_data.py that fails at once
    monkeypatch.setattr(sys, "argv", ["bench.data", "--tokenizer=bytes", "--repeat=1", "--trials=1"])
    with pytest.raises(SystemExit) as exited:
        bench_data.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err == "error: prepare_data.py failed: the disk is full\n"
