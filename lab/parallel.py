"""
Several processes (torchrun, or any launcher that sets RANK, LOCAL_RANK, WORLD_SIZE and MASTER_ADDR/PORT): the
process group (a new one in each round of torchrun's restarts), this process's device, DDP or FSDP2 and
torch.compile in the order PyTorch recommends, the state of a sharded model gathered for weight files and cut from
full tensors on loading, and the few collectives the training loop needs, each with a bounded wait and, when it
fails, one line that names it. train.py's loop calls these and nothing of torch.distributed itself, as torchtitan
keeps its parallelisms apart from its loop.

    procs = Processes.from_env()
    device = setup_device("auto", procs)                # this process's GPU (LOCAL_RANK), checked
    owned = init(procs, device, timeout_s=600)          # False when not distributed, or a caller already did it
    wrapped = wrap(model, procs, device, compile=True)  # DDP: wrapped.train for steps, wrapped.eval for evaluation
    # or FSDP2, sharded, in bf16 with fp32 master weights, recomputing each block in backward:
    wrapped = wrap(model, procs, device, True, "fsdp", torch.bfloat16, activation_checkpointing=True)
    settle_buckets(wrapped, inputs, targets)            # DDP: its final gradient buckets before the first step
    stop = StopAgreement(procs)                         # each step: stop.step(got_signal) -> stop now?
    shutdown(owned)
"""

import datetime
import inspect
import os
import signal
import sys
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils._pytree import tree_map

from lab import rendezvous
from lab.config import ConfigError, fail


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the processes of a run: launched by torchrun or alone."""
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    distributed: bool = False  # under a launcher (RANK set), even with one process
    local_world_size: int = 1  # the processes on this node (torchrun's LOCAL_WORLD_SIZE)

    @classmethod
    def from_env(cls):
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                   "RANK" in env, int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", 1))))

    @property
    def master(self):
        return self.rank == 0


def device_for(name, local_rank):
    """The device a `device` setting means for the process of LOCAL_RANK `local_rank`. 'auto' is cuda, then mps,
    then cpu. A bare 'cuda' is this process's GPU, cuda:LOCAL_RANK: under torchrun each process of a node has its
    own, where torch.device('cuda') would put them all on cuda:0. 'cuda:N' is taken as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)


def check_device(name, device, processes_per_node=1, gpus=None):
    """A ConfigError in one line when `device` (what setting `name` means for this process) is not there: CUDA
    asked for where there is none, more processes on this node than GPUs (each takes cuda:LOCAL_RANK), a cuda:N
    past the last GPU, MPS where there is none. Every process of a node finds the same: each says it and stops (unless
    torchrun, which ends the others once one has failed, stops it first)."""
    if device.type == "cuda":
        gpus = torch.cuda.device_count() if gpus is None else gpus
        if gpus == 0:
            why = "this PyTorch is a CPU build" if torch.version.cuda is None else "no GPU is visible"
            raise ConfigError(f"device={name}: CUDA is not available here ({why}); pass --device=cpu")
        if processes_per_node > gpus and name in ("auto", "cuda"):
            raise ConfigError(f"{processes_per_node} processes on this node but {gpus} GPU(s) visible, and each process "
                              f"takes a GPU of its own: run torchrun --nproc_per_node={gpus} (or fewer), or pass "
                              f"--device=cpu")
        if device.index >= gpus:
            raise ConfigError(f"device={name}: this machine has {gpus} GPU(s), cuda:0 to cuda:{gpus - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name}: MPS is not available here; pass --device=cpu")


