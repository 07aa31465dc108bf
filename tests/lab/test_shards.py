"""lab/shards.py: what a data folder holds and its checks, each bad folder one DataError line: meta.json and its
shards, nanoGPT's folders (GPT-2 tokens, or meta.pkl's vocabulary, read without running code), tokens outside the
vocabulary, the fingerprint, and the command that prepares a missing folder."""
import hashlib
import json
import pickle
import shlex
import subprocess
import sys
from pathlib import PurePosixPath

import numpy as np
import pytest

import prepare_data
from helpers import REPO, edit_meta, fingerprint_of, write_bytes_dataset, write_char_folder, write_shards
from lab import settings, shards
from lab.config import config_file
from lab.data import DataError, Dataset


@pytest.mark.parametrize("change, reason", [
    (lambda meta: {k: v for k, v in meta.items() if k != "shards"}, "KeyError: 'shards'"),
    (lambda meta: {**meta, "shards": {"val": meta["shards"]["val"]}}, "KeyError: 'train'"),
    (lambda meta: {**meta, "shards": {**meta["shards"], "train": [{"tokens": 10}]}}, "KeyError: 'file'"),
    (lambda meta: {**meta, "shards": {**meta["shards"], "val": [{"file": "val_0000.bin"}]}}, "KeyError: 'tokens'"),
    (lambda meta: {**meta, "shards": {**meta["shards"], "train": [{"file": 5, "tokens": 10}]}}, "TypeError"),
    (lambda meta: {**meta, "shards": {**meta["shards"], "train": [{"file": "t", "tokens": "many"}]}}, "ValueError"),
    (lambda meta: {**meta, "shards": {"train": "train_0000.bin", "val": []}}, "TypeError"),
    (lambda meta: [meta], "TypeError"),
])
def test_malformed_meta_is_a_data_error_naming_the_file(tmp_path, change, reason):
    folder = write_bytes_dataset(tmp_path / "data", "some text " * 1000, val_tokens=100)
    edit_meta(folder, change)
    with pytest.raises(DataError) as info:
        Dataset(folder)
    assert str(info.value).startswith(f"{folder / 'meta.json'} is not a valid dataset description ({reason}")


def test_empty_shard_listed_in_meta_is_a_data_error(tmp_path):
    folder = write_bytes_dataset(tmp_path / "data", "some text " * 1000, val_tokens=100)
    (folder / "train_0001.bin").write_bytes(b"")
    edit_meta(folder, lambda meta: {**meta, "shards": {**meta["shards"], "train": [
        *meta["shards"]["train"], {"file": "train_0001.bin", "tokens": 0}]}})
    with pytest.raises(DataError, match=r"^shard \S+train_0001.bin is empty$"):
        Dataset(folder)


@pytest.mark.parametrize("train, val, message", [
    (b"\1\0\2", b"\1\0", r"train.bin has 3 bytes, an odd number: not a file of uint16 tokens$"),
    (b"\1\0", b"", r"val.bin is empty$"),
])
def test_nanogpt_bin_of_bad_size_is_a_data_error(tmp_path, train, val, message):
    (tmp_path / "train.bin").write_bytes(train)
    (tmp_path / "val.bin").write_bytes(val)
    with pytest.raises(DataError, match=message):
        Dataset(tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda folder: (folder / "train_0001.bin").unlink(), r"^shard \S+train_0001.bin listed in meta.json is missing$"),
    (lambda folder: (folder / "train_0001.bin").write_bytes(b"\0" * 30),
     r"^shard \S+train_0001.bin has 30 bytes but meta.json says 14 tokens \(28 bytes\)$"),
    (lambda folder: (folder / "val_0000.bin").write_bytes(b"\0" * 20),
     r"^shard \S+val_0000.bin has 20 bytes but meta.json says 11 tokens \(22 bytes\)$"),
    (lambda folder: edit_meta(folder, lambda meta: {**meta, "dtype": "uint32"}),
     r"meta.json: dtype 'uint32' is not supported, only uint16$"),
    (lambda folder: edit_meta(folder, lambda meta: {**meta, "shards": {**meta["shards"], "val": []}}),
     r"^dataset \S+ has an empty train or val split$"),
    (lambda folder: edit_meta(folder, lambda meta: {**meta, "shards": {**meta["shards"], "train": []}}),
     r"^dataset \S+ has an empty train or val split$"),
    (lambda folder: (folder / "meta.json").unlink(), r"^no prepared dataset in \S+ \(no meta.json, nor nanoGPT's "
                                                     r"train.bin and val.bin\): run `python prepare_data.py --dataset="),
])
def test_a_dataset_that_does_not_match_its_meta_is_one_line(tmp_path, change, message):
    folder = write_shards(tmp_path / "data", [list(range(9)), list(range(14))], [list(range(11))])
    change(folder)
    with pytest.raises(DataError, match=message):
        Dataset(folder)


