"""
The documents prepare_data.py tokenizes: the Python standard library, local files, or a Hugging Face hub dataset
(SlimPajama, OpenWebText2, FineWeb or FineWeb-Edu; the FineWebs in a named sample, e.g. sample-10BT).

A corpus has `num_docs`, `provenance` (a JSON dict recorded in meta.json), `text(i)` for random access, and
`documents(start)`, the (text, replaced_bytes) of every document from `start` on, in order. Hub and json/parquet
datasets go through `datasets.load_dataset` into its on-disk Arrow cache, which is memory-mapped: RAM never holds
the corpus, and a resumed run jumps straight to its next document.
"""

import codecs
import glob
import hashlib
import os
import platform
import re
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

HUB_DATASETS = {
    # The paper's data: a 10 % sample of SlimPajama-627B's first chunk, 5.49M documents, ~6B GPT-2 tokens.
    "slimpajama": dict(path="DKYoon/SlimPajama-6B", split="train"),
    # The Pile's OpenWebText2 (17.1M documents: title, text, reddit_scores) as plain parquet. EleutherAI's own
    # copies need a dataset script (no longer run by datasets) or are one 29 GB .jsonl.zst.tar.
    "openwebtext2": dict(path="vietgpt/the_pile_openwebtext2", split="train"),
    # FineWeb (filtered Common Crawl, 15T GPT-2 tokens) and FineWeb-Edu (its educational part, 1.3T): parquet with
    # text, id, dump, url, date, file_path, language, language_score, token_count (-Edu also score, int_score).
    # Too big whole: --sample names one of their configs (see SAMPLED_DATASETS).
    "fineweb": dict(path="HuggingFaceFW/fineweb", split="train"),
    "fineweb-edu": dict(path="HuggingFaceFW/fineweb-edu", split="train"),
}
# Hub datasets whose config (load_dataset's `name`) is chosen with --sample: random samples of about 10, 100 or 350B
# GPT-2 tokens, one Common Crawl dump (CC-MAIN-year-week), or 'default', everything.
SAMPLED_DATASETS = ("fineweb", "fineweb-edu")
SAMPLE_NAME = re.compile(r"sample-\d+BT|CC-MAIN-\d{4}-\d{2}|default")
DEFAULT_SAMPLE = "sample-10BT"
FILE_KINDS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
HUB_PROBE_SECONDS = 10  # the one request that tells whether the hub can be reached at all
ARROW_ROWS = 1024  # rows read per slice of an Arrow dataset: one slice per many documents, few held at once


class CorpusError(ValueError):
    """A corpus that cannot be prepared; the message is one line meant for the user."""


_replaced_bytes = 0


def _count_and_replace(error):
    global _replaced_bytes
    _replaced_bytes += error.end - error.start
    return "\ufffd", error.end  # what errors="replace" does


codecs.register_error("prepare_data.count_replace", _count_and_replace)


def decode(raw):
    """UTF-8 text of `raw` with undecodable bytes replaced by U+FFFD, and how many bytes were replaced."""
    global _replaced_bytes
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        _replaced_bytes = 0
        return raw.decode("utf-8", "prepare_data.count_replace"), _replaced_bytes


class FileCorpus:
    """One document per file, read as bytes and decoded as UTF-8 (see `decode`)."""

    def __init__(self, paths, provenance):
        self.paths, self.provenance, self.num_docs = paths, provenance, len(paths)

    def text(self, index):
        return decode(self.paths[index].read_bytes())[0]

    def documents(self, start):
        for path in self.paths[start:]:
            yield decode(path.read_bytes())


class ArrowCorpus:
    """One document per row of a `datasets.Dataset`; a missing text counts as empty."""

    def __init__(self, dataset, text_field, provenance):
        self.dataset, self.text_field = dataset.select_columns([text_field]), text_field
        self.provenance, self.num_docs = provenance, len(dataset)

    def text(self, index):
        return self.dataset[index][self.text_field] or ""

    def documents(self, start):
        for first in range(start, self.num_docs, ARROW_ROWS):
            for text in self.dataset[first:first + ARROW_ROWS][self.text_field]:
                yield text or "", 0


