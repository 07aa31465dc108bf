"""
Experiment tracking for train.py: every metrics.jsonl record also goes to Weights & Biases when wandb_log=True.

    pip install wandb                                                      # optional (requirements-extra.txt)
    python train.py configs/124m_cooldown.py --wandb_log=True              # project lr-schedules, run named by out_dir
    python train.py configs/124m_cooldown.py --wandb_log=True --init_from=resume   # continues the same wandb run
    WANDB_MODE=offline python train.py configs/cpu_tiny.py --wandb_log=True   # no network: wandb sync later

In train.py:

    tracker = tracking.start(cfg, run_info, out_dir, master, resuming=cfg["init_from"] == "resume")
    tracker.log(record)      # after each metrics.jsonl line
    tracker.finish()         # at the end of the run (exit_code=1 when it failed)

metrics.jsonl stays the source of truth (plot.py reads only it); wandb is a view of it. Only rank 0 talks to wandb,
and with wandb_log=False wandb is never imported. The wandb run id is kept in out_dir/wandb_id, so that a resumed
run continues its wandb run; a fresh start or a branch (its own out_dir) is a new wandb run.

Where wandb writes its files (wandb_dir): under wandb's own WANDB_DIR when it is set, as wandb users expect (a
scratch disk, a cluster's setting: <WANDB_DIR>/wandb/), else under the run's folder (out_dir/wandb/), beside the
logs it mirrors. Either way out_dir/wandb_id says which wandb run a resume continues.
"""

import os
from pathlib import Path

from lab.config import ConfigError, Setting, write_atomically

SETTINGS = dict(
    wandb_log=Setting(False, "also send metrics.jsonl's records to Weights & Biases (pip install wandb)"),
    wandb_project=Setting("lr-schedules", "the wandb project"),
    wandb_run_name=Setting(None, "the wandb run's name (None: out_dir's name)", types=(str, type(None))),
)
ID_FILE = "wandb_id"


class NoTracker:
    """wandb_log=False, or a process other than rank 0: nothing to send."""

    def log(self, record):
        pass

    def finish(self, exit_code=0):
        pass


class WandbTracker:
    def __init__(self, run):
        self.run = run

    def log(self, record):
        """A metrics.jsonl record at its optimizer step: its numbers (a branch's first line also has its origin,
        which config.json already records, and mfu is None without a device peak)."""
        numbers = {key: value for key, value in record.items()
                   if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}
        self.run.log(numbers, step=record["step"])

    def finish(self, exit_code=0):
        self.run.finish(exit_code=exit_code)


def import_wandb():
    try:
        import wandb
    except ImportError:
        raise ConfigError("wandb_log=True needs wandb: pip install wandb (or pip install -r requirements-extra.txt), "
                          "or set wandb_log=False") from None
    return wandb


def stored_run_id(out_dir, resuming):
    """The wandb run id to continue: the one in out_dir/wandb_id when resuming, else None (wandb makes a new one)."""
    path = Path(out_dir) / ID_FILE
    if resuming and path.is_file():
        return path.read_text().strip() or None
    return None


def store_run_id(out_dir, run_id):
    write_atomically(Path(out_dir) / ID_FILE, lambda tmp: tmp.write_text(run_id + "\n"))


def wandb_dir(out_dir):
    """The folder wandb.init writes under: wandb's WANDB_DIR when set (an explicit `dir` would override it), else
    out_dir."""
    return os.environ.get("WANDB_DIR") or str(out_dir)


def wandb_config(run_info):
    """The run's config, with the rest of config.json's run info (device, model shape, parameters, FLOPs, ...)
    under 'run': config has its own 'device' key (e.g. auto), which the resolved device must not overwrite."""
    return {**run_info["config"], "run": {key: value for key, value in run_info.items() if key != "config"}}


def start(cfg, run_info, out_dir, master, resuming):
    """The tracker of this process. cfg: the resolved config (with SETTINGS' keys); run_info: what train.py writes to
    config.json (dict with 'config'; may be None where master is False); out_dir: the run's folder, already made;
    master: rank 0; resuming: init_from=resume, which continues the wandb run whose id out_dir holds."""
    if not cfg["wandb_log"] or not master:
        return NoTracker()
    wandb = import_wandb()
    out_dir = Path(out_dir)
    try:
        run = wandb.init(project=cfg["wandb_project"], name=cfg["wandb_run_name"] or out_dir.resolve().name,
                         config=wandb_config(run_info), dir=wandb_dir(out_dir), id=stored_run_id(out_dir, resuming),
                         resume="allow")
    except Exception as e:  # no login, no network, a bad project name: one line, then the user decides
        reason = ": ".join([type(e).__name__, *str(e).strip().splitlines()[:1]])
        raise ConfigError(f"cannot start the wandb run ({reason}); run `wandb login`, set WANDB_MODE=offline, "
                          f"or set wandb_log=False") from None
    store_run_id(out_dir, run.id)
    return WandbTracker(run)
