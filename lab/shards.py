"""
What a data folder holds, checked before a run reads it: prepare_data.py's meta.json and shards, or nanoGPT's
train.bin and val.bin (GPT-2 tokens, or with meta.pkl its own vocabulary), its vocabulary and tokenizer, and its
fingerprint. lab/data.py makes batches of it; prepare_data.py records what these checks read.

    meta, train, val = shards.read_folder("data/stdlib-bytes")   # every check passed; train, val: uint16 memmaps
    meta["fingerprint"], meta["tokenizer"], meta["vocab_size"]
    meta.update(shards.record(train, val))                       # prepare_data.py: fingerprint, max_token, spot_sha256

The fingerprint names the tokens a run reads: sha256 over the splits (train, then val) and their shards in order,
each as 'split:tokens\\n' and then its little-endian uint16 bytes. It depends on the tokens and how they are
sharded (windows never straddle two shards, so that is part of the data stream), never on file names or paths: a
one-shard split and a nanoGPT .bin of the same tokens have the same one. prepare_data.py computes it once, in the
same pass as the largest token, and records both in meta.json with a digest of sampled blocks (spot_sha256); a
start then checks the shards' sizes (against meta.json) and those blocks, 64 KiB per shard, instead of reading
every shard (under a millisecond for the stdlib corpus, docs/data.md). A folder without the record (nanoGPT's, or
one an older prepare_data.py made) is read whole at every start, at the speed of sha256 (0.3 GB/s measured on a
busy 2-core machine); re-running the prepare_data.py command that made a folder records its fingerprint.

Every token must lie inside the vocabulary the folder claims (meta.json's vocab_size, meta.pkl's, or GPT-2's for a
nanoGPT folder without meta.pkl): the largest token is recorded at prepare time, or found in the whole-folder read.
"""

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from lab import corpora

FINGERPRINT_OF = "sha256 over the splits (train, val) and their shards in order: 'split:tokens\\n', then its bytes"
RECORD_KEYS = ("fingerprint", "max_token", "spot_sha256")
SPOT_BLOCKS, SPOT_TOKENS = 16, 2048  # blocks of 4 KiB sampled from each shard for the start's check
SCAN_TOKENS = 1 << 19  # tokens read, hashed and searched at a time: 1 MiB stays in cache from the hash to the search
GPT2 = dict(tokenizer="gpt2", vocab_size=50257, eot_token=50256)  # what a nanoGPT folder without meta.pkl holds


class DataError(ValueError):
    """A dataset that is missing or does not match its meta.json; the message is one line for the user."""


class MissingData(DataError):
    """No prepared dataset at all in data_dir (a plan can still be made: lab/plan.py)."""


def short(fingerprint):
    """A fingerprint as messages show it: its first 16 hex digits."""
    return fingerprint[:16]


def open_shard(path, tokens=None):
    """A read-only uint16 view of `path`; `tokens` is its length in meta.json (None for a nanoGPT .bin)."""
    if not path.is_file():
        raise DataError(f"shard {path} listed in meta.json is missing")
    size = path.stat().st_size
    if tokens is not None and size != 2 * tokens:
        raise DataError(f"shard {path} has {size} bytes but meta.json says {tokens} tokens ({2 * tokens} bytes)")
    if size == 0 or size % 2:  # np.memmap cannot map either
        raise DataError(f"shard {path} is empty" if size == 0 else
                        f"shard {path} has {size} bytes, an odd number: not a file of uint16 tokens")
    return np.memmap(path, dtype=np.uint16, mode="r")


def _shards(train, val):
    return [(split, shard) for split, shards in (("train", train), ("val", val)) for shard in shards]