def setup_device(name, procs=Processes()):
    """This process's device (device_for), checked (check_device) and set up for speed: on CUDA the current device
    and TF32 matmuls; on a CPU subnormal floats flushed to zero (tiny gradients and Adam's second moments make x86
    CPUs ~100x slower otherwise)."""
    try:
        device = device_for(name, procs.local_rank)
    except RuntimeError:  # torch.device's own error for a string it does not know
        raise ConfigError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps") from None
    check_device(name, device, procs.local_world_size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    return device


def init(procs, device, timeout_s):
    """Join the process group; True if this call created it (and shutdown should end it).

    On GPUs the group has two backends: NCCL for CUDA tensors (gradients, losses) and gloo for CPU tensors, so
    that the stop flag is agreed on the host without waiting for the GPU. Every collective gives up after
    timeout_s seconds: a process that died or hangs makes the others fail, not wait forever. Under torchrun the
    group keeps its keys in torchrun's store under a name of this round of its restarts (lab/rendezvous.py).
    """
    if not procs.distributed or dist.is_initialized():
        return False
    backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        dist.init_process_group(backend, store=rendezvous.round_store(procs, timeout), rank=procs.rank,
                                world_size=procs.world_size, timeout=timeout)
    else:  # a launcher without an agent (srun, by hand): rank 0 hosts the store at MASTER_ADDR:MASTER_PORT
        dist.init_process_group(backend, timeout=timeout)
    return True


def shutdown(owned):
    """Wait for every process, then end the group if this process created it. The wait also ends each run of
    train.py in a group that a caller made (sweep.py, branch.py): no process goes on to the next run, which may start
    from this one's last checkpoint, before rank 0 has finished writing it."""
    if dist.is_initialized():
        dist.barrier()
        if owned:
            dist.destroy_process_group()


# PyTorch 2.13 renamed broadcast_buffers to forward_sync_buffers (requirements.txt allows older versions)
NO_BUFFER_SYNC = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                  else {"broadcast_buffers": False})


@dataclass
class Wrapped:
    train: torch.nn.Module  # runs the training forward and backward (DDP, compiled)
    eval: torch.nn.Module  # without DDP its forward runs no collective; with FSDP it all-gathers (see wrap)
    ddp: DDP = None
    sharded: bool = False  # FSDP: every process must run every forward, evaluations too

    def gradient_sync(self, last_micro_step):
        """Average gradients across processes on the last micro-step of an optimizer step only."""
        if self.sharded:
            return _fsdp_gradient_sync(self.train, last_micro_step)
        return self.ddp.no_sync() if self.ddp is not None and not last_micro_step else nullcontext()

    def release(self):
        """Drop DDP before the process group ends: gloo aborts at exit otherwise."""
        self.train = self.eval = self.ddp = None


@contextmanager
def _fsdp_gradient_sync(model, enabled):
    model.set_requires_gradient_sync(enabled)  # reduce-scatter the gradients only on the last micro-step
    yield


def shard(model, compile, dtype, compile_mode=None):
    """FSDP2: each block, then the root (embedding, final norm, head), sharded over the processes with
    fully_shard. Parameters stay fp32 shards (the master weights); each block is all-gathered in `dtype` for its
    forward and backward, and gradients are reduce-scattered in fp32. Each block is compiled before it is
    sharded, as PyTorch recommends for FSDP2: the all-gathers and reduce-scatters stay outside the compiled
    graphs, where FSDP overlaps them with the neighbouring blocks' compute."""
    policy = MixedPrecisionPolicy(param_dtype=None if dtype == torch.float32 else dtype, reduce_dtype=torch.float32)
    for block in model.blocks:
        if compile:
            block.compile(mode=compile_mode)
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return Wrapped(model, model, sharded=True)


def check_compiler(device):
    """On a CPU, torch.compile's inductor writes C++ and builds it at the first step: without a working compiler
    that step fails with a long traceback, so say it in one line before anything runs. (GPUs need none: Triton.)"""
    if device.type != "cpu":
        return
    from torch._inductor import cpp_builder, exc
    try:
        cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler as e:
        raise ConfigError(f"compile=True on a CPU needs a C++ compiler for inductor's code ({e}): install one "
                          "(g++ or clang++, or name it with CXX), or run with --compile=False") from None


def wrap(model, procs, device, compile, parallelism="ddp", dtype=torch.float32, activation_checkpointing=False,
         compile_mode="default"):
    """parallelism='fsdp' under torchrun: shard (above). Otherwise DDP first, then torch.compile, as PyTorch
    recommends: compiling the DDP module lets Dynamo's DDPOptimizer split the graph at DDP's gradient buckets, so
    each bucket's all-reduce overlaps the backward of the layers before it. Compiled first and wrapped after, the backward is one opaque function and every all-reduce waits
    for its end.

    Evaluation uses the model without DDP: DDP's forward may run collectives (buffer broadcasts), and when the
    validation windows do not split evenly, a process with fewer batches would wait in the loss all-reduce while
    the others wait in a forward. The rotary tables are buffers computed from the config, the same on every
    process, so DDP broadcasts no buffers at all. gradient_as_bucket_view: the gradients live in DDP's buckets,
    not in a second copy.
    """
    model.activation_checkpointing = activation_checkpointing
    mode = None if compile_mode == "default" else compile_mode  # torch.compile's modes (lab/settings.py)
    if compile:
        check_compiler(device)
    if procs.distributed and parallelism == "fsdp":
        return shard(model, compile, dtype, mode)
    train_model = model
    ddp = None
    if procs.distributed:
        ddp = train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                                gradient_as_bucket_view=True, **NO_BUFFER_SYNC)
    eval_model = model
    if compile:
        train_model = torch.compile(train_model, mode=mode)
        # one process: the same compiled module serves both (it compiles a no-grad graph for evaluation)
        eval_model = torch.compile(model, mode=mode) if ddp is not None else train_model
    return Wrapped(train_model, eval_model, ddp)


