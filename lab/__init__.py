"""
The library of the scripts at the repository's root: what they import rather than run.

    settings   every training setting, its default and its checks; the model a config names; micro-batching
    config     the command line: defaults, config files, --key=value, --help
    data       batches from the token shards, the validation windows;   corpora: the documents prepare_data.py reads
    shards     a data folder checked before a run reads it: its layout, vocabulary and fingerprint
    parallel   processes, devices, DDP/FSDP2 and torch.compile, the collectives train.py needs
    precision  dtype=auto;   perf: peak FLOP/s for MFU;   kernels: the GPU speed levers' kernels
    plan       what a run will cost (--dry_run=True), the memory estimate, micro_batch_size=auto
    rundir     a run's folder: config.json, what a resume or branch may change, the checkpoint it starts from
    checkpoint the checkpoint format (DCP folders), loading, pruning, conversion
    evaluation the validation loss;   tracking: Weights & Biases
    suites     the paper's experiments;   runs, summary, scaling: what the results say
    laws       predict.py's loss laws;   streams: the runs they are fitted to, their seed noise;   validation: the band

Modules here may import model.py and schedules.py, the paper's two definitions at the root (they import nothing of
ours), and never an entry point (train.py, sweep.py, ...): tests/test_layout.py checks it.
"""
