"""lab/progress.py on a fake clock: train.py's elapsed and remaining time, and sweep.py's runs done and time left."""
from lab.progress import SweepProgress, TimeLeft


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_time_left_is_the_pace_after_the_first_line_times_the_steps_left():
    clock = Clock()
    left = TimeLeft(start_step=0, end_step=1000, clock=clock)
    clock.now += 30  # the first 10 steps hold the compilation: 3 s a step
    assert left.line(10) == "elapsed 00:30, ~49:30 left"  # 990 steps at 3 s
    clock.now += 10  # then 0.5 s a step
    assert left.line(30) == "elapsed 00:40, ~08:05 left"  # 970 steps at 0.5 s
    clock.now += 3600 + 15
    assert left.line(1000) == "elapsed 1:00:55, ~00:00 left"


def test_a_resumed_run_counts_from_its_own_start():
    clock = Clock()
    left = TimeLeft(start_step=600, end_step=1000, clock=clock)
    clock.now += 20
    assert left.line(620) == "elapsed 00:20, ~06:20 left"  # 380 steps at 1 s


def test_the_sweep_line_counts_runs_and_leaves_the_plan_s_time_of_the_runs_not_done():
    clock = Clock()
    planned = {("c1", "a"): 600.0, ("c1", "b"): 1200.0, ("c4", "c"): 3600.0, ("c4", "d"): 60.0}
    sweep = SweepProgress(planned, done={("c1", "a")}, clock=clock)
    assert sweep.line().startswith("sweep: 1/4 runs done |")
    assert sweep.line().endswith("| 00:00 elapsed, ~1:21:00 left by the plan")  # 1200 + 3600 + 60 s
    clock.now += 7200  # the run took twice its estimate: the plan's time of the others stands
    sweep.finished(("c4", "c"))
    assert sweep.line().startswith("sweep: 2/4 runs done |") and sweep.line().endswith(
        "| 2:00:00 elapsed, ~21:00 left by the plan")
    for run in planned:
        sweep.finished(run)
    assert sweep.line().startswith("sweep: 4/4 runs done |") and sweep.line().endswith("~00:00 left by the plan")