def settle_buckets(wrapped, inputs, targets):
    """Under DDP, one backward of `inputs` (one sequence is enough) whose gradients are thrown away, so that DDP's
    gradient buckets are final before the first step of every start, fresh or resumed.

    Why: DDP reduces the gradients of its first backward in one bucket laid out in the parameters' order, and those
    of every later backward in buckets rebuilt in the order that backward produced them. A ring all-reduce (gloo's,
    NCCL's) adds the processes' values of an element in an order set by the element's place in its bucket; with 3
    processes or more that order shows in the last bit ((a + b) + c is not a + (b + c)). The first step after a
    resume was reduced in the first layout where the run it continues had used the rebuilt one: a resumed run, or
    one restarted by torchrun, drifted from the run it continues by a rounding error from there on (measured:
    1e-7 of a loss a few steps later, with 3 processes on the CPU). With 1 or 2 processes the order never mattered."""
    if wrapped.ddp is None:
        return
    wrapped.ddp(inputs, targets)[1].backward()
    wrapped.ddp.module.zero_grad(set_to_none=True)


def gathered(state):
    """`state` (nested dicts and lists) with every FSDP shard (DTensor) replaced by its full tensor on the CPU;
    other values as they are. Every process must call it: each full tensor is an all-gather. Tensors that share
    storage (the tied embedding and head) stay one tensor."""
    full = {}

    def gather_one(value):
        if not isinstance(value, DTensor):
            return value
        key = (value.to_local().data_ptr(), tuple(value.shape))
        if key not in full:
            full[key] = value.full_tensor().cpu()
        return full[key]
    return tree_map(gather_one, state)


def shard_as(full, like):
    """A full tensor, which every process holds, cut into this process's shard of `like` when `like` is an FSDP
    shard (DTensor), and nothing is sent; else `full` as it is (old single-file checkpoints, checkpoint.py)."""
    if not isinstance(like, DTensor):
        return full
    return distribute_tensor(full.to(like.to_local().device), like.device_mesh, like.placements, src_data_rank=None)


def all_finite(tensors):
    """Whether every value of `tensors` is finite, on every process (each checks its own FSDP shards)."""
    local = all(torch.isfinite(t.to_local() if isinstance(t, DTensor) else t).all() for t in tensors)
    if not dist.is_initialized():
        return bool(local)
    flag = torch.tensor([float(local)])
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)  # a CPU tensor: the gloo side of the group
    return flag.item() > 0


def sum_over_processes(tensor):
    """In place: the sum over all processes (a no-op alone)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def mean_over_processes(tensor):
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.AVG)
    return tensor


def from_master(value):
    """Rank 0's `value` on every process: what rank 0 decided, the others follow."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def decided_by_master(decide, procs):
    """decide() on rank 0 alone, its result (or its error for the user: a ConfigError, CheckpointError, ... of
    the same class and message) on every process: rank 0 reads the folders and decides, the others follow, so
    that no two processes skip, resume or start a run differently."""
    try:
        decision = ("ok", decide()) if procs.master else None
    except ValueError as e:  # the scripts' one-line errors are ValueErrors (config.ConfigError's family)
        decision = (type(e), str(e))
    kind, value = from_master(decision)
    if kind != "ok":
        raise agreed(kind(value))
    return value


def agreed(error):
    """`error`, marked as raised by every process alike (after a collective): leave() then waits for the others
    to print it too before it exits, for torchrun ends the job's other processes as soon as one has exited."""
    error.agreed = True
    return error


