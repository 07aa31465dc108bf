"""Tests for export.py: the Hugging Face Llama folder gives our logits, the GPT-2 tokenizer gives tiktoken's ids, and
bad input is one line."""
import json
import subprocess
import sys

import pytest
import tiktoken
import torch

import export
import swa
from lab import checkpoint
from model import GPT, GPTConfig

transformers = pytest.importorskip("transformers")  # optional: requirements-extra.txt
safetensors_torch = pytest.importorskip("safetensors.torch")

TEXTS = ["Hello, world!", "naïve café — “quotes”", "日本語のテキスト。 emoji 🎉👩‍💻", "  two leading spaces",
         "def f(x):\n    return x ** 2\n\n\ttabbed", "Ελληνικά και русский 123,456.78"]


def save_run(folder, config, tokenizer, seed=0):
    """A tiny trained-looking run: a GPT with non-trivial norm gains, saved as train.py saves a checkpoint, and the
    run's config.json naming its tokenizer. Returns (model, checkpoint path)."""
    torch.manual_seed(seed)
    model = GPT(config)
    with torch.no_grad():  # gains of 1 would hide a norm exported to the wrong place
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    folder.mkdir(parents=True, exist_ok=True)
    state = dict(model=model.state_dict(), optimizer={}, step=7, config={"data_dir": "data/x", "out_dir": str(folder)},
                 model_config=config.__dict__, rng=torch.get_rng_state())
    path = checkpoint.save(state, folder, 7)
    (folder / "config.json").write_text(json.dumps({"tokenizer": tokenizer, "vocab_size": 257}))
    return model.eval(), path


def hf_logits(out_dir, tokens):
    hf = transformers.AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return hf(tokens).logits