def stdlib_corpus():
    """Every .py file of the running Python's standard library (no site-packages), sorted by path."""
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for folder, subfolders, names in os.walk(root):  # os.walk: several times faster than Path.rglob here
        subfolders[:] = [name for name in subfolders if name not in ("site-packages", "dist-packages")]
        relative = Path(folder).relative_to(root).as_posix()
        found += [f"{relative}/{name}".removeprefix("./") for name in names if name.endswith(".py")]
    paths = [Path(root, relative) for relative in sorted(found)]
    digest, total = hashlib.sha256(), 0
    for path in paths:  # ~30 MB: cheap, and it pins the exact text a dataset was made from
        raw = path.read_bytes()
        digest.update(len(raw).to_bytes(8, "little") + raw)
        total += len(raw)
    # another version or build of Python ships other files: another corpus, which the run records must tell apart
    return FileCorpus(paths, {"dataset": "stdlib", "python": platform.python_version(),
                              "implementation": platform.python_implementation(), "build": sys.version,
                              "root": str(root),
                              "files": len(paths), "bytes": total, "sha256": digest.hexdigest(),
                              "sha256_of": "8-byte little-endian length + raw bytes of each file, in order"})


def offline_unless_hub_answers(timeout=HUB_PROBE_SECONDS):
    """Why the Hugging Face hub cannot be reached, after switching to offline mode (datasets then reads its local
    cache alone), or None when it answers or offline mode is on already. One request, through the environment's
    proxies, without retries: datasets itself retries an unreachable hub for ~25 s before failing. The switch is
    HF_HUB_OFFLINE, which datasets and huggingface_hub read when they are imported (arrow_corpus imports them
    after this; a process that imported them before keeps their retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")  # huggingface_hub's, read without importing it
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
        return None
    except urllib.error.HTTPError:  # an HTTP status is an answer
        return None
    except (OSError, ValueError) as e:  # refused, no route, no DNS, a timeout, a malformed HF_ENDPOINT
        os.environ["HF_HUB_OFFLINE"] = "1"
        return f"{endpoint}: {getattr(e, 'reason', e)}"


def arrow_corpus(load_args, text_field, provenance, num_proc=1):
    """A dataset from `datasets.load_dataset(**load_args)`: a hub id, or 'json'/'parquet' with data_files."""
    hub = load_args["path"] not in ("json", "parquet")
    unreachable = offline_unless_hub_answers() if hub else None
    import datasets  # imported here: it takes a second, and the stdlib corpus does not need it

    try:
        dataset = datasets.load_dataset(**load_args, num_proc=num_proc if num_proc > 1 else None)
    except Exception as e:  # network, authentication, parsing: whatever it is, the user needs one line
        reason = ": ".join([type(e).__name__, *str(e).strip().splitlines()[:1]])
        if hub:
            sample = f" ({load_args['name']})" if "name" in load_args else ""
            why = (f": it cannot be reached ({unreachable}) and the dataset is not in the local cache" if unreachable
                   else f" ({reason})")
            raise CorpusError(f"cannot load '{load_args['path']}'{sample} from the Hugging Face hub{why}; check "
                            f"the network, or download the data and use --dataset=files --files=...") from None
        raise CorpusError(f"cannot read {provenance['patterns']} as {load_args['path']} ({reason})") from None
    if text_field not in dataset.column_names:
        raise CorpusError(f"the dataset has no field '{text_field}' (it has {', '.join(dataset.column_names)}); "
                        f"choose one with --text_field=")
    feature = dataset.features[text_field]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise CorpusError(f"field '{text_field}' holds {feature}, not text; choose another with --text_field=")
    provenance = {**provenance, "text_field": text_field, "rows": len(dataset), "fingerprint": dataset._fingerprint}
    if hub:
        provenance.update(hub_id=load_args["path"], split=load_args["split"])
        if "name" in load_args:
            provenance.update(sample=load_args["name"])
    return ArrowCorpus(dataset, text_field, provenance)


def files_corpus(patterns, text_field, num_proc):
    patterns = [patterns] if isinstance(patterns, str) else patterns
    if not patterns or not all(isinstance(pattern, str) for pattern in patterns):
        raise CorpusError("--dataset=files needs --files=PATTERN or --files=\"['PATTERN', ...]\"")
    paths = sorted({Path(match) for pattern in patterns
                    for match in glob.glob(os.path.expanduser(pattern), recursive=True) if Path(match).is_file()})
    if not paths:
        raise CorpusError(f"no files match --files={patterns}")
    for path in paths:
        if path.suffix.lower() not in FILE_KINDS:
            raise CorpusError(f"cannot read '{path}': use .txt, .jsonl, .json or .parquet files")
    kinds = {FILE_KINDS[path.suffix.lower()] for path in paths}
    if len(kinds) > 1:
        raise CorpusError(f"--files matches {' and '.join(sorted(kinds))} files: prepare one kind at a time")
    provenance = {"dataset": "files", "patterns": patterns, "files": len(paths),
                  "bytes": sum(path.stat().st_size for path in paths)}
    if not provenance["bytes"]:
        raise CorpusError(f"the corpus is empty: the {len(paths)} file(s) matching --files={patterns} are empty")
    if kinds == {"text"}:
        return FileCorpus(paths, provenance)
    load_args = dict(path=kinds.pop(), data_files=[str(path) for path in paths], split="train")
    return arrow_corpus(load_args, text_field, provenance, min(num_proc, len(paths)))  # datasets: a process a file


def check_sample(dataset, sample):
    """The sample (a FineWeb's config) that --sample names, DEFAULT_SAMPLE when not given; given for any other
    dataset, an error."""
    if dataset not in SAMPLED_DATASETS:
        if sample is not None:
            raise CorpusError(f"--sample is for {' and '.join(SAMPLED_DATASETS)}, not --dataset={dataset}")
        return None
    sample = DEFAULT_SAMPLE if sample is None else sample
    if not isinstance(sample, str) or not SAMPLE_NAME.fullmatch(sample):
        raise CorpusError(f"--sample={sample}: {dataset} has the samples sample-10BT, sample-100BT and sample-350BT, "
                          f"the dumps CC-MAIN-YYYY-WW, and default (all of it)")
    return sample


def default_out_dir(dataset, sample, tokenizer):
    """prepare_data.py's out_dir when none is given: data/<dataset>-<tokenizer>, data/<dataset>-<sample>-<tokenizer>
    for a FineWeb."""
    return Path("data", f"{dataset}-{sample}-{tokenizer}" if dataset in SAMPLED_DATASETS else f"{dataset}-{tokenizer}")


def settings_of_name(data_dir):
    """(dataset, sample, tokenizer) of the prepare_data.py command whose default out_dir has data_dir's name
    (data/stdlib-bytes, data/slimpajama-gpt2, data/fineweb-sample-100BT-gpt2), or None for any other name."""
    name = Path(data_dir).name
    dataset = max((d for d in ("stdlib", "files", *HUB_DATASETS) if name.startswith(f"{d}-")), key=len, default=None)
    sample, _, tokenizer = name[len(dataset or "") + 1:].rpartition("-")
    if dataset is None or not re.fullmatch(r"\w+", tokenizer) or (
            SAMPLE_NAME.fullmatch(sample) is None if dataset in SAMPLED_DATASETS else sample):
        return None
    return dataset, sample or None, tokenizer


def prepare_command(data_dir):
    """The prepare_data.py command that writes data_dir (settings_of_name; --out_dir when the folder is not the
    default one); for any other name, the command with the datasets to choose from and --out_dir."""
    settings = settings_of_name(data_dir)
    if settings is None:
        return f"python prepare_data.py --dataset=<{'|'.join(('stdlib', 'files', *HUB_DATASETS))}> --out_dir={data_dir}"
    dataset, sample, tokenizer = settings
    words = ["python prepare_data.py", f"--dataset={dataset}"]
    words += [f"--sample={sample}"] if sample else []
    words += ["--files=PATTERN"] if dataset == "files" else []
    words += [f"--tokenizer={tokenizer}"] if tokenizer != "gpt2" else []  # gpt2: prepare_data.py's default
    if os.path.normpath(data_dir) != str(default_out_dir(*settings)):
        words.append(f"--out_dir={data_dir}")
    return " ".join(words)


def hub_load_args(config):
    """load_dataset's arguments for config['dataset'], a key of HUB_DATASETS: a FineWeb's sample is its config."""
    load_args = dict(HUB_DATASETS[config["dataset"]])
    if config["dataset"] in SAMPLED_DATASETS:
        load_args["name"] = check_sample(config["dataset"], config["sample"])
    return load_args


def open_corpus(config):
    """The corpus config['dataset'] names, checked to have at least two documents to split."""
    if config["dataset"] == "stdlib":
        corpus = stdlib_corpus()
    elif config["dataset"] == "files":
        corpus = files_corpus(config["files"], config["text_field"], config["num_proc"])
    else:
        corpus = arrow_corpus(hub_load_args(config), config["text_field"], {"dataset": config["dataset"]},
                              config["num_proc"])
    if corpus.num_docs == 0:
        raise CorpusError(f"the corpus is empty ({config['dataset']}: no documents)")
    if corpus.num_docs == 1:
        raise CorpusError("the corpus is a single document, and the split is by document: give at least two "
                        "(each .txt file is one document)")
    return corpus
