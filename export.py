"""
Export a checkpoint or a weight file as a Hugging Face `LlamaForCausalLM` folder, for transformers and lm_eval.

    pip install -r requirements-extra.txt                                    # transformers, safetensors (optional)
    python export.py --ckpt=out/124m_cooldown --out=hf/124m_cooldown           # a run's latest checkpoint
    python export.py --ckpt=out/124m_cooldown/ckpt_0025391 --out=hf/124m      # one checkpoint
    python export.py --ckpt=out/124m_swa/swa.pt --out=hf/124m_swa --dtype=bfloat16   # swa.pt, ema.pt, merged averages
    lm_eval --model hf --model_args pretrained=hf/124m,dtype=float32 --tasks hellaswag,arc_easy --batch_size 16

The folder holds config.json, model.safetensors (save_pretrained) and, for a gpt2 run, GPT-2's tokenizer built
from tiktoken's own GPT-2 files (TIKTOKEN_CACHE_DIR offline), so `AutoModelForCausalLM.from_pretrained(DIR)` and
`AutoTokenizer.from_pretrained(DIR)` load it. The paper's GPT is a Llama: RMSNorm, rotary embeddings with the two
halves of each head as pairs (Hugging Face's convention), SwiGLU, no biases; only the fused qkv projection is split
into q, k and v. The tokenizer's name comes from the run's config.json beside the file (or --tokenizer=). A bytes
run has no Hugging Face tokenizer: its weights and config are exported alone. vocab_size is the padded one, the
rows of the weights; ids past the tokenizer's vocabulary are never produced by it.
"""

import sys
import tempfile
from pathlib import Path

import torch

from lab import checkpoint, settings
from lab.config import ConfigError, Setting, parse_args, read_json
from model import GPTConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SETTINGS = dict(
    ckpt=Setting("", "a checkpoint (ckpt_*, an old ckpt_*.pt), a weight file (swa.pt, ema.pt, a merged average) or a "
                     "run's out_dir (its latest checkpoint)"),
    out=Setting("", "the Hugging Face folder to write"),
    dtype=Setting("float32", "the dtype of the saved weights", tuple(DTYPES)),
    tokenizer=Setting(None, "gpt2 or bytes (None: the run's config.json beside the checkpoint says)",
                      types=(str, type(None))),
    force=Setting(False, "write into a non-empty --out (files of the same names are replaced)"),
)
# tiktoken's GPT-2 files are GPT-2's own vocab.json and merges.txt. tiktoken caches each under the sha1 of its URL
# and checks it against these sha256 digests (tiktoken_ext/openai_public.py), so reading them through tiktoken's
# cache finds the very bytes that prepare_data.py tokenized with, offline or not.
GPT2_FILES = {
    "vocab.json": ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
                   "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    "merges.txt": ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
                   "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
}
GPT2_EOT = 50256
BYTES_EOT = 256


def import_transformers():
    """transformers (with safetensors, which save_pretrained writes with): optional, so a clear line if absent."""
    try:
        import safetensors  # noqa: F401
        import transformers
    except ImportError as e:
        raise ConfigError(f"export.py needs transformers and safetensors ({e.name} is missing): "
                          f"pip install -r requirements-extra.txt") from None
    transformers.utils.logging.disable_progress_bar()  # one tiny shard: a progress bar only adds noise
    return transformers


def load_weights(path):
    """(state with 'model' and 'model_config', the file it came from, the run folder whose config.json describes
    it). A run folder gives its latest checkpoint."""
    return checkpoint.read(path, required=("model", "model_config"))


def full_model_config(saved):
    """Every GPTConfig field: a checkpoint written before n_kv_head, tie_embeddings or rope_theta existed gets the
    defaults it was trained with (plain attention, a tied head, theta 10000)."""
    try:
        return GPTConfig(**saved).__dict__
    except (TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"the checkpoint's model_config is not model.GPTConfig's: {e}") from None


