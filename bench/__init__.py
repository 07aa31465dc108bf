"""
The benchmarks: each prints its figures and asserts nothing (the tests check that they run and that their
arithmetic holds). Run them from the repository's root, as modules:

    python -m bench.speed                  # training and evaluation tokens/s, MFU, where a step's time goes
    python -m bench.data                   # prepare_data.py's throughput and peak memory
    torchrun --standalone --nproc_per_node=3 -m bench.checkpoint   # checkpoint save/resume: DCP folders vs one file
    python -m bench.nanogpt --nanogpt=PATH # our train.py against karpathy/nanoGPT's at the same shape
    python -m bench.recipes                # predict.py's validation protocol under each fit recipe compared
    python -m bench.law_limit              # the protocol's cells beside the law fitted in sample: the law's own limit
"""
