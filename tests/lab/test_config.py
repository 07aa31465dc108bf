"""lab/config.py: defaults <- config files <- --key=value, typed values, what each setting allows, nanoGPT's names,
one-line errors, --help."""
import subprocess
import sys
import time

import pytest

from helpers import REPO
from lab.config import (NANOGPT, ConfigError, Setting, _unknown_key, as_table, check_values, defaults_of, parse_args,
                        types_of)

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
    table = dict(lr=Setting(1e-3, "the peak learning rate", "> 0"), shape=Setting("linear", "the cooldown's shape"),
                 steps=Setting(None, "its steps", ">= 1", (int, type(None))))
    with pytest.raises(SystemExit) as stop:
        parse_args(["--lr=1", "--help"], table)
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[lines.index("Settings (--key=value), their defaults and what they allow:") + 1:] == [
        "  --lr     0.001     the peak learning rate (> 0)",
        "  --shape  'linear'  the cooldown's shape",
        "  --steps  None      its steps (>= 1 or None)"]


def test_a_script_s_help_is_its_docstring_then_its_settings():
    out = subprocess.run([sys.executable, "train.py", "-h"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("Train the paper's GPT") and "  --max_steps " in out.stdout


TABLE = dict(lr=Setting(1e-3, "", "> 0"), beta=Setting(0.9, "", "[0, 1)"), frac=Setting(0.2, "", "(0, 1]"),
             steps=Setting(10, "", ">= 1"), seed=Setting(0, "", "[0, 2**64)"),
             top_k=Setting(None, "", ">= 1", (int, type(None))), size=Setting(None, "", ">= 1", (int, type(None), str)),
             mode=Setting("ddp", "", ("ddp", "fsdp")), keep=Setting([], "", ">= 1", items=int),
             fracs=Setting([0.2], "", "(0, 1]", items=float), name=Setting("x", ""))


@pytest.mark.parametrize("arg, message", [
    ("--lr=0", "lr=0.0: must be > 0"), ("--lr=-1", "lr=-1.0: must be > 0"), ("--lr=nan", None),
    ("--beta=1", "beta=1.0: must be in [0, 1)"), ("--beta=-0.1", "beta=-0.1: must be in [0, 1)"),
    ("--frac=0", "frac=0.0: must be in (0, 1]"), ("--frac=1.01", "frac=1.01: must be in (0, 1]"),
    ("--steps=0", "steps=0: must be >= 1"), (f"--seed={2**64}", f"seed={2**64}: must be in [0, 2**64)"),
    ("--seed=-1", "seed=-1: must be in [0, 2**64)"), ("--top_k=0", "top_k=0: must be >= 1 or None"),
    ("--size=0", "size=0: must be >= 1 or None"), ("--mode=tp", "mode='tp': must be one of ddp, fsdp"),
    ("--keep=[10,0]", "keep=[10, 0]: each item must be int >= 1"),
    ("--keep=[1.5]", "keep=[1.5]: each item must be int >= 1"),
    ("--fracs=[0.5,2]", "fracs=[0.5, 2]: each item must be float in (0, 1]"),
    ("--fracs=['a']", "fracs=['a']: each item must be float in (0, 1]"),
])
def test_a_value_outside_what_a_setting_allows_is_one_line_naming_the_key_the_value_and_what_is_allowed(arg, message):
    with pytest.raises(ConfigError) as error:
        parse_args([arg], TABLE)
    if message is None:  # nan: no range holds it; the value is parsed as a string, which a float setting refuses
        assert str(error.value) == "config key 'lr' expects float, got 'nan' (str)"
    else:
        assert str(error.value) == message


def test_values_within_what_is_allowed_pass_and_a_config_file_is_checked_too(tmp_path):
    cfg = parse_args(["--lr=1e-9", "--beta=0", "--frac=1", "--steps=1", f"--seed={2**64 - 1}", "--top_k=None",
                      "--size=auto", "--mode=fsdp", "--keep=[1,5]", "--fracs=[1,0.5]"], TABLE)
    assert cfg["lr"] == 1e-9 and cfg["frac"] == 1.0 and cfg["size"] == "auto" and cfg["fracs"] == [1, 0.5]
    config = tmp_path / "bad.py"
    config.write_text("beta = 1.5\n")
    with pytest.raises(ConfigError, match=r"^beta=1.5: must be in \[0, 1\)$"):
        parse_args([str(config)], TABLE)
    check_values(dict(defaults_of(TABLE), lr=2.0), TABLE)  # a config built in code: the same check
    with pytest.raises(ConfigError, match=r"^lr=-2.0: must be > 0$"):
        check_values(dict(defaults_of(TABLE), lr=-2.0), TABLE)


def test_a_plain_table_of_defaults_still_parses():
    assert parse_args(["--cooldown_steps=3"], DEFAULTS, TYPES)["cooldown_steps"] == 3
    assert as_table(DEFAULTS, TYPES)["cooldown_steps"].accepted_types() == (int, type(None))
    assert defaults_of(as_table(DEFAULTS, TYPES)) == DEFAULTS and types_of(as_table(DEFAULTS, TYPES)) == TYPES


# nanoGPT's settings (karpathy/nanoGPT 3adf61e: train.py, and sample.py's own) and where each lives here: the same
# name, another one (the did-you-mean names it), or none (the error says so).
NANOGPT_TRAIN = dict(
    out_dir="out_dir", eval_interval="eval_interval", log_interval="log_interval", eval_iters="eval_tokens",
    eval_only=None, always_save_checkpoint="ckpt_interval", init_from="init_from", wandb_log="wandb_log",
    wandb_project="wandb_project", wandb_run_name="wandb_run_name", dataset="data_dir",
    gradient_accumulation_steps="batch_size", batch_size="batch_size", block_size="seq_len", n_layer="n_layer",
    n_head="n_head", n_embd="n_embd", dropout=None, bias=None, learning_rate="lr", max_iters="max_steps",
    weight_decay="weight_decay", beta1="beta1", beta2="beta2", grad_clip="grad_clip", decay_lr="schedule",
    warmup_iters="warmup_steps", lr_decay_iters="cycle_steps", min_lr="final_lr_frac", backend=None, device="device",
    dtype="dtype", compile="compile")
NANOGPT_SAMPLE = dict(init_from="ckpt", out_dir="ckpt", start="start", num_samples="num_samples",
                      max_new_tokens="max_new_tokens", temperature="temperature", top_k="top_k", seed="seed",
                      device="device", dtype="dtype", compile=None)


@pytest.mark.parametrize("script, key, ours", [("train.py", k, v) for k, v in NANOGPT_TRAIN.items()]
                         + [("sample.py", k, v) for k, v in NANOGPT_SAMPLE.items()])
def test_every_nanogpt_name_is_understood(script, key, ours):
    import sample
    from lab.settings import SETTINGS
    table = SETTINGS if script == "train.py" else sample.SETTINGS
    assert key in NANOGPT
    if ours == key:  # ours too: accepted as it is
        default = table[key].default
        assert parse_args([f"--{key}={default if isinstance(default, str) else repr(default)}"], table)[key] == default
        return
    with pytest.raises(ConfigError) as error:
        parse_args([f"--{key}=1"], table)
    expected = "has no counterpart here (" if ours is None else f"is {ours} here ("
    assert str(error.value).startswith(f"unknown config key '{key}': nanoGPT's {key} {expected}")


def test_nanogpt_s_conversions_are_stated():
    from lab.settings import SETTINGS
    hint = lambda key: str(_unknown_key(key, list(SETTINGS)))
    assert "final_lr_frac = min_lr / learning_rate" in hint("min_lr")
    assert "nanoGPT's batch_size x gradient_accumulation_steps" in hint("gradient_accumulation_steps")
    assert "micro_batch_size is nanoGPT's batch_size" in hint("gradient_accumulation_steps")
    assert "eval_tokens = eval_iters x batch_size x block_size" in hint("eval_iters")
    assert "None: max_steps" in hint("lr_decay_iters") and "cooldown_steps" in hint("lr_decay_iters")
    assert hint("lrr") == "unknown config key 'lrr' (did you mean 'lr'?)"  # not nanoGPT's: the closest name


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


def test_a_figure_drawn_again_is_the_same_file(tmp_path):
    """write_figure: PNG and PDF by the suffix, written atomically; a PDF holds no creation date, so a figure drawn
    again (another second) is byte for byte the file it replaces."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lab.config import write_figure

    def draw_and_write(path):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2])
        write_figure(fig, path, dpi=50)
        plt.close(fig)
        return path.read_bytes()
    first = {suffix: draw_and_write(tmp_path / f"a{suffix}") for suffix in (".pdf", ".png")}
    time.sleep(1.1)  # a creation date would differ now
    assert {suffix: draw_and_write(tmp_path / f"a{suffix}") for suffix in (".pdf", ".png")} == first
    assert first[".pdf"].startswith(b"%PDF") and b"CreationDate" not in first[".pdf"]
    assert first[".png"].startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png"]  # no temporary file left