def test_a_folder_without_a_record_is_read_whole_and_its_vocabulary_size_is_a_number(tmp_path):
    folder = write_shards(tmp_path / "d", [[0, 0, 0]], [[0, 0]], vocab_size="257")  # as a hand-written meta.json
    meta = Dataset(folder).meta
    assert meta["vocab_size"] == 257 and type(meta["vocab_size"]) is int
    assert (meta["fingerprint"], meta["fingerprint_of"], meta["max_token"]) == (fingerprint_of(folder),
                                                                                shards.FINGERPRINT_OF, 0)
    assert shards.short("0123456789abcdef0123") == "0123456789abcdef"  # how messages show a fingerprint


def test_nanogpt_pair_without_meta_pkl_is_read_as_gpt2_tokens(tmp_path):
    np.array([50256, 1, 2, 3], dtype="<u2").tofile(tmp_path / "train.bin")
    np.array([7, 50256], dtype="<u2").tofile(tmp_path / "val.bin")
    data = Dataset(tmp_path)
    assert data.meta == dict(tokenizer="gpt2", vocab_size=50257, eot_token=50256, source={"format": "nanoGPT"},
                             fingerprint=fingerprint_of(tmp_path), fingerprint_of=shards.FINGERPRINT_OF,
                             max_token=50256)  # read whole: no record
    assert data.val_tokens == 2 and data.fingerprint == fingerprint_of(tmp_path)
    assert [s.tolist() for s in data.train] == [[50256, 1, 2, 3]] and [s.tolist() for s in data.val] == [[7, 50256]]
    assert not data.train[0].flags.writeable  # the shards are mapped read-only
    (tmp_path / "val.bin").unlink()  # train.bin alone is no dataset
    with pytest.raises(DataError, match=r"^no prepared dataset in \S+ \(no meta.json, nor nanoGPT's train.bin and "
                                        r"val.bin\)"):
        Dataset(tmp_path)


