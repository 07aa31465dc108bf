"""
How long a long job has run and has left, for the lines it prints: train.py's step line (TimeLeft: from the pace of
its steps) and sweep.py's line between runs (SweepProgress: runs done of all, and the plan's estimate of the runs not
done). The clock is an argument, so that the arithmetic is tested without waiting.

    time_left = progress.TimeLeft(start_step=0, end_step=1000)   # when the run's first step starts
    time_left.line(step=100)                                       # 'elapsed 01:05, ~09:45 left'
    sweep = progress.SweepProgress({("c1", "cosine_300"): 310.0, ...}, done={...})
    print(sweep.line()); ...; sweep.finished(("c1", "cosine_300"))
"""

import time

from tqdm import tqdm


class TimeLeft:
    """The time since the first step and the time left to end_step at the pace of the steps since the first line
    (the first window holds the compilation and the warm-up, which the later steps do not pay; until a second line,
    the pace of the first window). Evaluations and checkpoints count: the time left is wall time."""

    def __init__(self, start_step, end_step, clock=time.perf_counter):
        self.end_step, self.clock = end_step, clock
        self.start, self.first = (start_step, clock()), None  # (step, time) of the start and of the first line

    def line(self, step):
        now = self.clock()
        since_step, since = self.first or self.start
        self.first = self.first or (step, now)
        pace = (now - since) / max(step - since_step, 1)
        return (f"elapsed {tqdm.format_interval(now - self.start[1])}, "
                f"~{tqdm.format_interval(pace * (self.end_step - step))} left")


class SweepProgress:
    """The line before each run of a sweep and at its end: runs done of all, a bar, the time elapsed, and the time
    that the plan (its FLOPs and rates) gives the runs not done yet. The plan's estimate, not the pace so far: the
    runs of a sweep differ a hundredfold in length, and a run already done is skipped in no time."""

    def __init__(self, planned, done=(), clock=time.perf_counter):
        self.planned, self.done = dict(planned), set(done)  # planned: {run: estimated seconds} of every run
        self.clock, self.started = clock, clock()

    def finished(self, run):
        self.done.add(run)

    def line(self):
        left = sum(seconds for run, seconds in self.planned.items() if run not in self.done)
        return tqdm.format_meter(len(self.done), len(self.planned), self.clock() - self.started, ncols=100,
                                 bar_format=f"sweep: {{n_fmt}}/{{total_fmt}} runs done |{{bar}}| {{elapsed}} elapsed, "
                                            f"~{tqdm.format_interval(left)} left by the plan")
