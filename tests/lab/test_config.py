"""lab/config.py: defaults <- config files <- --key=value, typed values, one-line errors, --help."""
import subprocess
import sys

import pytest

from helpers import REPO
from lab.config import ConfigError, parse_args

DEFAULTS = dict(lr=1e-3, max_steps=100, compile=False, cooldown_shape="linear", data_dir="data/x",
                cooldown_steps=None, keep_ckpt_steps=[])
TYPES = dict(cooldown_steps=(int, type(None)))


def test_files_then_overrides_in_order(tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("lr = 2e-3\nmax_steps = 300\nimport math\n_private = 1\n")
    second.write_text("max_steps = 400\n")
    cfg = parse_args([str(first), str(second), "--lr=5e-4"], DEFAULTS, TYPES)
    assert cfg["lr"] == 5e-4 and cfg["max_steps"] == 400  # the override wins, the later file wins
    assert cfg["compile"] is False and DEFAULTS["lr"] == 1e-3  # untouched keys keep defaults; defaults not mutated


def test_values_are_python_literals_except_for_string_keys():
    cfg = parse_args(["--compile", "--max_steps=7", "--cooldown_shape=1-sqrt", "--data_dir=123",
                      "--cooldown_steps=None", "--keep_ckpt_steps=[10,20]", "--lr=3"], DEFAULTS, TYPES)
    assert cfg["compile"] is True and cfg["max_steps"] == 7
    assert cfg["cooldown_shape"] == "1-sqrt" and cfg["data_dir"] == "123"  # a path that looks like a number
    assert cfg["cooldown_steps"] is None and cfg["keep_ckpt_steps"] == [10, 20]
    assert cfg["lr"] == 3.0 and isinstance(cfg["lr"], float)  # an int where a float is expected becomes float


@pytest.mark.parametrize("args, message", [
    (["--lrr=1"], "unknown config key 'lrr' (did you mean 'lr'?)"),
    (["--max_steps=1.5"], "config key 'max_steps' expects int, got 1.5 (float)"),
    (["--compile=1"], "config key 'compile' expects bool, got 1 (int)"),
    (["--max_steps"], "override '--max_steps' needs a value: --max_steps=VALUE"),
    (["missing.py"], "config file 'missing.py' does not exist"),
])
def test_bad_input_is_a_config_error(args, message):
    with pytest.raises(ConfigError) as error:
        parse_args(args, DEFAULTS, TYPES)
    assert str(error.value) == message


def test_broken_or_unknown_config_file(tmp_path):
    broken, unknown = tmp_path / "broken.py", tmp_path / "unknown.py"
    broken.write_text("lr = 1 / 0\n")
    unknown.write_text("max_step = 3\n")
    with pytest.raises(ConfigError, match="failed to run: ZeroDivisionError"):
        parse_args([str(broken)], DEFAULTS)
    with pytest.raises(ConfigError, match=r"in .*unknown.py: unknown config key 'max_step' \(did you mean 'max_steps'"):
        parse_args([str(unknown)], DEFAULTS)


def test_help_lists_every_setting_and_exits(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--lr=1", "--help"], DEFAULTS, TYPES)
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "Settings (--key=value) and their defaults:" in out
    assert "--max_steps" in out and "100" in out and "'linear'" in out


@pytest.mark.parametrize("command, first_line, setting", [
    (["train.py"], "Train the paper's GPT", "--max_steps"),
    (["sweep.py"], "Run the experiment suites of lab/suites.py", "--scale"),  # positional names and -h mix
    (["-m", "bench.nanogpt"], "Our train.py against karpathy/nanoGPT at the same shape", "--profile"),
])
def test_scripts_print_their_docstring_on_help(command, first_line, setting):
    out = subprocess.run([sys.executable, *command, "-h"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith(first_line) and setting in out.stdout


def test_write_atomically_keeps_the_old_file_when_the_write_dies(tmp_path):
    from lab.config import write_atomically
    target = tmp_path / "summary.md"
    target.write_text("old")

    def dies_halfway(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, dies_halfway)
    assert target.read_text() == "old"
    assert write_atomically(target, lambda tmp: tmp.write_text("new")) == target
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]  # the failed write's leftover was renamed over
