"""lab/parallel.py and train.py under several processes (gloo on the CPU): evaluation with a process that gets no
batch, MFU per device, stop signals agreed at every step, a failing or hanging process, torchrun's restarts after a
killed or hung process, a node that cannot see the checkpoint, DDP then compile, the device of each process."""
import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import torch
import torch.distributed as dist

import train
from helpers import ENV, REPO, TINY_MODEL, close, free_port, metrics, torchrun
from lab.config import ConfigError
from lab import checkpoint, parallel

FAULT = str(REPO / "tests" / "torchrun_fault.py")


def launch_by_hand(nproc, args, env):
    """The processes of a run started without torchrun (as srun or a hand-written launcher would): nobody kills
    the others when one fails, so only train.py's own bounded waits can end them."""
    port = free_port()
    return [subprocess.Popen([sys.executable, FAULT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)))
            for rank in range(nproc)]


def test_three_processes_evaluate_an_uneven_split_like_one_process(tmp_path, tiny_data):
    """32 validation windows in batches of 16 give 2 batches for 3 processes: rank 2 evaluates nothing. It used to
    wait in the all-reduce while the others waited in DDP's forward, forever. Now every val_loss equals one
    process's, and so do the training losses with micro-batches of 2 out of 4 sequences per process; MFU is per
    device."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--batch_size=12", "--max_steps=6", "--log_interval=2",
              "--eval_interval=3", "--dtype=float32", "--eval_tokens=2048", "--eval_batch_size=16"]
    single = tmp_path / "single"
    train.main([*common, f"--out_dir={single}"])
    result = torchrun(3, *common, f"--out_dir={tmp_path / 'ddp'}", "--micro_batch_size=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x3" in result.stdout and "micro-batch 2 x 2" in result.stdout
    reference, ddp = metrics(single), metrics(tmp_path / "ddp")
    assert [r["step"] for r in ddp] == [r["step"] for r in reference] == [0, 2, 3, 4, 5, 6]  # the cooldown starts at 5
    for mine, theirs in zip(ddp, reference):
        for key in ("train_loss", "val_loss"):
            if key in theirs:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=0)
    info = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert info["world_size"] == 3
    peak = info["peak_flops"]
    for r in ddp[1:]:  # achieved FLOP/s per process over one process's peak (raised to any rate a step reached)
        achieved = r["tokens_per_s"] / 3 * info["flops_per_token"]["chinchilla"]
        peak = max(peak, achieved)
        assert r["mfu"] == pytest.approx(achieved / peak, rel=1e-12) and r["mfu"] <= 1


def test_a_signal_on_one_process_stops_every_process_one_step_later(tmp_path, tiny_data):
    """SIGTERM reaches rank 2 during step 5 (the 6th update); with log_interval 50, the processes used to agree only
    at step 50. Now they agree at every step, one step later: all stop after update 7, with a checkpoint there."""
    out = tmp_path / "run"
    result = torchrun(3, *TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={out}", "--batch_size=6",
                      "--schedule=constant", "--max_steps=1000", "--log_interval=50", "--eval_interval=1000",
                      "--ckpt_interval=1000", script=FAULT, env=dict(ENV, FAULT="sigterm:2:5"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped by a signal after step 7; checkpoint saved" in result.stdout
    assert sorted(p.name for p in out.glob("ckpt_*")) == ["ckpt_0000007"]
    assert metrics(out)[-1]["step"] == 7


@pytest.mark.parametrize("kind", ["error", "hang"])
def test_a_failing_or_hanging_process_ends_the_others_within_the_timeout(tmp_path, tiny_data, kind):
    """Rank 1 fails (or hangs) at step 3, with no launcher to kill the others: they end with one clear line each,
    not a traceback, and not after waiting forever. Their line names the failed collective: the 5 s dist_timeout_s
    ended the wait (the default, 1800 s, would run past the 90 s that communicate allows: a failure here)."""
    procs = launch_by_hand(3, [*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'run'}",
                               "--batch_size=6", "--max_steps=50", "--log_interval=1", "--dist_timeout_s=5"],
                           dict(ENV, FAULT=f"{kind}:1:3"))
    try:
        for rank in (0, 2):
            _, stderr = procs[rank].communicate(timeout=90)
            assert procs[rank].returncode == 1, stderr[-2000:]
            assert "Traceback" not in stderr
            line, = [l for l in stderr.splitlines() if l.startswith("error:")]
            assert line.startswith(f"error: rank {rank}: a collective with the other processes failed: ")
            assert line.endswith("another process failed or hung: its own error says why")
        if kind == "error":
            _, stderr = procs[1].communicate(timeout=30)
            assert procs[1].returncode == 1 and "error: injected fault at step 3" in stderr
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()


# a run of 16 steps, a checkpoint every 4; --init_from=auto: the command that starts it continues it
RESTARTED = [*TINY_MODEL, "--batch_size=6", "--max_steps=16", "--log_interval=1", "--ckpt_interval=4",
             "--eval_interval=8", "--peak_tflops=1.0", "--init_from=auto"]  # a given peak: no probe at each start
TIMING = ("tokens_per_s", "mfu", "elapsed_s")
COLLECTIVE_FAILED = re.compile(r"error: rank \d: a collective with the other processes failed: .+ in \S+:\S+.* "
                               r"\(.+\); another process failed or hung: its own error says why")


def untimed(out):
    return [{k: v for k, v in record.items() if k not in TIMING} for record in metrics(out)]


def printed_steps(stdout):
    """{step: how many times rank 0 printed its record}."""
    return Counter(int(m.group(1)) for m in re.finditer(r"^step (\d+)/16: ", stdout, re.MULTILINE))


def resumes(out):
    return [(e["event"], e["step"], e.get("from")) for e in json.loads((out / "config.json").read_text())["history"]]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    """The records of RESTARTED run by 3 processes without a fault."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = torchrun(3, *RESTARTED, f"--data_dir={tiny_data}", f"--out_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return untimed(out)


