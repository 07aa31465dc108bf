"""
Tokenize a corpus into the flat uint16 shards that train.py reads.

    python prepare_data.py --dataset=stdlib --tokenizer=bytes    # offline: the Python stdlib, ~30 MB, seconds
    python prepare_data.py --dataset=stdlib                       # same corpus, GPT-2 tokens
    python prepare_data.py --dataset=slimpajama                   # the paper's data (DKYoon/SlimPajama-6B), hours
    python prepare_data.py --dataset=openwebtext2                 # vietgpt/the_pile_openwebtext2
    python prepare_data.py --dataset=fineweb-edu                  # HuggingFaceFW/fineweb-edu, sample-10BT
    python prepare_data.py --dataset=fineweb --sample=sample-100BT   # HuggingFaceFW/fineweb: any sample or dump
    python prepare_data.py --dataset=files --files='corpus/*.jsonl' --text_field=text

Output, in --out_dir (default data/<dataset>-<tokenizer>/, for a FineWeb data/<dataset>-<sample>-<tokenizer>/):
train_0000.bin, train_0001.bin, ..., val_0000.bin, ... of at most shard_tokens little-endian uint16 tokens each, an
end-of-text token after every document, and meta.json, written last, with the data's fingerprint (a sha256 of the
shards: lab/shards.py). A one-shard split is byte for byte a nanoGPT train.bin.

Split, by document and deterministic for a seed: document i gets a pseudo-random key from a hash of (seed, i);
validation takes documents in increasing key order until the keys pass val_frac AND it holds val_min_tokens tokens
(never more than half the documents); everything else is train. On a big corpus this is just "key < val_frac"
(the paper's 0.0005); a small corpus still gets a usable validation split. Only the few validation candidates are
tokenized up front, so the split needs no pass over the corpus and no memory that grows with it.

Resuming: the documents are tokenized and written in corpus order. Shards are written as NAME.bin.tmp and renamed
when full; progress.json records, after each finished shard (and every ~30 s), the next document and the length
of each split's unfinished shard. Re-running the same command after an interruption truncates the unfinished
shards to that checkpoint and continues from there, producing the same bytes as an uninterrupted run. meta.json is
written last, so a dataset without it is unfinished; re-running after success does nothing (--force redoes it).
"""

import json
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tiktoken
from tqdm import tqdm

from lab import shards
from lab.config import ConfigError, Setting, check_values, defaults_of, fail, parse_args, write_atomically
from lab.corpora import HUB_DATASETS, SAMPLED_DATASETS, CorpusError, check_sample, default_out_dir, open_corpus

SETTINGS = dict(
    dataset=Setting("stdlib", "stdlib, slimpajama, openwebtext2, fineweb, fineweb-edu or files"),
    sample=Setting(None, "fineweb, fineweb-edu alone: the config, sample-10BT (None) | sample-100BT | sample-350BT "
                         "| CC-MAIN-...", types=(str, type(None))),
    tokenizer=Setting("gpt2", "gpt2 (or another tiktoken encoding that fits uint16) or bytes"),
    files=Setting([], "--dataset=files: glob patterns of .txt (one document per file) or .jsonl/.json/.parquet",
                  types=(str, list)),
    text_field=Setting("text", "the column holding the text, for json/parquet/hub datasets"),
    out_dir=Setting("", "the dataset's folder (empty: data/<dataset>-<tokenizer>)"),
    val_frac=Setting(0.0005, "the validation split's share of the documents (the paper's test_size)", "[0, 1)"),
    val_min_tokens=Setting(2**18, "a small corpus still gets this much validation (CPU runs evaluate ~64k tokens)",
                           ">= 0"),
    seed=Setting(2357, "the split's seed (the paper's; splitmix64 takes a uint64)", "[0, 2**64)"),
    shard_tokens=Setting(10**8, "tokens per shard file, as llm.c", ">= 1"),
    num_proc=Setting(os.cpu_count() or 1, "tokenizer processes (gpt2); also datasets' for its Arrow cache", ">= 1"),
    force=Setting(False, "redo a finished or partial dataset from scratch"),
)
DEFAULTS = defaults_of(SETTINGS)
OUTPUT_KEYS = ("dataset", "files", "text_field", "tokenizer", "val_frac", "val_min_tokens", "seed", "shard_tokens")
CHECKPOINT_SECONDS = 30
BATCH_CHARS = 1 << 18  # text per tokenizer task: big enough to amortize the hand-off, small enough to balance


