"""lab/rendezvous.py: a process of a restarted round of torchrun's processes takes the name of its own round, not
that of the round before, whose processes are gone."""
import datetime
import threading
import time

import pytest
import torch.distributed as dist

from helpers import free_port
from lab import rendezvous


def test_a_restarted_process_waits_for_the_name_of_its_own_round():
    """round_token: torchrun's store still names the witness of a round whose processes are gone; a process of the
    next round waits until this round's rank 0 names its own, and takes that. Without one it gives up in one line."""
    timeout = datetime.timedelta(seconds=20)
    agent = dist.TCPStore("127.0.0.1", 0, is_master=True, timeout=timeout, wait_for_workers=False)
    agent.set(rendezvous.ROUND_KEY, f"127.0.0.1 {free_port()} 0ld")  # the killed round's witness: nothing listens

    def rank_0_of_the_next_round():
        time.sleep(1)
        witness = dist.TCPStore("127.0.0.1", 0, is_master=True, timeout=timeout, wait_for_workers=False)
        witness.set(rendezvous.ROUND_KEY, "n3w")
        agent.set(rendezvous.ROUND_KEY, f"127.0.0.1 {witness.port} n3w")
        time.sleep(3)  # it answers while the others read
    rank_0 = threading.Thread(target=rank_0_of_the_next_round)
    rank_0.start()
    try:
        assert rendezvous.round_token(agent, timeout) == "n3w"
    finally:
        rank_0.join()
    agent.set(rendezvous.ROUND_KEY, f"127.0.0.1 {free_port()} 0ld")
    with pytest.raises(dist.DistStoreError, match=r"^rank 0 of this round of torchrun's processes did not name it "
                                                  r"within 1 s$"):
        rendezvous.round_token(agent, datetime.timedelta(seconds=1))
