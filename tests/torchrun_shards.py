"""Each process of an FSDP2 run saves its shards of a tiny model and its AdamW state (checkpoint.save), then reads
them back as train.py does (checkpoint.read_tensors in rundir.run_layout), for tests/test_checkpoint.py. Every
process writes the bytes DCP planned for it to read, the bytes of the whole checkpoint, and whether
it got back exactly the shards it saved, in OUT_DIR/report_<rank>.json.

    torchrun --standalone --nproc_per_node=3 tests/torchrun_shards.py OUT_DIR
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.distributed.checkpoint.state_dict import get_model_state_dict  # noqa: E402

from lab import checkpoint, parallel, rundir  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

procs = parallel.Processes.from_env()
parallel.init(procs, torch.device("cpu"), 120)
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=320, block_size=32, n_layer=2, n_head=2, n_embd=96, ffw_size=192))
parallel.wrap(model, procs, torch.device("cpu"), compile=False, parallelism="fsdp")
optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3)
model(torch.randint(0, 320, (2, 32)), torch.randint(0, 320, (2, 32)))[1].backward()
optimizer.step()
local = lambda t: (t.to_local() if hasattr(t, "to_local") else t).clone()
saved = {k: local(v) for k, v in get_model_state_dict(model).items()}
path = checkpoint.save(dict(model=get_model_state_dict(model), optimizer=optimizer.state_dict(), step=1),
                       sys.argv[1], 1)
with torch.no_grad():
    for p in model.parameters():
        p.zero_()
state = checkpoint.read_tensors(checkpoint.load(path, tensors=False), path, rundir.run_layout(model, optimizer))
same = all(torch.equal(local(state["model"][k]), v) for k, v in saved.items())
total = sum(f.stat().st_size for f in Path(path).glob("*.distcp"))
report = dict(rank=procs.rank, read=checkpoint.SafeReader.bytes_read, total=total, same=same)
(Path(sys.argv[1]) / f"report_{procs.rank}.json").write_text(json.dumps(report))  # not stdout: lines interleave
parallel.shutdown(True)
parallel.exit_at_once(0)  # as train.py's processes do: an FSDP2 group's threads can abort the interpreter's teardown