class Tokenizer:
    """Documents -> one flat uint16 array with eot after each: UTF-8 bytes, or a tiktoken encoding such as gpt2."""

    def __init__(self, name):
        self.name = name
        if name == "bytes":
            self.encoding, self.vocab_size, self.eot_token = None, 257, 256
        else:
            if name not in tiktoken.list_encoding_names():
                raise ConfigError(f"unknown tokenizer '{name}' (choose bytes, gpt2 or a tiktoken encoding)")
            try:
                self.encoding = tiktoken.get_encoding(name)
            except Exception as e:  # tiktoken downloads its files on first use
                raise CorpusError(f"cannot load tiktoken encoding '{name}' ({type(e).__name__}); offline, point "
                                f"TIKTOKEN_CACHE_DIR at a folder holding its files") from None
            self.vocab_size, self.eot_token = self.encoding.n_vocab, self.encoding.eot_token
        if self.vocab_size > 2**16:
            raise ConfigError(f"tokenizer '{name}' has {self.vocab_size} tokens, too many for uint16 shards")

    def encode(self, texts):
        if self.encoding is None:
            docs = [np.frombuffer(text.encode("utf-8", "replace"), np.uint8) for text in texts]
        else:  # the paper's encode_ordinary: special-token text like "<|endoftext|>" stays plain text
            docs = self.encoding.encode_ordinary_batch(texts, num_threads=1)  # the processes give the parallelism
        tokens = np.empty(sum(map(len, docs)) + len(docs), dtype="<u2")
        end = 0
        for doc in docs:
            tokens[end:end + len(doc)] = doc
            tokens[end + len(doc)] = self.eot_token
            end += len(doc) + 1
        return tokens

    def count(self, text):
        return len(self.encode([text]))


def split_keys(seed, start, stop):
    """Pseudo-random keys in [0, 1) for documents start..stop-1: splitmix64 of (seed, index)."""
    def mix(x):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
    keys = mix(mix(np.array([seed], np.uint64)) ^ np.arange(start, stop, dtype=np.uint64))
    return (keys >> np.uint64(11)).astype(np.float64) * 2.0**-53


def choose_val_docs(corpus, tokenizer, val_frac, val_min_tokens, seed):
    """The validation documents (see the module docstring), found by scanning keys below a growing cutoff."""
    num_docs, counts = corpus.num_docs, {}
    cutoff = max(val_frac, 1 / num_docs)
    while True:
        keys, docs = [], []
        for start in range(0, num_docs, 1 << 20):  # in chunks: memory stays flat however many documents
            chunk = split_keys(seed, start, min(start + (1 << 20), num_docs))
            below = np.flatnonzero(chunk < cutoff)
            keys.append(chunk[below])
            docs.append(below + start)
        keys, docs = np.concatenate(keys), np.concatenate(docs)
        order = np.argsort(keys, kind="stable")
        val, tokens = [], 0
        for key, doc in zip(keys[order].tolist(), docs[order].tolist()):
            if val and (len(val) >= num_docs // 2 or (key >= val_frac and tokens >= val_min_tokens)):
                return set(val)
            if doc not in counts:
                counts[doc] = tokenizer.count(corpus.text(doc))
            val.append(doc)
            tokens += counts[doc]
        cutoff *= 4  # not enough candidates yet: widen (the keys below the old cutoff come out the same)


class ShardWriter:
    """Appends one split's tokens to NAME.bin.tmp and renames it NAME.bin once it holds shard_tokens."""

    def __init__(self, out_dir, split, shard_tokens, shards=(), partial=0):
        self.out_dir, self.split, self.shard_tokens = out_dir, split, shard_tokens
        self.shards, self.partial, self.file = list(shards), partial, None
        current = len(self.shards)
        # Back to the checkpoint: drop shards begun after it; the current one may already have been renamed.
        for path in [*out_dir.glob(f"{split}_*.bin"), *out_dir.glob(f"{split}_*.bin.tmp")]:
            if int(path.name.split("_")[1].split(".")[0]) > current:
                path.unlink()
        final, temp = self._paths(current)
        if final.exists():
            os.replace(final, temp)
        if partial:
            self.file = open(temp, "r+b")
            self.file.truncate(2 * partial)
            self.file.seek(2 * partial)
        elif temp.exists():
            temp.unlink()

    def _paths(self, index):
        final = self.out_dir / f"{self.split}_{index:04d}.bin"
        return final, final.with_name(final.name + ".tmp")

    def write(self, tokens):
        while len(tokens):
            if self.file is None:
                self.file = open(self._paths(len(self.shards))[1], "wb")
            room = self.shard_tokens - self.partial
            tokens[:room].tofile(self.file)
            self.partial += min(room, len(tokens))
            tokens = tokens[room:]
            if self.partial == self.shard_tokens:
                self._finish_shard()

    def _finish_shard(self):
        self.sync()
        self.file.close()
        self.file = None
        final, temp = self._paths(len(self.shards))
        os.replace(temp, final)
        self.shards.append({"file": final.name, "tokens": self.partial})
        self.partial = 0

    def sync(self):
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self):
        if self.partial:
            self._finish_shard()


