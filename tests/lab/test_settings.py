"""lab/settings.py: every setting of a run defined once; every numeric one outside what it allows is one line and
exit 1 before anything is written; docs/training.md lists every key, and nanoGPT's names with ours."""
import re
import subprocess
import sys

import pytest

import train
from helpers import REPO
from lab import settings
from lab.config import NANOGPT, SAME, ConfigError

# Every numeric setting of train.py, a value it must refuse and the line that says so (written here, not derived).
REFUSED = {
    "seed": (-1, "seed=-1: must be in [0, 2**64)"),
    "data_seed": (2**64, f"data_seed={2**64}: must be in [0, 2**64) or None"),
    "dist_timeout_s": (0, "dist_timeout_s=0: must be > 0"),
    "n_layer": (0, "n_layer=0: must be >= 1 or None"),
    "n_head": (0, "n_head=0: must be >= 1 or None"),
    "n_embd": (-8, "n_embd=-8: must be >= 1 or None"),
    "ffw_size": (0, "ffw_size=0: must be >= 1 or None"),
    "n_kv_head": (0, "n_kv_head=0: must be >= 1 or None"),
    "batch_size": (0, "batch_size=0: must be >= 1"),
    "seq_len": (0, "seq_len=0: must be >= 1"),
    "micro_batch_size": (0, "micro_batch_size=0: must be >= 1 or None"),
    "max_steps": (0, "max_steps=0: must be >= 1"),
    "lr": (0.0, "lr=0.0: must be > 0"),
    "warmup_steps": (-1, "warmup_steps=-1: must be >= 0"),
    "cycle_steps": (0, "cycle_steps=0: must be >= 1 or None"),
    "cooldown_frac": (1.5, "cooldown_frac=1.5: must be in (0, 1]"),
    "cooldown_steps": (0, "cooldown_steps=0: must be >= 1 or None"),
    "final_lr_frac": (-0.1, "final_lr_frac=-0.1: must be in [0, 1] or None"),
    "beta1": (1.0, "beta1=1.0: must be in [0, 1)"),
    "beta2": (1.5, "beta2=1.5: must be in [0, 1)"),
    "weight_decay": (-1.0, "weight_decay=-1.0: must be >= 0"),
    "grad_clip": (-1.0, "grad_clip=-1.0: must be >= 0"),
    "eval_interval": (0, "eval_interval=0: must be >= 1"),
    "eval_tokens": (0, "eval_tokens=0: must be >= 1"),
    "eval_batch_size": (0, "eval_batch_size=0: must be >= 1"),
    "log_interval": (0, "log_interval=0: must be >= 1"),
    "ckpt_interval": (0, "ckpt_interval=0: must be >= 1"),
    "keep_last_ckpts": (0, "keep_last_ckpts=0: must be >= 1 or None"),
    "keep_ckpt_steps": ([100, 0], "keep_ckpt_steps=[100, 0]: each item must be int >= 1"),
    "swa_interval": (0, "swa_interval=0: must be >= 1"),
    "swa_window": (0, "swa_window=0: must be >= 1"),
    "ema_decay": (1.0, "ema_decay=1.0: must be in [0, 1)"),
    "ema_interval": (0, "ema_interval=0: must be >= 1"),
    "peak_tflops": (0.0, "peak_tflops=0.0: must be > 0 or None"),
}


def numeric(setting):
    kinds = set(setting.accepted_types()) | ({setting.items} if setting.items else set())
    return bool(kinds & {int, float}) and not isinstance(setting.default, bool)


def test_every_numeric_setting_is_refused_outside_what_it_allows(tmp_path):
    assert set(REFUSED) == {key for key, setting in settings.SETTINGS.items() if numeric(setting)}
    for key, (value, message) in REFUSED.items():
        with pytest.raises(ConfigError) as error:
            train.main([f"--{key}={value!r}", f"--out_dir={tmp_path / key}"])
        assert str(error.value) == message
        assert not (tmp_path / key).exists()  # nothing written
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):  # a config built in code: the same check
            settings.check_config(dict(settings.DEFAULTS, **{key: value}), world_size=1)


def test_a_bad_setting_is_one_line_and_exit_1(tmp_path):
    """--weight_decay=-1 used to start training."""
    done = subprocess.run([sys.executable, "train.py", "configs/cpu_tiny.py", "--weight_decay=-1",
                           f"--out_dir={tmp_path / 'run'}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr == "error: weight_decay=-1.0: must be >= 0\n" and done.stdout == ""
    assert not (tmp_path / "run").exists()


def test_every_setting_has_a_help_and_docs_training_md_lists_every_key():
    docs = (REPO / "docs" / "training.md").read_text()
    listed = {key for row in docs.splitlines() if row.startswith("| `")
              for key in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert [key for key, setting in settings.SETTINGS.items() if not setting.help] == []
    assert sorted(set(settings.SETTINGS) - listed) == []
    assert settings.DEFAULTS == {key: setting.default for key, setting in settings.SETTINGS.items()}


def test_docs_training_md_shows_nanogpt_s_names_with_ours():
    docs = (REPO / "docs" / "training.md").read_text()
    section = docs[docs.index("## nanoGPT's names"):].split("\n## ")[0]
    rows = {name: row.split("|", 2)[2] for row in section.splitlines() if row.startswith("| `")
            for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert set(rows) == set(NANOGPT)
    for name, pairs in NANOGPT.items():
        for ours, how in pairs:
            said = "none" if ours is None else "the same" if ours == name and how == SAME else f"`{ours}`"
            assert said in rows[name], (name, ours)