def test_torchrun_restarts_after_killed_processes_and_the_run_ends_as_if_never_interrupted(tmp_path, tiny_data,
                                                                                          uninterrupted):
    """torchrun --max-restarts=3, the same command each round: rank 1 killed (SIGKILL) right after the checkpoint of
    step 4, rank 2 killed two steps after it, rank 0 killed while it writes the checkpoint of step 12 (every shard
    written, the folder not published). Each time the others stop with one line, torchrun restarts every process and
    init_from=auto resumes the latest finished checkpoint: 4, 4 again, then 8, never the half-written 12. The steps
    after it are redone, nothing else, and the run's log equals an uninterrupted run's exactly. The restarted
    rounds used to fail at once (torchrun's store kept the killed round's addresses: lab/rendezvous.py)."""
    out = tmp_path / "run"
    result = torchrun(3, *RESTARTED, f"--data_dir={tiny_data}", f"--out_dir={out}", script=FAULT, restarts=3,
                      env=dict(ENV, FAULT="kill:1:4:0,kill:2:6:1,kill_saving:0:12:2"), timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert untimed(out) == uninterrupted
    assert resumes(out) == [("start", 0, None), ("resume", 4, str(out / "ckpt_0000004")),
                            ("resume", 4, str(out / "ckpt_0000004")), ("resume", 8, str(out / "ckpt_0000008"))]
    assert printed_steps(result.stdout) == {**{s: 1 for s in range(1, 17)}, 5: 2, 6: 2, 9: 2, 10: 2, 11: 2, 12: 2}
    assert sorted(p.name for p in out.iterdir() if "ckpt" in p.name) == ["ckpt_0000012", "ckpt_0000016"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) >= 3 and all(COLLECTIVE_FAILED.fullmatch(line) for line in errors), errors
    assert f'File "{REPO}' not in result.stderr  # no traceback of the processes'


def test_a_hung_process_is_given_up_within_the_timeout_and_the_restarted_job_continues(tmp_path, tiny_data,
                                                                                       uninterrupted):
    """Rank 1 stops (SIGSTOP) asking for the batch of step 6: ranks 0 and 2 give up after dist_timeout_s (10 s
    here), with one line naming the collective, the step's gradient all-reduce; torchrun kills the stopped process
    (SIGKILL, after 30 s of SIGTERM that a stopped process cannot act on) and restarts the job, which resumes step 4
    and ends like an uninterrupted run. The first of ranks 0 and 2 to give up always prints its line; the other's
    wait may have begun a moment later, and torchrun, seeing the first leave, may end it before its own timeout:
    one line or two (a CI run printed rank 2's alone), never rank 1's."""
    out = tmp_path / "run"
    result = torchrun(3, *RESTARTED, f"--data_dir={tiny_data}", f"--out_dir={out}", "--dist_timeout_s=10",
                      script=FAULT, restarts=1, env=dict(ENV, FAULT="stop:1:6:0"), timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = {int(line.split()[2][:-1]): line for line in result.stderr.splitlines() if line.startswith("error:")}
    assert set(errors) in ({0}, {2}, {0, 2}), errors
    for line in errors.values():
        assert COLLECTIVE_FAILED.fullmatch(line), line
        assert ": the backward pass's gradient collective (DDP's all-reduce, FSDP's reduce-scatter) in " \
               "train.py:train_step (" in line
    # the first to give up waited dist_timeout_s; the other may have seen it leave first
    assert any("Timed out waiting 10000ms" in line for line in errors.values()), errors
    assert untimed(out) == uninterrupted
    assert resumes(out) == [("start", 0, None), ("resume", 4, str(out / "ckpt_0000004"))]
    assert printed_steps(result.stdout) == {**{s: 1 for s in range(1, 17)}, 5: 2, 6: 2}


def test_a_failed_collective_is_named_with_the_code_that_ran_it(tmp_path):
    """failed_collective, on the traceback of a real failure (gloo cannot average booleans)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        def log_the_losses():
            parallel.mean_over_processes(torch.tensor([True]))
        with pytest.raises(RuntimeError) as info:
            log_the_losses()
        assert parallel.failed_collective(info.value.__traceback__) == (
            "torch.distributed.all_reduce in lab/parallel.py:mean_over_processes, called from "
            "tests/lab/test_parallel.py:test_a_failed_collective_is_named_with_the_code_that_ran_it.<locals>."
            "log_the_losses")
    finally:
        dist.destroy_process_group()
    assert parallel.failed_collective(None) is None


def test_a_process_that_cannot_see_the_checkpoint_says_so_on_every_process(tmp_path, tiny_data):
    """Multi-node resume: rank 0 picks the checkpoint, every process loads that file; one that cannot see it
    (out_dir not on a shared filesystem) stops every process with one line that says why: every process, even one
    that prints it 2 s after the others (they wait for it before exiting: torchrun would end it)."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'run'}", "--batch_size=6",
              "--schedule=constant", "--log_interval=1"]
    train.main([*common, "--max_steps=4"])
    result = torchrun(3, *common, "--max_steps=8", "--init_from=resume", script=FAULT,
                      env=dict(ENV, FAULT="blind:1:0,slow_line:2:0"))
    assert result.returncode != 0
    assert 'train.py", line' not in result.stderr  # torchrun's own report follows, but none of our processes' tracebacks
    expected = (f"error: process(es) of rank 1 cannot see {tmp_path / 'run' / 'ckpt_0000004'}, which rank 0 can: "
                f"out_dir and init_from must be on a filesystem that every node shares")
    assert result.stderr.count(expected) == 3


def test_compiled_runs_train_like_eager_and_compiled_ddp_like_one_compiled_process(tmp_path, tiny_data):
    """One process compiled trains like eager (inductor fuses and reorders float math: close, not bitwise), SWA
    included; DDP wrapped first, then compiled (parallel.wrap), with gradient accumulation: torchrun x2 matches
    the one compiled process, so the gradients are averaged once per step, through the compiled backward.
    (One test: every compiled process pays a cold compile of about half a minute on 2 cores.)"""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=4", "--log_interval=1", "--eval_interval=2",
              "--dtype=float32", "--schedule=constant", "--swa=True", "--swa_interval=1", "--swa_window=2"]
    train.main([*common, f"--out_dir={tmp_path / 'eager'}"])
    train.main([*common, "--compile=True", f"--out_dir={tmp_path / 'single'}"])
    result = torchrun(2, *common, "--compile=True", f"--out_dir={tmp_path / 'ddp'}", "--micro_batch_size=2",
                      timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    keys = ("train_loss", "val_loss", "val_loss_swa")
    single = metrics(tmp_path / "single")
    assert [r["step"] for r in single] == [0, 1, 2, 3, 4]
    for compiled, eager in zip(single, metrics(tmp_path / "eager"), strict=True):
        assert [k for k in keys if k in compiled] == [k for k in keys if k in eager]
        for key in keys:
            if key in eager:
                assert compiled[key] == pytest.approx(eager[key], rel=1e-3)
    for mine, theirs in zip(metrics(tmp_path / "ddp"), single, strict=True):
        for key in keys:
            if key in theirs:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=0)


