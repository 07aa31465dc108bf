"""lab/kernels.py: the speed levers' settings checked, what a run says when one cannot run here (and that the model
is then PyTorch's own), and on a GPU (marked gpu) each lever's losses against PyTorch's ops."""
import importlib.util

import pytest
import torch

import train
from helpers import TINY_MODEL, metrics
from lab import kernels, settings
from lab.config import ConfigError
from model import GPT, GPTConfig

CONFIG = GPTConfig(vocab_size=320, block_size=64, n_layer=2, n_head=2, n_embd=64, ffw_size=128)


def test_unknown_lever_settings_are_one_line_errors():
    cfg = dict(settings.DEFAULTS)
    with pytest.raises(ConfigError, match="^attention='fast': must be one of auto, flash, cudnn, efficient, math$"):
        settings.check_config(dict(cfg, attention="fast"), 1)
    with pytest.raises(ConfigError, match="^fused_loss='yes': must be one of none, liger, cce$"):
        settings.check_config(dict(cfg, fused_loss="yes"), 1)
    with pytest.raises(ConfigError, match="^compile_mode='fast': must be one of default, max-autotune, "
                                          "max-autotune-no-cudagraphs, reduce-overhead$"):
        settings.check_config(dict(cfg, compile_mode="fast"), 1)
    with pytest.raises(ConfigError, match="^micro_batch_size must be a number, None or 'auto', got 'most'$"):
        settings.check_config(dict(cfg, micro_batch_size="most"), 1)


def test_on_a_cpu_every_lever_says_what_it_falls_back_to_and_the_model_is_unchanged():
    model = GPT(CONFIG)
    before = {name: type(module) for name, module in model.named_modules()}
    cfg = dict(settings.DEFAULTS, dtype="float32", attention="flash", fused_loss="liger", liger_kernels=True,
               float8=True)
    notes = kernels.apply(model, cfg, torch.device("cpu"))
    assert notes == ["attention=flash chooses among SDPA's CUDA kernels: PyTorch's choice on cpu",
                     "fused_loss=liger needs a CUDA GPU: torch's cross-entropy instead",
                     "liger_kernels needs a CUDA GPU: PyTorch's RMSNorm, SwiGLU and rotary instead",
                     "float8 needs a CUDA GPU: the matmuls stay in float32"]
    assert {name: type(module) for name, module in model.named_modules()} == before and model.fused_loss is None
    assert kernels.apply(GPT(CONFIG), dict(settings.DEFAULTS), torch.device("cpu")) == []  # nothing asked, nothing said


def test_a_run_prints_each_fallback_once_and_trains_as_without_it(tmp_path, tiny_data, capsys):
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=4", "--log_interval=1", "--eval_interval=2",
              "--schedule=constant"]
    train.main([*common, f"--out_dir={tmp_path / 'plain'}"])
    capsys.readouterr()
    train.main([*common, f"--out_dir={tmp_path / 'levers'}", "--fused_loss=cce", "--float8=True",
                "--fused_optimizer=False", "--micro_batch_size=auto"])
    out = capsys.readouterr().out
    assert out.count("warning: fused_loss=cce needs a CUDA GPU: torch's cross-entropy instead\n") == 1
    assert out.count("warning: float8 needs a CUDA GPU") == 1 and "micro-batch 8 x 1" in out  # auto: one forward
    plain, levers = metrics(tmp_path / "plain"), metrics(tmp_path / "levers")
    assert [r.get("val_loss") for r in levers] == [r.get("val_loss") for r in plain]


# ---- on a GPU: each lever against PyTorch's ops, a few steps of a small model ----

def gpu_losses(tmp_path, data, name, *lever):
    train.main([*TINY_MODEL, "--device=cuda", "--dtype=auto", f"--data_dir={data}", f"--out_dir={tmp_path / name}",
                "--max_steps=6", "--log_interval=1", "--eval_interval=6", "--n_embd=128", "--ffw_size=352", *lever])
    return [r["train_loss"] for r in metrics(tmp_path / name) if "train_loss" in r]


@pytest.mark.gpu
@pytest.mark.parametrize("lever, package", [
    (["--fused_loss=liger"], "liger_kernel"), (["--fused_loss=cce"], "cut_cross_entropy"),
    (["--liger_kernels=True"], "liger_kernel"), (["--attention=flash"], None), (["--attention=cudnn"], None),
    (["--fused_optimizer=False"], None),
], ids=lambda value: value[0] if isinstance(value, list) else "")
def test_each_lever_trains_like_pytorchs_ops(tmp_path, tiny_data, lever, package):
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (requirements-gpu.txt)")
    reference = gpu_losses(tmp_path, tiny_data, "reference")
    assert gpu_losses(tmp_path, tiny_data, "lever", *lever) == pytest.approx(reference, rel=2e-2)  # bf16 rounding