def gather(value):
    """Every process's `value`, in rank order, on every process."""
    if not dist.is_initialized():
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def barrier():
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def stop_signals():
    """A list that SIGTERM and Ctrl-C (SIGINT) append to while the block runs, instead of ending the process: the
    loop stops after the step in flight (StopAgreement), with a checkpoint. The handlers before are restored."""
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StopAgreement:
    """Every process must stop after the same step, whichever of them got SIGTERM. Each step starts an
    asynchronous all-reduce (max) of this process's flag, on a CPU tensor, and reads the one started a step
    earlier: the processes agree at every step, one step after the signal, with no wait for the GPU in the
    step and no wait for the network beyond a step's time."""

    def __init__(self, procs):
        self.distributed = procs.distributed
        self.pending = None

    def step(self, signalled):
        if not self.distributed:
            return signalled
        agreed = self.finish()
        flag = torch.tensor([float(signalled)])
        self.pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, async_op=True), flag)
        return agreed

    def finish(self):
        """The flag of the last step started (False if none): every all-reduce begun must end before the group."""
        if self.pending is None:
            return False
        work, flag = self.pending
        self.pending = None
        work.wait()
        return flag.item() > 0


def collective_failure(error, procs):
    """One line for `error` if it is a collective that failed under torchrun (a peer died, or a wait ran past
    the timeout), else None. Such errors are plain RuntimeErrors from gloo or NCCL, not a type of their own."""
    text = str(error).strip()
    if not procs.distributed or not isinstance(error, RuntimeError):
        return None
    if not (isinstance(error, dist.DistError) or "gloo" in text or "NCCL" in text):
        return None
    first = text.splitlines()[0] if text else type(error).__name__
    first = first.split("] ", 1)[-1] if first.startswith("[") else first  # drop gloo's source-file prefix
    which = failed_collective(error.__traceback__)
    return (f"rank {procs.rank}: a collective with the other processes failed{f': {which}' if which else ''} "
            f"({first}); another process failed or hung: its own error says why")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def failed_collective(trace):
    """'<collective> in <file>:<function>[, called from <file>:<function>]' for the traceback of a failed
    collective: the torch.distributed call that this repository's code made (all_reduce, barrier,
    broadcast_object_list, ..., DCP's save), or the backward pass, whose gradient all-reduce (DDP) or reduce-scatter
    (FSDP) runs inside it, or a wait (for an asynchronous collective started earlier); the repository's function
    that waited, and, when that is one of this module's, the one that called it. None without one."""
    frames = [(frame.f_code.co_filename, frame.f_code.co_qualname) for frame, _ in traceback.walk_tb(trace)]
    ours = [i for i, (path, _) in enumerate(frames)
            if path.startswith(REPO + os.sep) and "-packages" + os.sep not in path]  # not a virtualenv inside it
    if not ours:
        return None
    named = lambda i: f"{os.path.relpath(frames[i][0], REPO)}:{frames[i][1]}"
    callers = [i for i in ours if frames[i][0] != os.path.abspath(__file__)]
    where = named(ours[-1]) + (f", called from {named(callers[-1])}" if callers and callers[-1] != ours[-1] else "")
    below = frames[ours[-1] + 1:]
    # the first public function of torch.distributed that the code called (not its logging wrappers)
    called = [(path, function) for path, function in below
              if f"torch{os.sep}distributed{os.sep}" in path and "<locals>" not in function]
    if called:
        path, function = called[0]
        what = f"torch.distributed.{'checkpoint.' if f'{os.sep}checkpoint{os.sep}' in path else ''}{function}"
    elif any(function == "backward" for _, function in below):
        what = "the backward pass's gradient collective (DDP's all-reduce, FSDP's reduce-scatter)"
    else:  # the wait for an asynchronous collective, or for the other processes in this repository's code
        what = "a wait for the other processes"
    return f"{what} in {where}"


def leave(line, agreed=False):
    """config.fail, but a process still in a process group exits at once: tearing the group down at exit, with a
    collective pending or a peer gone, can abort the process (SIGABRT) instead of exiting 1. An `agreed` error
    (every process raised it) is printed by every process before any exits: they meet at a barrier first."""
    if not dist.is_initialized():
        fail(line)
    print(f"error: {line}", file=sys.stderr, flush=True)
    if agreed:
        try:
            dist.barrier()
        except RuntimeError:  # a process died meanwhile: its own error says why, and this one has said its line
            pass
    exit_at_once(1)


def exit_at_once(code):
    """End a process of a torchrun job without the interpreter's teardown, stdout and stderr flushed. Called once
    its work is done (the group shut down: files closed, every process past the last barrier) or failed (leave).
    Why: PyTorch (2.13) keeps a gloo group alive past destroy_process_group once DTensors exist (FSDP2 makes
    them), and its worker threads, still running while Python tears the interpreter down, abort the process now and
    then: "terminate called without an active exception", SIGABRT, a finished run reported as failed (seen once in
    a few runs of the test suite under load)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