def assert_same_logits(model, out_dir, seq_len):
    tokens = torch.randint(0, model.config.vocab_size, (3, seq_len), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(tokens)[0]
    theirs = hf_logits(out_dir, tokens)
    assert theirs.shape == ours.shape
    assert (theirs - ours).abs().max().item() < 1e-4
    assert ours.std().item() > 0.05  # logits that vary: a wrong layout would not match by accident


def test_tied_model_exports_to_the_same_logits(tmp_path, capsys):
    config = GPTConfig(vocab_size=320, block_size=48, n_layer=2, n_head=4, n_embd=64, ffw_size=96, norm_eps=1e-5)
    model, path = save_run(tmp_path / "run", config, "bytes")
    export.main([f"--ckpt={path}", f"--out={tmp_path / 'hf'}"])
    printed = capsys.readouterr().out
    assert "bytes run: no Hugging Face tokenizer written" in printed
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["architectures"] == ["LlamaForCausalLM"] and hf_config["tie_word_embeddings"] is True
    assert (hf_config["vocab_size"], hf_config["max_position_embeddings"], hf_config["eos_token_id"]) == (320, 48, 256)
    saved = safetensors_torch.load_file(tmp_path / "hf" / "model.safetensors")
    assert "lm_head.weight" not in saved  # tied: the embedding alone is stored
    assert not (tmp_path / "hf" / "tokenizer.json").exists()
    assert_same_logits(model, tmp_path / "hf", seq_len=48)


def test_gqa_model_with_untied_head_and_gpt2_tokenizer(tmp_path):
    config = GPTConfig(vocab_size=50304, block_size=40, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffw_size=64,
                       rope_theta=500000.0, tie_embeddings=False)
    model, _ = save_run(tmp_path / "run", config, "gpt2", seed=3)
    export.main([f"--ckpt={tmp_path / 'run'}", f"--out={tmp_path / 'hf'}"])  # a run folder: its latest checkpoint
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (hf_config["num_key_value_heads"], hf_config["tie_word_embeddings"]) == (2, False)
    assert_same_logits(model, tmp_path / "hf", seq_len=40)

    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    gpt2 = tiktoken.get_encoding("gpt2")
    for text in TEXTS:  # the ids prepare_data.py wrote: tiktoken's encode_ordinary
        ids = tokenizer(text)["input_ids"]
        assert ids == gpt2.encode_ordinary(text) and tokenizer.decode(ids) == text
    assert (tokenizer.eos_token_id, tokenizer.bos_token_id, len(tokenizer)) == (50256, 50256, 50257)


def test_weight_file_exports_in_bfloat16(tmp_path):
    """swa.pt / ema.pt / merged averages hold model and model_config only, and no config.json may be beside them."""
    config = GPTConfig(vocab_size=320, block_size=32, n_layer=1, n_head=2, n_embd=32, ffw_size=64)
    model, _ = save_run(tmp_path / "run", config, "bytes")
    weights = {name: tensor * 1.5 for name, tensor in model.state_dict().items()}
    # as written before grouped-query attention, untied heads and rope_theta were settings
    old_config = {k: v for k, v in config.__dict__.items() if k not in ("n_kv_head", "tie_embeddings", "rope_theta")}
    swa.save_weights(tmp_path / "avg.pt", weights, old_config, 7, dict(kind="ema", decay=0.9, interval=1))
    export.main([f"--ckpt={tmp_path / 'avg.pt'}", f"--out={tmp_path / 'hf'}", "--dtype=bfloat16", "--tokenizer=bytes"])
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config.get("dtype", hf_config.get("torch_dtype")) == "bfloat16"  # transformers < 4.56: torch_dtype
    assert (hf_config["num_key_value_heads"], hf_config["tie_word_embeddings"]) == (2, True)
    saved = safetensors_torch.load_file(tmp_path / "hf" / "model.safetensors")
    assert saved["model.embed_tokens.weight"].dtype == torch.bfloat16
    assert torch.equal(saved["model.embed_tokens.weight"], weights["tok_emb.weight"].bfloat16())
    q, k, v = weights["blocks.0.attn.qkv.weight"].bfloat16().split(32)
    assert torch.equal(saved["model.layers.0.self_attn.k_proj.weight"], k)
    assert torch.equal(saved["model.layers.0.mlp.up_proj.weight"], weights["blocks.0.mlp.w3.weight"].bfloat16())


def one_error_line(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        export.settings.run_script(export.main, argv)
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    torch.save({"hello": 1}, tmp_path / "dict.pt")
    assert "does not exist" in one_error_line(capsys, [f"--ckpt={tmp_path}/nope.pt", f"--out={tmp_path}/a"])
    assert "corrupt or unreadable" in one_error_line(capsys, [f"--ckpt={tmp_path}/notes.pt", f"--out={tmp_path}/a"])
    assert "not a checkpoint" in one_error_line(capsys, [f"--ckpt={tmp_path}/dict.pt", f"--out={tmp_path}/a"])
    assert "is not empty" in one_error_line(capsys, [f"--ckpt={tmp_path}/dict.pt", f"--out={tmp_path}"])
    assert "dtype='float16': must be one of float32, bfloat16" in one_error_line(capsys, ["--ckpt=x", "--out=y",
                                                                                          "--dtype=float16"])
    config = GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16, ffw_size=32)
    _, path = save_run(tmp_path / "run", config, "bytes")
    state = checkpoint.load(path)
    checkpoint.save_file(dict(state, model_config=dict(state["model_config"], ffw_size=48)), tmp_path / "bad.pt")
    err = one_error_line(capsys, [f"--ckpt={tmp_path}/bad.pt", f"--out={tmp_path}/b", "--tokenizer=bytes"])
    assert "the weights do not fit their model_config: size mismatch" in err
    (tmp_path / "run" / "config.json").unlink()
    assert "pass --tokenizer=" in one_error_line(capsys, [f"--ckpt={path}", f"--out={tmp_path}/b"])
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    err = one_error_line(capsys, [f"--ckpt={path}", f"--out={tmp_path}/b", "--tokenizer=bytes"])
    assert "transformers is missing" in err and "pip install -r requirements-extra.txt" in err
    assert not (tmp_path / "b").exists()


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, export.__file__, f"--ckpt={tmp_path}/nope.pt", f"--out={tmp_path}/hf"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == f"error: checkpoint {tmp_path}/nope.pt does not exist\n"
