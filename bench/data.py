"""
Benchmark prepare_data.py on the stdlib corpus: end-to-end throughput next to bare tiktoken, and peak memory.

    python -m bench.data                                      # ~1 minute on 2 cores
    python -m bench.data --repeat=10 --tokenizer=gpt2 --num_proc=2

Prints: bare `tiktoken.encode_ordinary_batch` over the same documents (1 thread and tiktoken's default 8, the
better one is the reference; each timing is the best of `trials`, as other load on the machine only slows it), the whole `prepare_data.py` command (process start, corpus hash, split, tokenize,
write) in MB/s and tokens/s, and the peak RSS of that command (largest of its processes) on the corpus and on
the corpus `repeat` times over (a files corpus of links to the same files), which should be about the same; then
what a start spends checking the prepared folder (lab/shards.py): with meta.json's record (shard sizes and sampled
blocks) and without it (the whole folder read: sha256 and the largest token).
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab import shards
from lab.config import ConfigError, Setting, fail, parse_args
from lab.corpora import CorpusError, stdlib_corpus
from lab.data import Dataset
from prepare_data import Tokenizer

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(
    repeat=Setting(10, "the corpus this many times over, for the memory on a larger corpus", ">= 1"),
    tokenizer=Setting("gpt2", "prepare_data.py's tokenizer"),
    num_proc=Setting(2, "prepare_data.py's tokenizer processes", ">= 1"),
    trials=Setting(3, "each timing is the best of this many (other load only slows)", ">= 1"),
)


class BenchError(RuntimeError):
    """A prepare_data.py run that failed; the message is its last line of stderr."""


def peak_rss_mb_of(command):
    """Run `command` in a fresh child and return (seconds, peak RSS in MB of it or any of its processes)."""
    # The command's stderr passes through the probe to us, so that a failure can be reported by its own words.
    probe = ("import resource, subprocess, sys, time; start = time.time(); "
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(time.time() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
             "sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise BenchError(f"prepare_data.py failed: {last.strip().removeprefix('error: ')}")
    seconds, rss = result.stdout.split()
    return float(seconds), float(rss)


def bench(config):
    encoding = Tokenizer(config["tokenizer"]).encoding  # None for bytes: no bare tiktoken reference
    corpus = stdlib_corpus()
    texts = [text for text, _ in corpus.documents(0)]
    megabytes = corpus.provenance["bytes"] / 1e6
    print(f"stdlib corpus: {corpus.num_docs} files, {megabytes:.1f} MB, Python {corpus.provenance['python']}")

    with tempfile.TemporaryDirectory() as tmp:
        for copy in range(config["repeat"]):  # the same files again and again, as links: 10x the text, no disk
            for index, path in enumerate(corpus.paths):
                link = Path(tmp, "repeat", f"{copy:03d}", f"{index:05d}.txt")
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
        command = [sys.executable, str(REPO / "prepare_data.py"), f"--tokenizer={config['tokenizer']}",
                   f"--num_proc={config['num_proc']}", f"--out_dir={tmp}/out", "--force"]
        bare = {1: float("inf"), 8: float("inf")}  # seconds, best of trials
        whole, whole_rss = float("inf"), 0
        for _ in range(config["trials"]):  # interleaved, so that other load hits both alike
            if encoding is not None:
                for threads in bare:
                    start = time.time()
                    encoding.encode_ordinary_batch(texts, num_threads=threads)
                    bare[threads] = min(bare[threads], time.time() - start)
            seconds, rss = peak_rss_mb_of([*command, "--dataset=stdlib"])
            whole, whole_rss = min(whole, seconds), max(whole_rss, rss)
        tokens = sum(json.loads(Path(tmp, "out", "meta.json").read_text())["tokens"].values())
        best = 0  # bare tiktoken MB/s, the reference
        if encoding is not None:
            for threads, seconds in bare.items():
                print(f"bare tiktoken encode_ordinary_batch, num_threads={threads}: {megabytes / seconds:6.2f} MB/s "
                      f"{tokens / seconds / 1e6:6.2f} M tokens/s")
                best = max(best, megabytes / seconds)
        ratio = f", {megabytes / whole / best:.2f}x bare tiktoken" if best else ""
        print(f"prepare_data.py stdlib: {megabytes / whole:6.2f} MB/s {tokens / whole / 1e6:6.2f} M tokens/s "
              f"({whole:.1f} s end to end{ratio}), peak RSS {whole_rss:.0f} MB")
        seconds, rss = peak_rss_mb_of([*command, "--dataset=files", f"--files={tmp}/repeat/*/*.txt"])
        print(f"prepare_data.py files, stdlib x{config['repeat']}: {megabytes * config['repeat'] / seconds:6.2f} MB/s "
              f"({seconds:.1f} s end to end), peak RSS {rss:.0f} MB")
        print_check_times(Path(tmp, "out"), config["trials"])


def print_check_times(folder, trials):
    """Best of `trials`: a start's checks of a folder with its record (Dataset), and the whole-folder read that a
    folder without one costs (shards.scan)."""
    def best(work):
        seconds = float("inf")
        for _ in range(trials):
            start = time.perf_counter()
            work()
            seconds = min(seconds, time.perf_counter() - start)
        return seconds
    data = Dataset(folder)
    megabytes = 2 * (data.train_tokens + data.val_tokens) / 1e6
    recorded, whole = best(lambda: Dataset(folder)), best(lambda: shards.scan(data.train, data.val))
    print(f"a start's data checks, {megabytes:.1f} MB of shards: {recorded * 1e3:.1f} ms with meta.json's record "
          f"(sizes, sampled blocks); {whole * 1e3:.0f} ms without it, the whole read ({megabytes / 1e3 / whole:.2f} "
          f"GB/s: sha256 and the largest token)")


def main():
    try:
        bench(parse_args(sys.argv[1:], SETTINGS))
    except (ConfigError, CorpusError, BenchError) as e:
        fail(str(e))


if __name__ == "__main__":
    main()