def test_char_level_nanogpt_folder_is_read_with_its_vocabulary(tmp_path):
    chars = write_char_folder(tmp_path, "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)
    data = Dataset(tmp_path)
    assert len(chars) == 27 and chars[-1] == "z"  # 'z' (of 'Citizen') is the largest token: 26
    assert data.meta == dict(tokenizer="chars", vocab_size=27, eot_token=None, vocabulary=chars, source={
        "format": "nanoGPT", "meta.pkl sha256": hashlib.sha256((tmp_path / "meta.pkl").read_bytes()).hexdigest()},
        fingerprint=fingerprint_of(tmp_path), fingerprint_of=shards.FINGERPRINT_OF, max_token=26)
    tokens = {"train": len(data.train[0]), "val": len(data.val[0])}
    assert tokens == {"train": 1098, "val": 122}  # nanoGPT's 90/10 split of 1,220 characters
    assert data.record() == dict(dir=str(tmp_path), fingerprint=fingerprint_of(tmp_path), tokenizer="chars",
                                 vocab_size=27, tokens=tokens, source=data.meta["source"], vocabulary=chars)


def test_the_issue_case_a_char_folder_plans_a_model_of_its_own_vocabulary(tmp_path, capsys, monkeypatch):
    """cpu_tiny on a char-level folder: the dry run's model has the 27-token vocabulary (padded to 64), not GPT-2's."""
    import train
    from model import GPT, PRESETS, GPTConfig
    write_char_folder(tmp_path / "chars", "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)
    monkeypatch.chdir(REPO)
    train.main(["configs/cpu_tiny.py", f"--data_dir={tmp_path / 'chars'}", "--dry_run=True", "--device=cpu"])
    params = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("parameters: "))
    expected = GPT(GPTConfig(vocab_size=64, block_size=256, **PRESETS["cpu_tiny"])).num_params()
    assert params.startswith(f"parameters: {expected / 1e6:.3g}M") and expected < 1.1e6


def test_meta_pkl_is_read_without_running_its_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os
            return os.mkdir, (str(marker),)

    np.array([1, 2, 3], dtype="<u2").tofile(tmp_path / "train.bin")
    np.array([1, 2], dtype="<u2").tofile(tmp_path / "val.bin")
    payload = pickle.dumps({"vocab_size": 4, "itos": {0: "a", 1: "b", 2: "c", 3: Evil()}})
    (tmp_path / "meta.pkl").write_bytes(payload)
    with pytest.raises(DataError, match=r"^cannot read \S+meta.pkl as nanoGPT's meta.pkl \(UnpicklingError: it "
                                        r"names posix.mkdir, and only plain data is read\)$"):
        Dataset(tmp_path)
    assert not marker.exists()
    pickle.loads(payload)  # the control: a plain unpickler runs it
    assert marker.is_dir()


@pytest.mark.parametrize("meta, message", [
    ({"vocab_size": 3}, "has no itos or stoi: the text of its 3 tokens is unknown"),
    ({"itos": {0: "a"}}, "needs a dict whose vocab_size is a positive int, not dict"),
    ([1, 2], "needs a dict whose vocab_size is a positive int, not list"),
    ({"vocab_size": 3, "itos": {0: "a", 1: "b"}}, "itos must give a string for each id 0..2 (vocab_size)"),
    ({"vocab_size": 2, "itos": {0: "a", 1: 5}}, "itos must give a string for each id 0..1"),
    ({"vocab_size": 2, "itos": {0: "a", 1: "b"}, "stoi": {"a": 1, "b": 0}}, "stoi is not the inverse of itos"),
])
def test_a_meta_pkl_that_is_not_nanogpts_is_one_line(tmp_path, meta, message):
    np.array([0, 1, 0], dtype="<u2").tofile(tmp_path / "train.bin")
    np.array([1, 0], dtype="<u2").tofile(tmp_path / "val.bin")
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps(meta))
    with pytest.raises(DataError) as info:
        Dataset(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_stoi_alone_gives_the_vocabulary(tmp_path):
    np.array([0, 1, 2], dtype="<u2").tofile(tmp_path / "train.bin")
    np.array([2, 0], dtype="<u2").tofile(tmp_path / "val.bin")
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": 3, "stoi": {"x": 0, "y": 1, "z": 2}}))
    assert Dataset(tmp_path).meta["vocabulary"] == ["x", "y", "z"]


def test_tokens_outside_the_claimed_vocabulary_are_refused(tmp_path):
    bytes_folder = write_bytes_dataset(tmp_path / "bytes", "some text " * 100, val_tokens=100)
    shard = np.fromfile(bytes_folder / "train_0000.bin", dtype="<u2")
    shard[7] = 300  # a GPT-2 token in a bytes folder
    shard.tofile(bytes_folder / "train_0000.bin")
    with pytest.raises(DataError, match=rf"^{bytes_folder} holds token 300, outside the vocabulary of 257 tokens that "
                                        rf"{bytes_folder / 'meta.json'} states: the tokens are not of that vocabulary"):
        Dataset(bytes_folder)
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    np.array([50256, 60000], dtype="<u2").tofile(gpt2 / "train.bin")
    np.array([1, 2], dtype="<u2").tofile(gpt2 / "val.bin")
    with pytest.raises(DataError, match=r"holds token 60000, outside the vocabulary of 50257 tokens that nanoGPT's "
                                        r"convention for a folder without meta.pkl \(GPT-2's tokens\) states"):
        Dataset(gpt2)
    chars = tmp_path / "chars"
    write_char_folder(chars, "abcabc" * 10)
    np.array([0, 1, 3], dtype="<u2").tofile(chars / "val.bin")  # 3 is past the 3 characters a, b, c
    with pytest.raises(DataError, match=rf"holds token 3, outside the vocabulary of 3 tokens that {chars}/meta.pkl"):
        Dataset(chars)


def prepared(tmp_path, name="data", documents=40):
    """A folder prepare_data.py made (bytes tokenizer, shards of 1000 tokens: several per split)."""
    for i in range(documents):
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / f"{i:03d}.txt").write_text(f"document {i}: " + "lorem ipsum " * (i % 13 + 5))
    out = tmp_path / name
    prepare_data.main(["--dataset=files", f"--files={tmp_path}/docs/*.txt", "--tokenizer=bytes", "--shard_tokens=1000",
                       "--val_min_tokens=1200", f"--out_dir={out}"])
    return out


