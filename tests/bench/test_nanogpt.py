"""bench/nanogpt.py against a stand-in nanoGPT checkout (nanoGPT itself is not part of the repository): the folder
it prepares, the command it runs, the speeds it parses and the ratio it reports; the profile of both models."""
import os
import re

import pytest

from bench import nanogpt as bench_nanogpt
from lab.config import ConfigError, defaults_of

# A stand-in for nanoGPT's train.py: checks what bench_nanogpt prepared, then reports 100 ms per iteration in
# nanoGPT's own log format.
FAKE_TRAIN = '''
import pickle, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
data = Path("data") / args["dataset"]
assert (data / "train.bin").stat().st_size > 0 and (data / "val.bin").stat().st_size > 0
assert pickle.loads((data / "meta.pkl").read_bytes())["vocab_size"] == 257
assert args["device"] == "cpu" and args["dtype"] == "float32" and args["compile"] == "False"
for i in range(int(args["max_iters"]) + 1):
    print(f"iter {i}: loss 3.0000, time 100.00ms, mfu -100.00%")
'''

# A stand-in for nanoGPT's model.py: its GPTConfig and GPT(config)(idx, targets) -> (logits, loss).
FAKE_MODEL = '''
from dataclasses import dataclass
import torch.nn as nn
import torch.nn.functional as F

@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=config.bias)

    def forward(self, idx, targets=None):
        logits = self.head(F.gelu(self.emb(idx)))
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
'''


@pytest.fixture
def fake_nanogpt(tmp_path):
    folder = tmp_path / "nanoGPT"
    folder.mkdir()
    (folder / "train.py").write_text(FAKE_TRAIN)
    (folder / "model.py").write_text(FAKE_MODEL)
    (folder / "configurator.py").write_text("")
    return folder


def test_runs_both_and_reports_the_ratio_of_their_speeds(fake_nanogpt, tiny_data, capsys):
    bench_nanogpt.main([f"--nanogpt={fake_nanogpt}", f"--data_dir={tiny_data}", "--pairs=1", "--steps=7", "--skip=5",
                        "--ours=--eval_tokens=2048"])  # the tiny val split holds 15 windows of 256
    out = capsys.readouterr().out
    pair = re.search(r"pair 1: ours ([\d,]+) tokens/s .*, nanoGPT ([\d,]+) tokens/s .*: ([\d.]+)x", out)
    ours, theirs, ratio = float(pair[1].replace(",", "")), float(pair[2].replace(",", "")), float(pair[3])
    assert theirs == 16 * 256 / 0.1  # the stand-in's 100 ms per step of 16 x 256 tokens
    assert ours > 0 and ratio == pytest.approx(ours / theirs, abs=0.006)
    assert f"ours / nanoGPT: {ratio:.2f}x (median of 1 pairs)" in out
    assert "ours: device cpu x1, dtype float32" in out or "ours: device cpu x1, dtype bfloat16" in out


def test_profile_lists_both_models_operators(fake_nanogpt, tiny_data, capsys):
    bench_nanogpt.main([f"--nanogpt={fake_nanogpt}", f"--data_dir={tiny_data}", "--profile=True", "--turns=1",
                        "--top_ops=4"])
    lines = capsys.readouterr().out.splitlines()
    assert re.search(r"ms per step .*: ours \d+ / \d+, nanoGPT \d+ / \d+", lines[0])
    table = lines[lines.index(next(l for l in lines if l.startswith("operator"))) + 1:]
    assert len(table) == 5 and table[-1].startswith("all")  # top_ops rows, then the totals
    rows = {line[:55].strip(): [float(v) for v in line[55:].split()] for line in table}
    assert rows["aten::mm"][0] > 0  # our model's matmuls
    assert rows["all"][0] >= max(r[0] for r in rows.values()) and rows["all"][1] > 0


def test_bad_input_is_one_clear_error(tmp_path, tiny_data):
    with pytest.raises(ConfigError, match="pass --nanogpt="):
        bench_nanogpt.main([])
    with pytest.raises(ConfigError, match=r"is not a nanoGPT checkout \(no train.py, model.py, configurator.py\)"):
        bench_nanogpt.main([f"--nanogpt={tmp_path}", f"--data_dir={tiny_data}"])
    with pytest.raises(ConfigError, match="^isa='sse': must be one of native, avx2$"):
        bench_nanogpt.main([f"--nanogpt={tmp_path}", "--isa=sse"])
    with pytest.raises(ConfigError, match="^skip=40 leaves none of the steps=40 to time$"):
        bench_nanogpt.main([f"--nanogpt={tmp_path}", "--skip=40"])


def test_on_a_gpu_nanogpts_own_bench_is_read_as_its_reference_was_measured():
    """nanoGPT's bench.py at 50 x 512 on the H200 printed 49.2242 ms per iteration (results/perf/h200_ng_bench.log):
    the 520,100 tokens/s that docs/performance.md compares against."""
    line = "time per iteration: 49.2242ms, MFU: 133.04%"
    assert bench_nanogpt.nanogpt_gpu_speed(f"0/20 loss: 9.4608\n{line}\n") == pytest.approx(520_069, abs=1)
    with pytest.raises(ConfigError, match="printed no 'time per iteration: X ms' line"):
        bench_nanogpt.nanogpt_gpu_speed("iter 0: loss 3.0\n")
    with pytest.raises(ConfigError, match="^device='tpu': must be one of cpu, cuda$"):
        bench_nanogpt.main(["--nanogpt=/x", "--device=tpu"])
    defaults = defaults_of(bench_nanogpt.SETTINGS)
    command = bench_nanogpt.our_gpu_command(dict(defaults, data_dir="data/stdlib-gpt2"), "out/x")
    assert "configs/124m_cooldown.py" in command and "--batch_size=50" in command and "--micro_batch_size=50" in command


@pytest.mark.gpu
@pytest.mark.skipif(not os.environ.get("NANOGPT"), reason="set NANOGPT to a checkout of karpathy/nanoGPT")
def test_ours_against_nanogpt_on_the_gpu(capsys):
    ratio = bench_nanogpt.main([f"--nanogpt={os.environ['NANOGPT']}", "--device=cuda", "--pairs=1", "--steps=30",
                                "--skip=10"])
    assert ratio > 0 and f"ours / nanoGPT: {ratio:.2f}x (median of 1 pairs)" in capsys.readouterr().out
