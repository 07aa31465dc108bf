"""Shared test set-up: the repository and this folder on sys.path, offline tokenizer files, the tiny dataset, and
the gpu mark (tests of the GPU path run where CUDA is, and are skipped with the reason elsewhere)."""
import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

# tiktoken cannot download the GPT-2 files here; the workspace ships them beside the repository.
_cache = TESTS.parent.parent / "shared" / "tiktoken_cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _cache.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache)

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import module_source, write_bytes_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """~300 KB of real Python source from the standard library, as a bytes-tokenized dataset."""
    text = "".join(module_source(name) for name in ("argparse", "dataclasses", "functools", "pathlib", "typing"))
    return write_bytes_dataset(tmp_path_factory.mktemp("data") / "tiny-bytes", text)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="a test of the GPU path: CUDA is not available here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
