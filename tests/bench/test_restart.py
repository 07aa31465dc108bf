"""bench/restart.py: the costs of a checkpoint interval, the figures read from a job's stamped lines, and the bench
end to end on a tiny model (a real torchrun job, one of its processes killed)."""
import re

import pytest

from bench import restart
from lab.config import defaults_of


def test_interval_costs_are_the_write_share_the_expected_loss_and_youngs_interval():
    rows, best = restart.interval_costs(step_s=2.0, write_s=10.0, restart_s=30.0, intervals=(100, 400),
                                        mtbf_hours=(1, 24))
    (i1, share1, lost1), (i2, share2, lost2) = rows
    assert (i1, i2) == (100, 400)
    assert share1 == pytest.approx(10 / 200) and share2 == pytest.approx(10 / 800)
    assert lost1 == pytest.approx(30 + 50 * 2) and lost2 == pytest.approx(30 + 200 * 2)
    # sqrt(2 * 10 s * 3600 s) = 268.3 s of training = 134.2 steps of 2 s; a day: sqrt(24) times that
    assert best[1] == pytest.approx(134.16, abs=0.01) and best[24] == pytest.approx(657.27, abs=0.01)


def test_the_timeline_of_a_killed_and_restarted_job():
    cfg = dict(defaults_of(restart.SETTINGS), ckpt_steps=3, kill_after=2, batch_size=3, seq_len=128)
    out = [(0.0, "device cpu x3, ... steps 0->8, ..."), (10.0, "step 1/8: ..."), (12.0, "step 2/8: ..."),
           (14.0, "step 3/8: ..."), (21.0, "step 4/8: ..."), (23.0, "step 5/8: ..."),  # killed at 23.5
           (40.0, "device cpu x3, ... steps 3->8, ..."), (42.5, "step 4/8: ..."), (44.5, "step 5/8: ..."),
           (46.5, "step 6/8: ...")]
    err = [(23.7, "error: rank 0: ..."), (23.9, "error: rank 2: ..."), (24.0, "W... torchrun's own line")]
    records = [dict(step=0)] + [dict(step=s, tokens_per_s=384 / 2.0) for s in range(1, 9)]
    figures = restart.timeline(cfg, out, err, dict(launched=-8.0, killed=23.5, respawned=30.0), records)
    assert figures == dict(step_s=2.0, write_s=5.0, first_start_s=8.0, others_stopped_s=pytest.approx(0.4),
                           respawned_s=6.5, training_again_s=16.5, first_step_s=19.0, lost_s=21.0, redone_steps=2)


def test_the_bench_kills_a_process_of_a_real_job_and_reports_its_restart(tiny_data, capsys):
    restart.main(["--model=cpu_tiny", f"--data_dir={tiny_data}", "--seq_len=64", "--ckpt_steps=2", "--kill_after=1"])
    report = capsys.readouterr().out
    seconds = {name: float(value) for name, value in re.findall(r"^  (\w[\w ()]+?) +(\d+\.\d+) s", report, re.M)}
    assert list(seconds) == ["the others gave up", "torchrun started them again", "training again (restarted)",
                             "first step done", "back where it was killed"], report
    # each comes after the one before: torchrun restarts the job once its processes have ended; the others give up
    # after the kill (a negative or missing time would not match above), 0.00 s when they see the closed connection
    # within 5 ms
    assert list(seconds.values()) == sorted(seconds.values()) and seconds["the others gave up"] >= 0, report
    assert re.search(r"^cpu_tiny on 3 processes \(cpu, float32\), 3 x 64 tokens a step; checkpoint \d+\.\d\d GB$",
                     report, re.M), report
    assert re.search(r"^step \d+\.\d\d s, checkpoint write -?\d+\.\d\d s; the first start trained \d+\.\d\d s after "
                     r"its launch \(no checkpoint to read\)$", report, re.M), report
    assert len(re.findall(r"^ +\d+ steps +\d+\.\d\d% +\d+ s$", report, re.M)) == len(restart.INTERVALS), report