def tokenizer_name(run_dir, override):
    if override is not None:
        return override
    info_path = run_dir / "config.json"
    if not info_path.is_file():
        raise ConfigError(f"no config.json in {run_dir} to say which tokenizer the run used: pass "
                          f"--tokenizer=gpt2 or --tokenizer=bytes")
    info = read_json(info_path)
    if not isinstance(info, dict) or "tokenizer" not in info:
        raise ConfigError(f"{info_path} is not a train.py config.json (no tokenizer): pass --tokenizer=")
    return info["tokenizer"]


def llama_config(transformers, model_config, vocab_rows, eot):
    """The Hugging Face config of our GPT. max_position_embeddings is the trained context: lm_eval truncates to it."""
    return transformers.LlamaConfig(
        vocab_size=vocab_rows, hidden_size=model_config["n_embd"], intermediate_size=model_config["ffw_size"],
        num_hidden_layers=model_config["n_layer"], num_attention_heads=model_config["n_head"],
        num_key_value_heads=model_config["n_kv_head"],
        head_dim=model_config["n_embd"] // model_config["n_head"], max_position_embeddings=model_config["block_size"],
        rms_norm_eps=model_config["norm_eps"], rope_theta=model_config["rope_theta"], hidden_act="silu",
        tie_word_embeddings=model_config["tie_embeddings"], attention_bias=False, mlp_bias=False,
        bos_token_id=eot, eos_token_id=eot)


def expected_keys(model_config):
    """The state_dict names of model.GPT for this shape (a tied head may or may not be listed: it is an alias)."""
    per_block = ("attn_norm.weight", "attn.qkv.weight", "attn.proj.weight", "mlp_norm.weight", "mlp.w1.weight",
                 "mlp.w3.weight", "mlp.w2.weight")
    names = {"tok_emb.weight", "final_norm.weight", "lm_head.weight"}
    names |= {f"blocks.{i}.{name}" for i in range(model_config["n_layer"]) for name in per_block}
    return names