def write_json(path, obj):
    """Write-then-rename, so a reader sees the old file or the new one, never half of one."""
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1)))


_worker_tokenizer = None


def _init_worker(name):
    global _worker_tokenizer
    # Ctrl-C is for the main process alone: it exits (code 130) and a rerun resumes from the last checkpoint
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_tokenizer = Tokenizer(name)


def _encode_batch(train_texts, val_texts):
    return _worker_tokenizer.encode(train_texts), _worker_tokenizer.encode(val_texts)


def batches(corpus, start, val_docs):
    """Consecutive documents from `start`, routed to train or val, in tasks of about BATCH_CHARS characters."""
    texts, chars, replaced = {"train": [], "val": []}, 0, 0
    for index, (text, bad_bytes) in enumerate(corpus.documents(start), start):
        texts["val" if index in val_docs else "train"].append(text)
        chars, replaced = chars + len(text), replaced + bad_bytes
        if chars >= BATCH_CHARS or index + 1 == corpus.num_docs:
            yield index + 1, texts, replaced
            texts, chars, replaced = {"train": [], "val": []}, 0, 0


def tokenized(tokenizer, tasks, num_proc):
    """(task, train tokens, val tokens) in task order, tokenized by num_proc processes, a bounded number in flight."""
    if tokenizer.encoding is None or num_proc == 1:  # bytes are as fast as the hand-off to a process would be
        for task in tasks:
            yield task, tokenizer.encode(task[1]["train"]), tokenizer.encode(task[1]["val"])
        return
    with ProcessPoolExecutor(num_proc, initializer=_init_worker, initargs=(tokenizer.name,)) as pool:
        in_flight = deque()
        for task in tasks:
            in_flight.append((task, pool.submit(_encode_batch, task[1]["train"], task[1]["val"])))
            if len(in_flight) > 2 * num_proc:
                task, future = in_flight.popleft()
                yield task, *future.result()
        for task, future in in_flight:
            yield task, *future.result()


def clear(out_dir):
    # The records go before the shards they describe: an interrupted clear then looks like a fresh start, never
    # like a finished dataset (meta.json) or a resumable one (progress.json) with shards missing.
    for pattern in ("meta.json", "progress.json", "train_*.bin", "val_*.bin", "train_*.bin.tmp", "val_*.bin.tmp",
                    "meta.json.tmp", "progress.json.tmp"):  # its own names alone: the folder may hold other files
        for path in out_dir.glob(pattern):
            path.unlink()


