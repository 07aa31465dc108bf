"""Tests for prepare_data.py and lab/corpora.py: token-exact output, the split, resuming, and every bad input's
error."""
import functools
import http.server
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tiktoken

import prepare_data
from helpers import fingerprint_of
from lab import corpora
from prepare_data import choose_val_docs, main, split_keys


@functools.cache
def gpt2():
    """tiktoken's GPT-2 encoding, loaded by the tests that use it (it needs its files: a cache, or a download)."""
    return tiktoken.get_encoding("gpt2")


# Non-ASCII of every width, the special-token text (must stay plain text), an empty document, whitespace runs.
TEXTS = ["Hello, world!", "naïve café — “quotes”", "日本語のテキスト。", "emoji 🎉🚀 and ZWJ 👩‍💻", "",
         "<|endoftext|> is just text here", "tabs\tand\n\nnewlines   ", "Ελληνικά και русский"]
TEXTS += [f"document {i}: " + "lorem ipsum " * (i % 17) + "ß" * (i % 5) for i in range(len(TEXTS), 120)]


def read_split(out_dir, meta, split):
    return np.concatenate([np.fromfile(out_dir / shard["file"], dtype="<u2") for shard in meta["shards"][split]])


def split_documents(tokens, eot):
    ends = np.flatnonzero(tokens == eot)
    assert len(tokens) and tokens[-1] == eot  # every document, the last one too, ends with eot
    return [tokens[start:end].tolist() for start, end in zip(np.r_[0, ends[:-1] + 1], ends)]


def run(args, out_dir):
    return main([*args, f"--out_dir={out_dir}"])


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Keep the Arrow caches `datasets` builds for json/parquet files inside the test's own folder."""
    import datasets
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_gpt2_output_is_tiktoken_encode_ordinary_plus_eot(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"text": text} for text in TEXTS])
    out = tmp_path / "out"
    run(["--dataset=files", f"--files={tmp_path}/*.jsonl", "--tokenizer=gpt2", "--val_frac=0.2",
         "--val_min_tokens=0", "--num_proc=2", "--shard_tokens=500"], out)
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["vocab_size"], meta["eot_token"], meta["format"]) == (50257, 50256, "uint16-shards-v1")
    expected = [gpt2().encode_ordinary(text) for text in TEXTS]
    assert gpt2().encode_ordinary(TEXTS[5])[0] != 50256  # the special token's text is not the special token
    docs = {split: split_documents(read_split(out, meta, split), 50256) for split in ("train", "val")}
    val_texts = {gpt2().decode(doc) for doc in docs["val"]}
    val = [i for i, text in enumerate(TEXTS) if text in val_texts]
    assert 10 <= len(val) <= 40  # ~20 % of 120
    assert docs["val"] == [expected[i] for i in val]  # in corpus order, exactly tiktoken's tokens
    assert docs["train"] == [expected[i] for i in range(len(TEXTS)) if i not in val]
    assert meta["documents"] == {"train": len(TEXTS) - len(val), "val": len(val)}
    assert meta["tokens"]["train"] == sum(len(expected[i]) + 1 for i in range(len(TEXTS)) if i not in val)
    shards = meta["shards"]["train"]
    assert len(shards) > 3 and all(shard["tokens"] == 500 for shard in shards[:-1]) and shards[-1]["tokens"] <= 500
    assert sorted(path.name for path in out.iterdir() if ".tmp" in path.name or "progress" in path.name) == []


def test_bytes_round_trip_and_replaced_bytes(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(TEXTS[:20]):
        (folder / f"{i:02d}.txt").write_text(text, encoding="utf-8")
    (folder / "20.txt").write_bytes(b"bad \xff\xfe bytes \xe2\x82 end")  # 2 + 2 undecodable bytes
    out = tmp_path / "out"
    run(["--dataset=files", f"--files={folder}/*.txt", "--tokenizer=bytes", "--val_min_tokens=100"], out)
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["vocab_size"], meta["eot_token"], meta["replaced_bytes"]) == (257, 256, 4)
    decoded = {bytes(doc).decode("utf-8") for split in ("train", "val")
               for doc in split_documents(read_split(out, meta, split), 256)}
    assert decoded == set(TEXTS[:20]) | {"bad \ufffd\ufffd bytes \ufffd end"}
    assert meta["tokens"]["val"] >= 100 and meta["documents"]["val"] >= 1
    assert meta["source"]["files"] == 21 and meta["documents"]["train"] + meta["documents"]["val"] == 21