def scan(train, val):
    """(fingerprint, largest token) of the splits' shards (memmaps), in one pass over their files. Read, not
    mapped: memory stays at one buffer of SCAN_TOKENS, where pages touched through a memmap would stay resident."""
    digest, largest, buffer = hashlib.sha256(), 0, bytearray(2 * SCAN_TOKENS)
    for split, shard in _shards(train, val):
        digest.update(f"{split}:{len(shard)}\n".encode())
        with open(shard.filename, "rb") as f:
            while size := f.readinto(buffer):
                chunk = memoryview(buffer)[:size]
                digest.update(chunk)
                largest = max(largest, int(np.frombuffer(chunk, dtype="<u2").max()))
    return digest.hexdigest(), largest


def spot_digest(train, val):
    """sha256 of SPOT_BLOCKS blocks of SPOT_TOKENS tokens spread evenly over each shard (the first and the last
    included): what a start reads to check that the shards are still those meta.json records."""
    digest = hashlib.sha256()
    for split, shard in _shards(train, val):
        digest.update(f"{split}:{len(shard)}\n".encode())
        for start in np.linspace(0, max(len(shard) - SPOT_TOKENS, 0), SPOT_BLOCKS).astype(np.int64).tolist():
            digest.update(shard[start:start + SPOT_TOKENS])
    return digest.hexdigest()


def record(train, val):
    """What prepare_data.py records in meta.json for read_folder's checks: the fingerprint, the largest token and
    the sampled blocks' digest."""
    fingerprint, largest = scan(train, val)
    return dict(fingerprint=fingerprint, fingerprint_of=FINGERPRINT_OF, max_token=largest,
                spot_sha256=spot_digest(train, val))


def checked(meta, train, val, where, claim):
    """meta with its fingerprint and largest token (recorded and spot-checked, else read from the shards), once
    every token is known to lie in the vocabulary that `claim` (the file or convention giving it) states."""
    if all(key in meta for key in RECORD_KEYS):
        if spot_digest(train, val) != meta["spot_sha256"]:
            raise DataError(f"the shards in {where} are not those its meta.json records (sampled blocks differ): "
                            f"a shard changed after prepare_data.py wrote it; prepare the data again (--force)")
    else:
        fingerprint, largest = scan(train, val)
        meta = dict(meta, fingerprint=fingerprint, fingerprint_of=FINGERPRINT_OF, max_token=largest)
    if meta["max_token"] >= meta["vocab_size"]:
        raise DataError(f"{where} holds token {meta['max_token']}, outside the vocabulary of {meta['vocab_size']} "
                        f"tokens that {claim} states: the tokens are not of that vocabulary (prepare the data again, "
                        f"or give a nanoGPT folder the meta.pkl of its vocabulary)")
    return meta