def prepare(config):
    """Tokenize config's corpus into config's out_dir (resuming a partial run); return the meta dict."""
    if config["dataset"] not in (*HUB_DATASETS, "files", "stdlib"):
        raise ConfigError(f"unknown dataset '{config['dataset']}' (choose stdlib, files, {', '.join(HUB_DATASETS)})")
    check_values(config, SETTINGS)
    config = dict(config, sample=check_sample(config["dataset"], config["sample"]))
    tokenizer = Tokenizer(config["tokenizer"])
    out_dir = Path(config["out_dir"] or default_out_dir(config["dataset"], config["sample"], config["tokenizer"]))
    request = {key: config[key] for key in OUTPUT_KEYS}  # the settings that decide the output's bytes
    if config["dataset"] in SAMPLED_DATASETS:  # only there: the datasets made before --sample keep their records
        request["sample"] = config["sample"]
    out_dir.mkdir(parents=True, exist_ok=True)
    if config["force"]:
        clear(out_dir)
    if (out_dir / "meta.json").exists():
        meta = json.loads((out_dir / "meta.json").read_text())
        if meta.get("config") != request:
            raise CorpusError(f"{out_dir} holds a dataset made with other settings: use --force to replace it, "
                            f"or another --out_dir")
        if not all(key in meta for key in shards.RECORD_KEYS):  # made before fingerprints were recorded
            meta = record_fingerprint(out_dir, meta)
            print(f"{out_dir} is complete; recorded its fingerprint {meta['fingerprint']}")
            return meta
        print(f"{out_dir} is complete, nothing to do (--force redoes it)")
        return meta

    corpus = open_corpus(config)
    progress_path = out_dir / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else None
    if progress and (progress["config"] != request or progress["corpus"] != corpus.provenance):
        raise CorpusError(f"{out_dir} holds a partial run with other settings or another corpus: use --force to "
                        f"start over, or another --out_dir")
    if not progress and [*out_dir.glob("train_*.bin"), *out_dir.glob("val_*.bin")]:  # a fresh start replaces them
        raise CorpusError(f"{out_dir} holds shards that no progress.json of this command describes: use --force to "
                          f"replace them, or another --out_dir")
    progress = progress or {"config": request, "corpus": corpus.provenance, "next_doc": 0, "replaced_bytes": 0,
                            "splits": {split: {"shards": [], "partial": 0, "documents": 0, "tokens": 0}
                                       for split in ("train", "val")}}
    if progress["next_doc"]:
        print(f"resuming {out_dir} at document {progress['next_doc']} of {corpus.num_docs}")
    val_docs = choose_val_docs(corpus, tokenizer, config["val_frac"], config["val_min_tokens"], config["seed"])
    splits = progress["splits"]
    writers = {split: ShardWriter(out_dir, split, config["shard_tokens"], state["shards"], state["partial"])
               for split, state in splits.items()}

    def checkpoint(next_doc):
        for writer in writers.values():
            writer.sync()  # the tokens must be on disk before the progress file says they are
            splits[writer.split].update(shards=writer.shards, partial=writer.partial)
        progress["next_doc"] = next_doc
        write_json(progress_path, progress)

    started, new_tokens, last_checkpoint = time.time(), 0, time.time()
    tasks = batches(corpus, progress["next_doc"], val_docs)
    with tqdm(total=corpus.num_docs, initial=progress["next_doc"], unit="doc", unit_scale=True) as bar:
        for (next_doc, texts, replaced), *tokens in tokenized(tokenizer, tasks, config["num_proc"]):
            shards_before = sum(len(writer.shards) for writer in writers.values())
            for split, split_tokens in zip(("train", "val"), tokens):
                writers[split].write(split_tokens)
                splits[split]["documents"] += len(texts[split])
                splits[split]["tokens"] += len(split_tokens)
                new_tokens += len(split_tokens)
            progress["replaced_bytes"] += replaced
            bar.update(next_doc - bar.n)
            bar.set_postfix_str(f"{new_tokens / (time.time() - started) / 1e6:.2f}M tok/s", refresh=False)
            shards_now = sum(len(writer.shards) for writer in writers.values())
            if shards_now > shards_before or time.time() > last_checkpoint + CHECKPOINT_SECONDS:
                checkpoint(next_doc)
                last_checkpoint = time.time()
    for writer in writers.values():
        writer.close()
    meta = {"format": "uint16-shards-v1", "tokenizer": tokenizer.name, "vocab_size": tokenizer.vocab_size,
            "eot_token": tokenizer.eot_token, "dtype": "uint16", "shard_tokens": config["shard_tokens"],
            "shards": {split: writer.shards for split, writer in writers.items()},
            "tokens": {split: state["tokens"] for split, state in splits.items()},
            "documents": {split: state["documents"] for split, state in splits.items()},
            "val_frac": config["val_frac"], "val_min_tokens": config["val_min_tokens"], "seed": config["seed"],
            "val_rule": "documents in increasing splitmix64(seed, index) key order until key >= val_frac and "
                        "val_min_tokens tokens are held, at most half the documents",
            "source": corpus.provenance, "replaced_bytes": progress["replaced_bytes"], "config": request}
    meta = record_fingerprint(out_dir, meta)  # writes meta.json, last
    progress_path.unlink(missing_ok=True)  # a short run may never have checkpointed
    for split in ("train", "val"):
        print(f"{split}: {meta['tokens'][split]:,} tokens, {meta['documents'][split]:,} documents, "
              f"{len(meta['shards'][split])} shard(s) in {out_dir}")
    print(f"fingerprint {meta['fingerprint']}")
    return meta


def record_fingerprint(out_dir, meta):
    """meta with what train.py's start checks (lab/shards.py: the fingerprint, the largest token, sampled blocks),
    read from the shards it lists in one pass, written to meta.json."""
    train, val = ([shards.open_shard(out_dir / s["file"], s["tokens"]) for s in meta["shards"][split]]
                  for split in ("train", "val"))
    meta = dict(meta, **shards.record(train, val))
    write_json(out_dir / "meta.json", meta)
    return meta


def main(argv=None):
    try:
        prepare(parse_args(sys.argv[1:] if argv is None else argv, SETTINGS))
    except (ConfigError, CorpusError, shards.DataError) as e:  # DataError: a finished folder's shard gone or cut
        fail(str(e))
    except OSError as e:  # a full disk, a read-only folder: the machine's problem, not a bug to trace
        fail(f"{type(e).__name__}: {e}")
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