def splitmix64(x):
    """The documented splitmix64 finalizer in plain Python integers: an independent check of numpy's uint64 code."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB % 2**64
    return x ^ (x >> 31)


def test_split_keys_and_validation_choice():
    assert split_keys(7, 0, 1000).tolist() == [(splitmix64(splitmix64(7) ^ i) >> 11) * 2.0**-53 for i in range(1000)]
    assert split_keys(2**64 - 1, 0, 1).tolist() == [(splitmix64(splitmix64(2**64 - 1)) >> 11) * 2.0**-53]
    assert np.array_equal(split_keys(7, 500, 1000), split_keys(7, 0, 1000)[500:])  # chunking does not matter
    assert not np.array_equal(split_keys(7, 0, 1000), split_keys(8, 0, 1000))
    keys = split_keys(2357, 0, 200_000)
    assert 0 <= keys.min() and keys.max() < 1 and abs(keys.mean() - 0.5) < 0.01

    class Corpus:  # 200k documents of 3 tokens each, without any text on disk
        num_docs = 200_000

        def text(self, index):
            return "ab"

    tokenizer = prepare_data.Tokenizer("bytes")
    big = choose_val_docs(Corpus(), tokenizer, 0.0005, 0, 2357)  # large corpus: exactly the keys below val_frac
    assert big == set(np.flatnonzero(keys < 0.0005).tolist()) and 60 < len(big) < 140
    small = choose_val_docs(Corpus(), tokenizer, 0.0005, 3000, 2357)  # the minimum tops it up, lowest keys first
    assert len(small) == 1000 and big < small
    assert set(np.argsort(keys)[:1000].tolist()) == small
    assert len(choose_val_docs(Corpus(), tokenizer, 0.0005, 10**9, 2357)) == 100_000  # never over half


def test_split_is_deterministic_disjoint_and_seeded(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"text": text} for text in TEXTS])
    args = ["--dataset=files", f"--files={tmp_path}/c.jsonl", "--tokenizer=bytes", "--val_frac=0.1",
            "--val_min_tokens=0"]
    val_sets = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run([*args, f"--seed={seed}"], tmp_path / name)
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        docs = {split: [bytes(doc).decode() for doc in split_documents(read_split(tmp_path / name, meta, split), 256)]
                for split in ("train", "val")}
        assert sorted(docs["train"] + docs["val"]) == sorted(TEXTS) and not set(docs["train"]) & set(docs["val"])
        val_sets[name] = docs["val"]
    assert val_sets["a"] == val_sets["b"] != val_sets["c"]
    for split in ("train", "val"):
        assert (tmp_path / "a" / f"{split}_0000.bin").read_bytes() == (tmp_path / "b" / f"{split}_0000.bin").read_bytes()


def test_slimpajama_shaped_rows_load_through_the_hub_code_path(tmp_path, monkeypatch, capsys):
    rows = [{"text": text, "meta": {"redpajama_set_name": "RedPajamaC4" if i % 2 else "RedPajamaGithub"}}
            for i, text in enumerate(TEXTS)]
    data = write_jsonl(tmp_path / "slim.jsonl", rows)
    monkeypatch.setitem(corpora.HUB_DATASETS, "slimpajama", dict(path="json", data_files=[str(data)], split="train"))
    out = tmp_path / "out"
    run(["--dataset=slimpajama", "--tokenizer=bytes", "--val_min_tokens=200"], out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"]["rows"] == len(TEXTS) and meta["source"]["text_field"] == "text"
    assert meta["documents"]["train"] + meta["documents"]["val"] == len(TEXTS)
    assert meta["tokens"]["train"] + meta["tokens"]["val"] == sum(len(t.encode()) + 1 for t in TEXTS)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # the nested `meta` column is not text
        run(["--dataset=slimpajama", "--tokenizer=bytes", "--text_field=meta"], tmp_path / "other")
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.strip().splitlines()[-1].startswith("error: field 'meta' holds ")
    assert "not text; choose another with --text_field=" in err and "Traceback" not in err


FINEWEB_COLUMNS = dict(id="<urn:uuid:{i}>", dump="CC-MAIN-2024-10", url="https://example.com/{i}",
                       date="2024-02-21T10:00:00Z", file_path="s3://commoncrawl/crawl-data/{i}.warc.gz", language="en",
                       language_score=0.93, token_count=7)


def write_fineweb_parquet(path, texts, edu):
    """Rows with FineWeb's columns (FineWeb-Edu adds its classifier's score and int_score)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": text, **{key: value.format(i=i) if isinstance(value, str) else value
                              for key, value in FINEWEB_COLUMNS.items()}} for i, text in enumerate(texts)]
    if edu:
        rows = [dict(row, score=2.5 + i % 3 / 2, int_score=3 + i % 2) for i, row in enumerate(rows)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_fineweb_edu_sample_loads_through_the_hub_code_path(tmp_path, monkeypatch):
    """The hub call is load_dataset('HuggingFaceFW/fineweb-edu', name=<sample>, split='train'); here it reads a local
    parquet file of the same schema instead, and everything after it is the real path."""
    import datasets
    data = write_fineweb_parquet(tmp_path / "fineweb-edu.parquet", TEXTS, edu=True)
    real_load, hub_calls = datasets.load_dataset, []

    def load_dataset(path, **kwargs):
        hub_calls.append(dict(kwargs, path=path))
        return real_load("parquet", data_files=[str(data)], split=kwargs["split"], num_proc=kwargs.get("num_proc"))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.chdir(tmp_path)  # the default out_dir, data/fineweb-edu-sample-100BT-gpt2, lands here
    main(["--dataset=fineweb-edu", "--sample=sample-100BT", "--num_proc=1", "--val_min_tokens=100"])
    assert hub_calls == [dict(path="HuggingFaceFW/fineweb-edu", name="sample-100BT", split="train", num_proc=None)]
    out = tmp_path / "data" / "fineweb-edu-sample-100BT-gpt2"
    meta = json.loads((out / "meta.json").read_text())
    source = meta["source"]
    assert (source["dataset"], source["sample"], source["hub_id"], source["split"]) == (
        "fineweb-edu", "sample-100BT", "HuggingFaceFW/fineweb-edu", "train")
    assert source["rows"] == len(TEXTS) and source["text_field"] == "text" and meta["config"]["sample"] == "sample-100BT"
    documents = [doc for split in ("train", "val") for doc in split_documents(read_split(out, meta, split), 50256)]
    assert sorted(documents) == sorted(gpt2().encode_ordinary(text) for text in TEXTS)  # only `text` is tokenized
    with pytest.raises(SystemExit):  # another sample is another dataset
        main(["--dataset=fineweb-edu", "--sample=sample-10BT", f"--out_dir={out}"])
    assert len(hub_calls) == 1


def test_fineweb_samples_choose_the_hub_config():
    config = dict(prepare_data.DEFAULTS, dataset="fineweb")
    assert corpora.hub_load_args(config) == dict(path="HuggingFaceFW/fineweb", name="sample-10BT", split="train")
    dump = dict(config, dataset="fineweb-edu", sample="CC-MAIN-2024-10")
    assert corpora.hub_load_args(dump)["name"] == "CC-MAIN-2024-10"
    assert "name" not in corpora.hub_load_args(dict(config, dataset="slimpajama"))


def test_stdlib_corpus_with_bytes(tmp_path):
    corpus = corpora.stdlib_corpus()
    assert corpus.num_docs > 500 and not any("site-packages" in str(path) for path in corpus.paths)
    assert [str(path) for path in corpus.paths] == sorted(str(path) for path in corpus.paths)
    out = tmp_path / "stdlib"
    run(["--dataset=stdlib", "--tokenizer=bytes"], out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"]["files"] == corpus.num_docs == sum(meta["documents"].values())
    assert meta["source"]["sha256"] == corpus.provenance["sha256"] and meta["source"]["bytes"] > 10**7
    assert meta["tokens"]["val"] >= 2**18  # the minimum validation size kicked in (0.0005 alone is ~16k)
    # Every document is there once, byte for byte (undecodable bytes as U+FFFD), followed by an eot.
    documents = [bytes(doc) for split in ("train", "val") for doc in split_documents(read_split(out, meta, split), 256)]
    expected = [corpora.decode(path.read_bytes())[0].encode("utf-8") for path in corpus.paths]
    assert sorted(documents) == sorted(expected)
    assert meta["replaced_bytes"] == sum(corpora.decode(path.read_bytes())[1] for path in corpus.paths)


def interrupt_after_shards(monkeypatch, count):
    """Make the count-th shard rename raise KeyboardInterrupt just after renaming, as a crash there would."""
    renamed, real_replace = [], os.replace

    def replace(src, dst):
        real_replace(src, dst)
        if str(dst).endswith(".bin"):
            renamed.append(dst)
            if len(renamed) == count:
                raise KeyboardInterrupt

    monkeypatch.setattr(prepare_data.os, "replace", replace)


def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "c.jsonl", [{"text": text} for text in TEXTS * 3])
    args = ["--dataset=files", f"--files={tmp_path}/c.jsonl", "--tokenizer=gpt2", "--shard_tokens=300",
            "--val_frac=0.1", "--num_proc=2"]
    monkeypatch.setattr(prepare_data, "BATCH_CHARS", 500)  # many checkpoints in a small corpus
    run(args, tmp_path / "whole")
    with monkeypatch.context() as patch:
        interrupt_after_shards(patch, 6)
        with pytest.raises(SystemExit) as stopped:
            run(args, tmp_path / "parts")
    assert stopped.value.code == 130
    progress = json.loads((tmp_path / "parts" / "progress.json").read_text())
    assert not (tmp_path / "parts" / "meta.json").exists() and progress["next_doc"] > 0  # resumes mid-way
    run(args, tmp_path / "parts")
    assert folder_bytes(tmp_path / "parts") == folder_bytes(tmp_path / "whole")


def test_killed_process_resumes_to_the_same_bytes(tmp_path):
    """A real SIGKILL of the command line on the stdlib corpus, then the same command again."""
    env = dict(os.environ, PYTHONPATH=str(prepare_data.Path(prepare_data.__file__).parent))
    args = [sys.executable, prepare_data.__file__, "--dataset=stdlib", "--tokenizer=gpt2", "--shard_tokens=200000",
            "--num_proc=2"]
    killed = tmp_path / "killed"
    process = subprocess.Popen([*args, f"--out_dir={killed}"], env=env, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 60
    while not (killed / "train_0010.bin").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its tokenizer processes, mid-way
    process.wait()
    assert not (killed / "meta.json").exists() and (killed / "progress.json").exists()
    subprocess.run([*args, f"--out_dir={killed}"], env=env, check=True, capture_output=True)
    subprocess.run([*args, f"--out_dir={tmp_path / 'whole'}"], env=env, check=True, capture_output=True)
    assert folder_bytes(killed) == folder_bytes(tmp_path / "whole")


def test_interrupted_clear_leaves_neither_meta_nor_progress(tmp_path, monkeypatch):
    """--force stopped half-way must not leave a dataset that looks finished (or resumable) with shards gone."""
    for name in ("train_0000.bin", "val_0000.bin", "train_0001.bin.tmp", "progress.json", "meta.json"):
        (tmp_path / name).write_text("x")
    real_unlink = prepare_data.Path.unlink

    def unlink(path, *args, **kwargs):
        if path.suffix == ".bin":
            raise KeyboardInterrupt  # stopped at the first shard
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(prepare_data.Path, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        prepare_data.clear(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train_0000.bin", "train_0001.bin.tmp", "val_0000.bin"]


def test_clear_deletes_only_the_files_prepare_data_py_writes(tmp_path, capsys):
    ours = ("train_0000.bin", "val_0001.bin", "train_0002.bin.tmp", "progress.json", "meta.json", "meta.json.tmp")
    yours = ("notes.tmp", "train.bin", "val.bin", "meta.pkl", "readme.txt")  # a nanoGPT folder's files among them
    for name in ours + yours:
        (tmp_path / name).write_text("x")
    prepare_data.clear(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(yours)
    (tmp_path / "train_0003.bin").write_text("yours")  # shards no progress.json describes: a fresh start refuses
    with pytest.raises(SystemExit):
        run(["--tokenizer=bytes", "--num_proc=1"], tmp_path)
    assert capsys.readouterr().err.endswith("holds shards that no progress.json of this command describes: use --force "
                                            "to replace them, or another --out_dir\n")
    assert (tmp_path / "train_0003.bin").read_text() == "yours"


def test_rerun_does_nothing_force_redoes_other_settings_refused(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"text {i}")
    args = ["--dataset=files", f"--files={folder}/*.txt", "--tokenizer=bytes"]
    run(args, tmp_path / "out")
    meta_file = tmp_path / "out" / "meta.json"
    first = meta_file.stat().st_mtime_ns
    with monkeypatch.context() as patch:
        patch.setattr(prepare_data, "open_corpus", lambda config: pytest.fail("a finished dataset was re-read"))
        run(args, tmp_path / "out")
    assert "nothing to do" in capsys.readouterr().out and meta_file.stat().st_mtime_ns == first
    (folder / "3.txt").write_text("a new document")
    run([*args, "--force"], tmp_path / "out")
    assert json.loads(meta_file.read_text())["source"]["files"] == 4
    with pytest.raises(SystemExit):
        run([*args, "--seed=1"], tmp_path / "out")
    assert "other settings" in capsys.readouterr().err


def test_a_finished_folder_without_a_fingerprint_gets_it_recorded_by_a_rerun(tmp_path, monkeypatch, capsys):
    """A folder an older prepare_data.py made: the same command reads its shards once and records what a start checks."""
    out = tmp_path / "out"
    run(["--dataset=stdlib", "--tokenizer=bytes"], out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["fingerprint"] == fingerprint_of(out) and meta["max_token"] == 256
    assert meta["source"]["build"] == sys.version and meta["source"]["python"] == platform.python_version()
    older = {k: v for k, v in meta.items() if k not in ("fingerprint", "fingerprint_of", "max_token", "spot_sha256")}
    (out / "meta.json").write_text(json.dumps(older))
    capsys.readouterr()
    monkeypatch.setattr(prepare_data, "open_corpus", lambda config: pytest.fail("a finished dataset was re-read"))
    run(["--dataset=stdlib", "--tokenizer=bytes"], out)
    assert capsys.readouterr().out == f"{out} is complete; recorded its fingerprint {meta['fingerprint']}\n"
    assert json.loads((out / "meta.json").read_text()) == meta
    (out / "meta.json").write_text(json.dumps(older))
    (out / "val_0000.bin").unlink()  # a finished folder that lost a shard: one line, meta.json left as it was
    with pytest.raises(SystemExit):
        run(["--dataset=stdlib", "--tokenizer=bytes"], out)
    assert capsys.readouterr().err == f"error: shard {out / 'val_0000.bin'} listed in meta.json is missing\n"
    assert json.loads((out / "meta.json").read_text()) == older


def bad_input_cases(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    write_jsonl(tmp_path / "rows.jsonl", [{"content": "a"}, {"content": "b"}])
    (tmp_path / "one.txt").write_text("only one document")
    (tmp_path / "x.csv").write_text("a,b")
    return [
        (["--dataset=wikipedia"], "unknown dataset 'wikipedia'"),
        (["--tokenizer=sentencepiece"], "unknown tokenizer 'sentencepiece'"),
        (["--dataset=files", f"--files={tmp_path}/nothing*.jsonl"], "no files match"),
        (["--dataset=files"], "--dataset=files needs --files="),
        (["--dataset=files", f"--files={tmp_path}/empty.jsonl"], "the corpus is empty"),
        (["--dataset=files", f"--files={tmp_path}/rows.jsonl"], "has no field 'text' (it has content)"),
        (["--dataset=files", f"--files={tmp_path}/one.txt"], "single document"),
        (["--dataset=files", f"--files={tmp_path}/x.csv"], "use .txt, .jsonl, .json or .parquet"),
        (["--dataset=files", f"--files=['{tmp_path}/*.txt', '{tmp_path}/*.jsonl']"], "prepare one kind at a time"),
        (["--val_frac=1.5"], "val_frac=1.5: must be in [0, 1)"),
        ([f"--seed={2**64}"], f"seed={2**64}: must be in [0, 2**64)"),
        (["--seed=-1"], "seed=-1: must be in [0, 2**64)"),
        (["--shard_tokens=0"], "shard_tokens=0: must be >= 1"),
        (["--shard_tokns=5"], "unknown config key 'shard_tokns' (did you mean 'shard_tokens'?)"),
        (["--dataset=fineweb", "--sample=10BT"], "--sample=10BT: fineweb has the samples sample-10BT"),
        (["--dataset=stdlib", "--sample=sample-100BT"], "--sample is for fineweb and fineweb-edu, not --dataset=stdlib"),
        (["--dataset=stdlib", "--sample=sample-10BT"], "--sample is for fineweb and fineweb-edu, not --dataset=stdlib"),
        (["--dataset=slimpajama", "--sample=default"], "--sample is for fineweb and fineweb-edu, not --dataset=slimp"),
    ]


def test_bad_inputs_fail_with_one_clear_line(tmp_path, capsys):
    for args, message in bad_input_cases(tmp_path):
        with pytest.raises(SystemExit) as exited:
            run(args, tmp_path / "out")
        err = capsys.readouterr().err  # may follow datasets' own progress output
        assert exited.value.code == 1 and err.count("error: ") == 1 and "Traceback" not in err, (args, err)
        assert err.strip().splitlines()[-1].startswith("error: ") and message in err, (args, err)
    assert not (tmp_path / "out" / "meta.json").exists()


def test_vocabulary_too_large_for_uint16(monkeypatch, tmp_path, capsys):
    class Big:
        n_vocab, eot_token = 100277, 100257

    monkeypatch.setattr(prepare_data.tiktoken, "get_encoding", lambda name: Big())
    with pytest.raises(SystemExit):
        run(["--tokenizer=cl100k_base"], tmp_path / "out")
    assert "has 100277 tokens, too many for uint16" in capsys.readouterr().err


def closed_port():
    """A local port nothing listens on: a connection there is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_the_hub_probe_tells_an_answer_from_no_answer(monkeypatch):
    """Any HTTP answer (here 501) is a reachable hub; a refused connection is not, and turns offline mode on."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # off, and restored after the test
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert corpora.offline_unless_hub_answers() is None and os.environ["HF_HUB_OFFLINE"] == "0"
    finally:
        server.shutdown()
        server.server_close()
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    reason = corpora.offline_unless_hub_answers()
    assert reason.startswith(f"http://127.0.0.1:{port}: ") and "refused" in reason
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert corpora.offline_unless_hub_answers() is None  # offline already: nothing to probe


def test_an_unreachable_hub_fails_at_once_in_one_line(tmp_path):
    """The real hub path, its endpoint a port nothing listens on: one probe, then datasets offline, which fails at
    once on an empty cache; without the probe, datasets' own retries would print a line each (and take ~25 s)."""
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, prepare_data.__file__, "--dataset=slimpajama", f"--out_dir={tmp_path}/out"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert re.match(rf"error: cannot load 'DKYoon/SlimPajama-6B' from the Hugging Face hub: it cannot be reached "
                    rf"\(http://127.0.0.1:{port}: \[Errno \d+\] Connection refused\) and the dataset is not in the "
                    rf"local cache; check the network, or download the data", result.stderr)


@pytest.mark.parametrize("args, message", [
    (["--dataset=slimpajama"], "cannot load 'DKYoon/SlimPajama-6B' from the Hugging Face hub"),
    (["--dataset=fineweb-edu"], "cannot load 'HuggingFaceFW/fineweb-edu' (sample-10BT) from the Hugging Face hub"),
    (["--dataset=files", "--files=/nonexistent/*.jsonl"], "no files match"),
])
def test_command_line_errors_have_no_traceback(tmp_path, args, message):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))  # offline: the hub is unreachable
    result = subprocess.run([sys.executable, prepare_data.__file__, *args, f"--out_dir={tmp_path}/out"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
    if "hub" in message:
        assert "--dataset=files" in result.stderr
