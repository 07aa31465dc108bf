"""
The store of a round of torchrun's processes: torchrun's own store, under a name that no earlier round of its
restarts (--max-restarts) used, so that a restarted job finds its processes and not the dead ones of the round
before. lab/parallel.init makes the process group in it when torchrun's agent hosts the store.

    store = round_store(procs, datetime.timedelta(seconds=600))   # rank 0 names the round, the others learn it
    dist.init_process_group("gloo", store=store, rank=procs.rank, world_size=procs.world_size)
"""

import datetime
import os
import socket
import time
import uuid

import torch.distributed as dist

ROUND_KEY = "lab/round"  # in torchrun's store: where this round's rank 0 says which round it is
_round_witness = []  # rank 0's witness store of its round, alive as long as the process


def round_store(procs, timeout):
    """The store of this round of torchrun's workers: torchrun's own store, under a name that no earlier round used.

    Why: torchrun (PyTorch 2.13) gives every round of workers the same store, its agent's, and keeps it across the
    restarts of --max-restarts. The keys by which the processes of the killed round found each other were still
    there, so a restarted process read a dead process's address and gave up ('Gloo connectFullMesh failed ...
    Connection refused'); the whole job failed instead of continuing. TORCHELASTIC_RESTART_COUNT cannot name the
    round: each node counts its own restarts. So rank 0 names the round (a random token) and serves the name from
    a small store of its own, the witness; the others read the witness's address from torchrun's store and take
    the name only from a witness that answers. An address left by an earlier round answers nothing: torchrun ends
    every process of a round before it starts the next, on every node."""
    agent = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), timeout=timeout)
    if procs.master:
        witness = dist.TCPStore(os.environ["MASTER_ADDR"], 0, is_master=True, timeout=timeout, wait_for_workers=False)
        token = uuid.uuid4().hex
        witness.set(ROUND_KEY, token)
        _round_witness.append(witness)
        agent.set(ROUND_KEY, f"{os.environ['MASTER_ADDR']} {witness.port} {token}")
    else:
        token = round_token(agent, timeout)
    return dist.PrefixStore(f"{ROUND_KEY}/{token}", agent)


def round_token(agent, timeout, probe_s=5):
    """The name of this round, from the witness that torchrun's store names once one answers with it (see
    round_store); every probe_s seconds at most, until `timeout`."""
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        try:
            host, port, token = agent.get(ROUND_KEY).decode().split()
            # a plain connection first: a witness that is gone refuses it at once, without c10d's logged retries
            socket.create_connection((host, int(port)), timeout=probe_s).close()
            witness = dist.TCPStore(host, int(port), timeout=datetime.timedelta(seconds=probe_s))
            if witness.get(ROUND_KEY).decode() == token:
                return token
        except (OSError, dist.DistError):
            pass  # not written yet, or by an earlier round: this round's rank 0 has not written its own yet
        if time.monotonic() > deadline:
            raise dist.DistStoreError(f"rank 0 of this round of torchrun's processes did not name it within "
                                      f"{timeout.total_seconds():g} s")
        time.sleep(0.1)