def llama_state_dict(weights, model_config, dtype):
    """Our GPT's weights under Llama's names, in `dtype`. qkv's rows are q (n_embd), k (kv_dim), v (kv_dim), each
    head's rows contiguous, which is exactly q_proj, k_proj and v_proj stacked: no row permutation is needed,
    since our rotary pairs the two halves of a head like Hugging Face's rotate_half."""
    expected = expected_keys(model_config)
    missing = sorted(expected - set(weights) - ({"lm_head.weight"} if model_config["tie_embeddings"] else set()))
    unexpected = sorted(set(weights) - expected)
    if missing or unexpected:
        raise checkpoint.CheckpointError(f"the weights are not this repository's GPT of shape {model_config}: "
                                         f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    d = model_config["n_embd"]
    kv = model_config["n_kv_head"] * (d // model_config["n_head"])
    out = {"model.embed_tokens.weight": weights["tok_emb.weight"], "model.norm.weight": weights["final_norm.weight"]}
    out["lm_head.weight"] = weights["tok_emb.weight" if model_config["tie_embeddings"] else "lm_head.weight"]
    for i in range(model_config["n_layer"]):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        q, k, v = weights[ours + "attn.qkv.weight"].split([d, kv, kv], dim=0)
        out.update({theirs + "self_attn.q_proj.weight": q, theirs + "self_attn.k_proj.weight": k,
                    theirs + "self_attn.v_proj.weight": v,
                    theirs + "self_attn.o_proj.weight": weights[ours + "attn.proj.weight"],
                    theirs + "input_layernorm.weight": weights[ours + "attn_norm.weight"],
                    theirs + "post_attention_layernorm.weight": weights[ours + "mlp_norm.weight"],
                    theirs + "mlp.gate_proj.weight": weights[ours + "mlp.w1.weight"],
                    theirs + "mlp.up_proj.weight": weights[ours + "mlp.w3.weight"],
                    theirs + "mlp.down_proj.weight": weights[ours + "mlp.w2.weight"]})
    # contiguous copies: split() gives views of qkv, and safetensors stores each tensor's own storage
    return {name: tensor.to(dtype).contiguous() for name, tensor in out.items()}


def llama_model(transformers, config, state_dict):
    """A LlamaForCausalLM holding `state_dict`, built on the meta device: nothing is initialised only to be
    overwritten (an 8B model would take minutes and twice its memory)."""
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as e:  # a shape that disagrees with model_config
        reason = str(e).splitlines()[-1].strip()
        raise checkpoint.CheckpointError(f"the weights do not fit their model_config: {reason}") from None
    model.tie_weights()  # assign=True replaced the embedding: point a tied head at the new tensor again
    return model.eval()


def gpt2_tokenizer(transformers, max_length):
    """GPT-2's fast tokenizer from the vocab.json and merges.txt that tiktoken reads (its cache, or a download)."""
    from tiktoken.load import read_file_cached  # tiktoken's own cache lookup and sha256 check

    with tempfile.TemporaryDirectory() as folder:
        for name, (url, sha256) in GPT2_FILES.items():
            try:
                data = read_file_cached(url, sha256)  # refetched if a cached copy fails the check
            except Exception as e:  # no network and no cached copy
                raise ConfigError(f"cannot read GPT-2's {url.rsplit('/', 1)[1]} ({type(e).__name__}); offline, point "
                                  f"TIKTOKEN_CACHE_DIR at a folder holding tiktoken's GPT-2 files") from None
            Path(folder, name).write_bytes(data)
        # eos = bos = unk = <|endoftext|> (50256) are GPT2TokenizerFast's defaults
        return transformers.GPT2TokenizerFast.from_pretrained(folder, model_max_length=max_length)


def check_out_dir(out, force):
    if not out:
        raise ConfigError("give the folder to write: --out=DIR")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out={out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out={out} is not empty: choose another folder, or --force=True to write into it")
    return out


def export(cfg):
    """Write cfg['out'] from cfg['ckpt']; return a summary dict."""
    if not cfg["ckpt"]:
        raise ConfigError("give the checkpoint or weight file to export: --ckpt=PATH")
    out = check_out_dir(cfg["out"], cfg["force"])
    state, source, run_dir = load_weights(cfg["ckpt"])
    tokenizer = tokenizer_name(run_dir, cfg["tokenizer"])
    if tokenizer not in ("gpt2", "bytes"):
        raise ConfigError(f"tokenizer '{tokenizer}': export.py knows gpt2 and bytes")
    transformers = import_transformers()
    model_config, weights = full_model_config(state["model_config"]), state["model"]
    vocab_rows = weights["tok_emb.weight"].shape[0] if "tok_emb.weight" in weights else model_config["vocab_size"]
    eot = GPT2_EOT if tokenizer == "gpt2" else BYTES_EOT
    config = llama_config(transformers, model_config, vocab_rows, eot)
    model = llama_model(transformers, config, llama_state_dict(weights, model_config, DTYPES[cfg["dtype"]]))
    hf_tokenizer = gpt2_tokenizer(transformers, model_config["block_size"]) if tokenizer == "gpt2" else None
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.bos_token_id = model.generation_config.eos_token_id = eot
    model.save_pretrained(out)  # safetensors: the only format transformers 5 writes, and 4.x's default
    if hf_tokenizer is not None:
        hf_tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())  # parameters() lists a tied tensor once
    print(f"wrote {out}: LlamaForCausalLM, {params / 1e6:.2f}M parameters, {cfg['dtype']}, vocab {vocab_rows} "
          f"(padded), context {model_config['block_size']}, from {source}")
    if hf_tokenizer is None:
        print("bytes run: no Hugging Face tokenizer written (token i is byte i, 256 ends a document); "
              "lm_eval needs a tokenizer, so this folder serves transformers with your own ids")
    else:
        print(f"tokenizer: GPT-2 (eos = bos = {GPT2_EOT}); evaluate with: lm_eval --model hf "
              f"--model_args pretrained={out} --tasks hellaswag --batch_size 16")
    return dict(out=out, tokenizer=tokenizer, params=params, vocab_size=vocab_rows)


def main(argv):
    return export(parse_args(argv, SETTINGS))


if __name__ == "__main__":
    settings.run_script(main, sys.argv[1:])