class _PlainUnpickler(pickle.Unpickler):
    """Builds what pickle's own opcodes make (dicts, lists, tuples, sets, strings, numbers) and refuses every class
    or function a file names: that is how a pickle runs code, and a vocabulary needs none."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it names {module}.{name}, and only plain data is read")


def read_meta_pkl(path):
    """The vocabulary (a list of strings, by id) of nanoGPT's meta.pkl: vocab_size, itos {id: text} and/or stoi
    {text: id}, as nanoGPT's char-level prepare.py writes them; read without running any of the file's code."""
    try:
        with open(path, "rb") as f:
            meta = _PlainUnpickler(f).load()
    except Exception as e:  # truncated, not a pickle, a class or function named: all mean "not a plain meta.pkl"
        raise DataError(f"cannot read {path} as nanoGPT's meta.pkl ({type(e).__name__}: {e})") from None
    vocab_size = meta.get("vocab_size") if isinstance(meta, dict) else None
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise DataError(f"{path} is not nanoGPT's meta.pkl: it needs a dict whose vocab_size is a positive int, "
                        f"not {type(meta).__name__ if vocab_size is None else repr(vocab_size)}")
    itos, stoi = meta.get("itos"), meta.get("stoi")
    if itos is None and isinstance(stoi, dict):
        itos = {i: s for s, i in stoi.items()}
    if isinstance(itos, (list, tuple)):
        itos = dict(enumerate(itos))
    if not isinstance(itos, dict):
        raise DataError(f"{path} has no itos or stoi: the text of its {vocab_size} tokens is unknown, so a run could "
                        f"not be sampled; add them (nanoGPT's prepare.py writes vocab_size, itos and stoi)")
    if set(itos) != set(range(vocab_size)) or not all(isinstance(s, str) for s in itos.values()):
        raise DataError(f"{path}: itos must give a string for each id 0..{vocab_size - 1} (vocab_size), and only those")
    vocabulary = [itos[i] for i in range(vocab_size)]
    if stoi is not None and stoi != {s: i for i, s in enumerate(vocabulary)}:
        raise DataError(f"{path}: stoi is not the inverse of itos")
    return vocabulary


def _prepared_folder(data_dir):
    """(meta, train, val, the file that states the vocabulary) of prepare_data.py's format, every listed shard
    open and of its listed size."""
    meta_path = data_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        listed = {split: [(data_dir / s["file"], int(s["tokens"])) for s in meta["shards"][split]]
                  for split in ("train", "val")}
        meta["vocab_size"] = int(meta["vocab_size"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{meta_path} is not a valid dataset description ({type(e).__name__}: {e})") from None
    if meta.get("dtype", "uint16") != "uint16":
        raise DataError(f"{meta_path}: dtype {meta['dtype']!r} is not supported, only uint16")
    train, val = ([open_shard(path, tokens) for path, tokens in listed[split]] for split in ("train", "val"))
    return meta, train, val, f"{meta_path}"


def _nanogpt_folder(data_dir):
    """(meta, train, val, what states the vocabulary) of nanoGPT's layout: its .bin files are our one-shard
    format byte for byte; meta.pkl, when there, gives the vocabulary (a char-level dataset), else the tokens are
    GPT-2's (nanoGPT's openwebtext and shakespeare)."""
    train, val = [open_shard(data_dir / "train.bin")], [open_shard(data_dir / "val.bin")]
    pkl = data_dir / "meta.pkl"
    if not pkl.is_file():
        return (dict(GPT2, source=dict(format="nanoGPT")), train, val,
                "nanoGPT's convention for a folder without meta.pkl (GPT-2's tokens)")
    vocabulary = read_meta_pkl(pkl)
    meta = dict(tokenizer="chars", vocab_size=len(vocabulary), eot_token=None, vocabulary=vocabulary,
                source={"format": "nanoGPT", "meta.pkl sha256": hashlib.sha256(pkl.read_bytes()).hexdigest()})
    return meta, train, val, f"{pkl}"


def read_folder(data_dir):
    """(meta, train shards, val shards) of data_dir, every check passed: meta has tokenizer, vocab_size and
    fingerprint; a missing dataset is MissingData, naming the prepare_data.py command that makes it."""
    data_dir = Path(data_dir)
    if (data_dir / "meta.json").is_file():
        meta, train, val, claim = _prepared_folder(data_dir)
    elif (data_dir / "train.bin").is_file() and (data_dir / "val.bin").is_file():
        meta, train, val, claim = _nanogpt_folder(data_dir)
    else:
        raise MissingData(f"no prepared dataset in {data_dir} (no meta.json, nor nanoGPT's train.bin and val.bin): "
                          f"run `{corpora.prepare_command(data_dir)}` or point data_dir at one")
    if not train or not val:
        raise DataError(f"dataset {data_dir} has an empty train or val split")
    return checked(meta, train, val, data_dir, claim), train, val


def run_record(meta, data_dir, train_tokens, val_tokens):
    """What a run's config.json records of its data: where, its fingerprint, tokenizer, size and source (for the
    stdlib corpus the Python it came from), and a char-level vocabulary (sample.py decodes with it)."""
    kept = dict(dir=str(data_dir), fingerprint=meta["fingerprint"], tokenizer=meta.get("tokenizer"),
                vocab_size=meta["vocab_size"], tokens=dict(train=train_tokens, val=val_tokens),
                source=meta.get("source"))
    if "vocabulary" in meta:
        kept["vocabulary"] = meta["vocabulary"]
    return kept