def test_compile_on_a_cpu_without_a_cxx_compiler_stops_in_one_line_before_anything_runs(tmp_path, tiny_data):
    import torch._inductor.config
    # torch's own way to change its config for a while: setting and deleting the attribute (monkeypatch) removes
    # the key from the config module under pytest 9, and every later compile in the process fails
    with torch._inductor.config.patch({"cpp.cxx": (None, str(tmp_path / "no-such-g++"))}), pytest.raises(
            ValueError, match=r"^compile=True on a CPU needs a C\+\+ compiler .*no-such-g\+\+.*"
                              r"or run with --compile=False$"):
        train.main([*TINY_MODEL, f"--data_dir={tiny_data}", "--compile=True", "--max_steps=6",
                    f"--out_dir={tmp_path / 'run'}"])
    assert not (tmp_path / "run").exists()  # stopped before the run's folder was made


def test_wrap_puts_ddp_inside_compile_and_evaluates_without_ddp(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = torch.nn.Linear(4, 4)
        procs = parallel.Processes(distributed=True)
        wrapped = parallel.wrap(model, procs, torch.device("cpu"), compile=True)
        assert isinstance(wrapped.train._orig_mod, torch.nn.parallel.DistributedDataParallel)
        assert wrapped.train._orig_mod is wrapped.ddp and wrapped.ddp.module is model
        assert wrapped.eval._orig_mod is model  # compiled on its own, no DDP in its forward
        buffer_sync, = parallel.NO_BUFFER_SYNC  # forward_sync_buffers from PyTorch 2.13, broadcast_buffers before
        assert not getattr(wrapped.ddp, buffer_sync) and wrapped.ddp.gradient_as_bucket_view
        with wrapped.gradient_sync(last_micro_step=False):
            assert not wrapped.ddp.require_backward_grad_sync
        with wrapped.gradient_sync(last_micro_step=True):
            assert wrapped.ddp.require_backward_grad_sync
        alone = parallel.wrap(model, parallel.Processes(), torch.device("cpu"), compile=False)
        assert alone.train is model and alone.eval is model and alone.ddp is None
    finally:
        dist.destroy_process_group()


def test_device_of_each_process():
    assert parallel.device_for("cuda", 3) == torch.device("cuda", 3)  # torchrun's LOCAL_RANK, not cuda:0
    assert parallel.device_for("cuda:1", 3) == torch.device("cuda", 1)
    assert parallel.device_for("cpu", 3) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert parallel.device_for("auto", 3) in (torch.device("cpu"), torch.device("mps"))


def test_a_device_that_is_not_there_is_one_line_naming_the_way_out():
    cuda = lambda index: torch.device("cuda", index)
    with pytest.raises(ConfigError, match=r"^device=cuda: CUDA is not available here \((this PyTorch is a CPU build|"
                                          r"no GPU is visible)\); pass --device=cpu$"):
        parallel.check_device("cuda", cuda(0), gpus=0)
    # torchrun with 3 processes on a node of 2 GPUs: every process says so, rank 0 too, whose own GPU exists
    for local_rank in range(3):
        with pytest.raises(ConfigError, match=r"^3 processes on this node but 2 GPU\(s\) visible, and each process "
                                              r"takes a GPU of its own: run torchrun --nproc_per_node=2 \(or fewer\), "
                                              r"or pass --device=cpu$"):
            parallel.check_device("auto", cuda(local_rank), processes_per_node=3, gpus=2)
    parallel.check_device("cuda", cuda(1), processes_per_node=2, gpus=2)  # one GPU each: fine
    parallel.check_device("cuda:1", cuda(1), processes_per_node=3, gpus=2)  # all on the GPU named: the user's choice
    with pytest.raises(ConfigError, match=r"^device=cuda:2: this machine has 2 GPU\(s\), cuda:0 to cuda:1$"):
        parallel.check_device("cuda:2", cuda(2), gpus=2)
    with pytest.raises(ConfigError, match=r"^unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps$"):
        parallel.setup_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_cuda_without_cuda_is_one_line_on_each_process_that_gets_there_before_anything_is_built(tmp_path, tiny_data):
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", f"--out_dir={tmp_path / 'run'}", "--batch_size=6", "--device=cuda"]
    alone = subprocess.run([sys.executable, str(REPO / "train.py"), *common], capture_output=True, text=True, env=ENV)
    expected = "error: device=cuda: CUDA is not available here (this PyTorch is a CPU build); pass --device=cpu"
    if torch.version.cuda is not None:
        expected = expected.replace("this PyTorch is a CPU build", "no GPU is visible")
    assert alone.returncode == 1 and alone.stderr.strip() == expected
    result = torchrun(3, *common)
    # each process says it, unless torchrun stops it first: it ends the others once one has failed, and a process
    # still importing torch then (a loaded machine) says nothing; each line said is the one line
    said = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and 1 <= len(said) <= 3 and set(said) == {expected}
    assert 'train.py", line' not in result.stderr  # torchrun's own report follows, but none of our processes' tracebacks
    assert not (tmp_path / "run").exists()


def test_an_error_rank_0_decides_is_raised_marked_as_every_process_s():
    def refuse():
        raise ConfigError("out/run already holds a run")
    with pytest.raises(ConfigError, match=r"^out/run already holds a run$") as raised:
        parallel.decided_by_master(refuse, parallel.Processes())
    assert raised.value.agreed is True  # leave() waits for the others to print it
    assert parallel.decided_by_master(lambda: ("resume", 4), parallel.Processes()) == ("resume", 4)


def test_stop_agreement_alone_is_immediate():
    stop = parallel.StopAgreement(parallel.Processes())
    assert stop.step(False) is False and stop.step(True) is True and stop.finish() is False


def test_collective_failures_are_told_from_other_errors():
    procs = parallel.Processes(rank=2, world_size=3, distributed=True)
    gloo = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
                        "[127.0.0.1]:1234. This is typically caused by a remote worker crashing.")
    line = parallel.collective_failure(gloo, procs)  # raised without a traceback: no collective to name
    assert line.startswith("rank 2: a collective with the other processes failed (Connection closed by peer "
                           "[127.0.0.1]:1234. This is typically")
    assert parallel.collective_failure(RuntimeError("shape mismatch"), procs) is None
    assert parallel.collective_failure(gloo, parallel.Processes()) is None  # one process: not a collective