def test_a_prepared_folder_records_its_fingerprint_and_a_start_checks_sampled_blocks(tmp_path, monkeypatch):
    out = prepared(tmp_path)
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["shards"]["train"]) > 2 and len(meta["shards"]["val"]) > 1
    assert meta["fingerprint"] == fingerprint_of(out) and meta["max_token"] == 256  # every document ends with eot
    train = np.fromfile(out / "train_0001.bin", dtype="<u2")
    monkeypatch.setattr(shards, "scan", lambda *a: pytest.fail("a recorded folder is not read whole at a start"))
    assert Dataset(out).fingerprint == meta["fingerprint"]
    train[0] = ord("#") if train[0] != ord("#") else ord("%")  # the first block of a shard is always sampled
    train.tofile(out / "train_0001.bin")
    with pytest.raises(DataError, match=rf"^the shards in {out} are not those its meta.json records \(sampled blocks "
                                        r"differ\): a shard changed after prepare_data.py wrote it"):
        Dataset(out)


def test_the_record_and_its_sampled_blocks_by_hand(tmp_path):
    """Shards shorter than a block: each of the 16 blocks is the whole shard; a longer one: 16 blocks of 2,048 tokens
    from its first token to its last, evenly (starts 0, 200, ..., 3000 for 5,048 tokens)."""
    folder = write_shards(tmp_path / "short", [[5, 6, 7]], [[8, 9]])
    meta, train, val = shards.read_folder(folder)
    def split(name, shard):
        return f"{name}:{len(shard)}\n".encode()
    by_hand = hashlib.sha256(split("train", train[0]) + train[0].tobytes() * 16 + split("val", val[0])
                             + val[0].tobytes() * 16).hexdigest()
    assert shards.record(train, val) == dict(fingerprint=fingerprint_of(folder), fingerprint_of=shards.FINGERPRINT_OF,
                                             max_token=9, spot_sha256=by_hand)
    long = np.arange(5048, dtype="<u2") % 257
    folder = write_shards(tmp_path / "long", [long.tolist()], [[8, 9]])
    _, train, val = shards.read_folder(folder)
    blocks = b"".join(long[start:start + 2048].tobytes() for start in range(0, 3001, 200))
    assert shards.spot_digest(train, val) == hashlib.sha256(split("train", long) + blocks + split("val", val[0])
                                                            + val[0].tobytes() * 16).hexdigest()