def test_a_finished_process_of_a_torchrun_job_exits_at_once_its_output_flushed():
    """Under a launcher, run_script ends a process that finished without the interpreter's teardown (where gloo's
    threads of a group PyTorch keeps alive can abort it), its buffered output written; alone, a script ends as usual."""
    code = ("import atexit; from lab import settings; atexit.register(print, ' teardown'); "
            "settings.run_script(lambda argv: print('trained', end=''), [])")
    launched = dict(ENV, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    alone = {k: v for k, v in ENV.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    ends = [subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
            for env in (launched, alone)]
    assert [(e.returncode, e.stdout) for e in ends] == [(0, "trained"), (0, "trained teardown\n")]


def test_fsdp_matches_one_process_resumes_exactly_and_its_checkpoint_serves_one_process(tmp_path, tiny_data):
    """FSDP2 x2 (micro-batches, SWA and EMA) equals one process within 1e-4 over 10 steps; an FSDP run resumed under FSDP
    repeats its own steps exactly; its checkpoint holds full tensors (the tied head still tied) and one process
    continues it like the single run."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=10", "--log_interval=1", "--eval_interval=5",
              "--dtype=float32", "--schedule=constant", "--swa=True", "--swa_interval=1", "--swa_window=4",
              "--ema=True", "--ema_decay=0.9", "--keep_ckpt_steps=[5]"]
    single, fsdp = tmp_path / "single", tmp_path / "fsdp"
    train.main([*common, f"--out_dir={single}"])
    result = torchrun(2, *common, f"--out_dir={fsdp}", "--parallelism=fsdp", "--micro_batch_size=2")
    assert result.returncode == 0, result.stderr[-3000:]
    close(metrics(fsdp), metrics(single))

    saved = checkpoint.load(fsdp / "ckpt_0000005")
    reference = checkpoint.load(single / "ckpt_0000005")
    assert {k: v.shape for k, v in saved["model"].items()} == {k: v.shape for k, v in reference["model"].items()}
    assert torch.equal(saved["model"]["lm_head.weight"], saved["model"]["tok_emb.weight"])  # the tied head
    assert saved["optimizer"]["state"][0]["exp_avg"].shape == reference["optimizer"]["state"][0]["exp_avg"].shape

    for name in ("fsdp_resumed", "one_process"):
        (tmp_path / name).mkdir()
        shutil.copytree(fsdp / "ckpt_0000005", tmp_path / name / "ckpt_0000005")
    result = torchrun(2, *common, f"--out_dir={tmp_path / 'fsdp_resumed'}", "--parallelism=fsdp",
                      "--micro_batch_size=2", "--init_from=resume")
    assert result.returncode == 0, result.stderr[-3000:]
    later = lambda out: [r for r in metrics(out) if r["step"] > 5]
    for mine, theirs in zip(later(tmp_path / "fsdp_resumed"), later(fsdp), strict=True):
        keys = ("train_loss", "val_loss_swa", "val_loss_ema")
        assert {k: mine[k] for k in keys if k in mine} == {k: theirs[k] for k in keys if k in theirs}  # exact
    train.main([*common, f"--out_dir={tmp_path / 'one_process'}", "--init_from=resume"])
    close(later(tmp_path / "one_process"), later(single))


def test_a_one_process_checkpoint_resumes_under_fsdp_with_three_processes_one_evaluating_nothing(tmp_path, tiny_data):
    """Schedule-free AdamW, checkpointed by one process, continued by FSDP2 on 3 processes whose shards do not
    split evenly, with activation checkpointing, and 2 validation batches for 3 processes (every process runs the
    all-gathers of both): the same losses as the one process's own continuation."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--max_steps=6", "--log_interval=1", "--eval_interval=3",
              "--dtype=float32", "--schedule=constant", "--optimizer=adamw_schedulefree", "--batch_size=6",
              "--eval_tokens=2048", "--eval_batch_size=16", "--keep_ckpt_steps=[3]"]
    single = tmp_path / "single"
    train.main([*common, f"--out_dir={single}"])
    (tmp_path / "fsdp").mkdir()
    shutil.copytree(single / "ckpt_0000003", tmp_path / "fsdp" / "ckpt_0000003")
    result = torchrun(3, *common, f"--out_dir={tmp_path / 'fsdp'}", "--parallelism=fsdp", "--init_from=resume",
                      "--micro_batch_size=1", "--activation_checkpointing=True")
    assert result.returncode == 0, result.stderr[-3000:]
    close(metrics(tmp_path / "fsdp"), [r for r in metrics(single) if r["step"] > 3])
    event = json.loads((tmp_path / "fsdp" / "config.json").read_text())["history"][-1]
    assert event["world_size"] == 3 and event["changed"] == {
        "parallelism": ["ddp", "fsdp"], "micro_batch_size": [None, 1], "activation_checkpointing": [False, True]}


LATE = str(REPO / "tests" / "torchrun_late.py")


def test_processes_arriving_late_start_resume_branch_overwrite_and_sweep_as_rank_0_decides(tmp_path, tiny_data):
    """Ranks 1 and 2 reach out_dir's preparation 0.5 s after rank 0, which writes this run's config.json meanwhile:
    each used to look for itself and refuse the run as one that already existed. Now rank 0 alone looks
    and every process follows it: a fresh start, a resume, a branch, --overwrite=True and a sweep (a trunk and its
    cooldown) run twice each in one torchrun launch, and a start that must be refused is, on every process."""
    common = [*TINY_MODEL, f"--data_dir={tiny_data}", "--batch_size=6", "--dtype=float32", "--schedule=constant",
              "--log_interval=2", "--eval_interval=100", "--peak_tflops=1.0"]  # a given peak: no probe to wait for
    runs = []
    for r in (1, 2):
        out, sweep_dir = tmp_path / f"run{r}", tmp_path / f"sweep{r}"
        runs += [["train", [*common, f"--out_dir={out}", "--max_steps=4"]],
                 ["train", [*common, f"--out_dir={out}", "--max_steps=6", "--init_from=resume"]],
                 ["train", [*common, f"--out_dir={tmp_path / f'branch{r}'}", "--max_steps=8", "--schedule=wsd",
                            "--cooldown_steps=2", f"--init_from={out / 'ckpt_0000006'}"]],
                 ["train", [*common, f"--out_dir={out}", "--max_steps=4", "--overwrite=True"]],
                 ["sweep", ["late", "--scale=tiny", f"--data_dir={tiny_data}", f"--results={sweep_dir / 'results'}",
                            f"--out_root={sweep_dir / 'out'}", "--gflops=10"]]]
    runs.append(["train", [*common, f"--out_dir={tmp_path / 'run1'}", "--max_steps=4"]])  # run1 holds a run: refused
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    result = torchrun(3, str(tmp_path / "runs.json"), script=LATE, env=dict(ENV, LATE_S="0.5"))
    finished = [line for line in result.stdout.splitlines() if line.startswith("finished: ")]
    assert finished == [f"finished: {index}" for index in range(len(runs) - 1)], result.stderr[-3000:]
    refusal = (f"error: {tmp_path / 'run1'} already holds a run: use --init_from=resume to continue it, "
               f"--overwrite=True to replace it, or another out_dir")
    assert result.returncode != 0 and result.stderr.count(refusal) == 3, result.stderr[-3000:]
    for r in (1, 2):
        out, branch = tmp_path / f"run{r}", tmp_path / f"branch{r}"
        event, = json.loads((branch / "config.json").read_text())["history"]  # off the resume's checkpoint
        assert (event["event"], event["step"], event["from"], event["world_size"]) == (
            "branch", 6, str(out / "ckpt_0000006"), 3)
        assert metrics(branch)[-1]["step"] == 8
        # the overwrite replaced the resumed run: its own history, log and checkpoints only
        assert [e["event"] for e in json.loads((out / "config.json").read_text())["history"]] == ["start"]
        assert [r["step"] for r in metrics(out)] == [0, 2, 4] and sorted(p.name for p in out.glob("ckpt_*")) == [
            "ckpt_0000004"]
        for run, steps in (("constant", 6), ("constant-to8-cd2", 8)):
            assert metrics(tmp_path / f"sweep{r}" / "results" / "late" / run)[-1]["step"] == steps
    assert result.stdout.count("late/constant-to8-cd2: starting") == 2