def test_a_meta_pkl_of_one_token_and_one_of_none(tmp_path):
    np.array([0, 0, 0], dtype="<u2").tofile(tmp_path / "train.bin")
    np.array([0, 0], dtype="<u2").tofile(tmp_path / "val.bin")
    (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": 1, "itos": ["a"]}))  # itos as a list
    assert Dataset(tmp_path).meta["vocabulary"] == ["a"]
    for vocab_size, shown in ((0, "0"), (-3, "-3"), (True, "True"), ("3", "'3'")):
        (tmp_path / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": vocab_size, "itos": ["a"]}))
        with pytest.raises(DataError, match=rf"is not nanoGPT's meta.pkl: it needs a dict whose vocab_size is a "
                                            rf"positive int, not {shown}$"):
            Dataset(tmp_path)


def test_the_fingerprint_is_of_the_tokens_not_of_the_files(tmp_path):
    tokens = np.arange(5000, dtype="<u2") % 257
    one = write_bytes_dataset(tmp_path / "one", "x")  # then its shards replaced by the same tokens as a nanoGPT pair
    tokens[:4000].tofile(one / "train_0000.bin")
    tokens[4000:].tofile(one / "val_0000.bin")
    edit_meta(one, lambda meta: {**meta, "shards": {"train": [{"file": "train_0000.bin", "tokens": 4000}],
                                                    "val": [{"file": "val_0000.bin", "tokens": 1000}]}})
    nano = tmp_path / "nano"
    nano.mkdir()
    tokens[:4000].tofile(nano / "train.bin")
    tokens[4000:].tofile(nano / "val.bin")
    (nano / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": 257, "itos": {i: chr(i) for i in range(257)}}))
    assert Dataset(one).fingerprint == Dataset(nano).fingerprint == fingerprint_of(one)
    tokens[:3999].tofile(nano / "train.bin")  # one token moved from train to val: other data
    tokens[3999:].tofile(nano / "val.bin")
    assert Dataset(nano).fingerprint == fingerprint_of(nano) != fingerprint_of(one)


def configs_data_dirs():
    return sorted({config_file(path).get("data_dir", settings.DEFAULTS["data_dir"])
                   for path in (REPO / "configs").glob("*.py")})


@pytest.mark.parametrize("data_dir", [*configs_data_dirs(), "elsewhere/stdlib-gpt2",
                                      "data/fineweb-edu-CC-MAIN-2024-10-gpt2"])
def test_a_missing_folder_names_the_command_that_prepares_it(tmp_path, monkeypatch, data_dir):
    """The command in the error, run (up to reading the corpus), makes exactly that folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(shards.MissingData) as info:
        Dataset(data_dir)
    message = str(info.value)
    assert message.startswith(f"no prepared dataset in {data_dir} (no meta.json, nor nanoGPT's train.bin and val.bin): "
                              f"run `python prepare_data.py --dataset=")
    command = shlex.split(message.split("`")[1])
    assert command[:2] == ["python", "prepare_data.py"]

    class Stop(Exception):
        pass

    def stop(config):
        raise Stop(config)
    monkeypatch.setattr(prepare_data, "open_corpus", stop)
    with pytest.raises(Stop):
        prepare_data.prepare(prepare_data.parse_args(command[2:], prepare_data.SETTINGS))
    made = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    assert made == {data_dir, *(p.as_posix() for p in PurePosixPath(data_dir).parents if p != PurePosixPath("."))}


def test_the_paper_config_without_its_data_names_slimpajama(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "train.py"), str(REPO / "configs/124m_cooldown.py")],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr == (
        "error: no prepared dataset in data/slimpajama-gpt2 (no meta.json, nor nanoGPT's train.bin and val.bin): "
        "run `python prepare_data.py --dataset=slimpajama` or point data_dir at one\n")


def test_another_name_gets_the_command_with_its_folder(tmp_path):
    with pytest.raises(shards.MissingData, match=r"run `python prepare_data.py --dataset=<stdlib\|files\|slimpajama\|"
                                                 r"openwebtext2\|fineweb\|fineweb-edu> --out_dir=\S+shakespeare_char`"):
        Dataset(tmp_path / "shakespeare_char")
