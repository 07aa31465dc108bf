"""
A run's folder (out_dir): what may change when a run is resumed or branched, config.json with the run's history,
the metrics log on resume, whether the same command starts, continues or has finished the run (init_from=auto),
and the checkpoint a run starts from, chosen by rank 0 for every process and loaded into the model, the optimizer
and the averages.

    changed = check_changes(previous_cfg, cfg, start_step, branch=False)   # ConfigError naming every refused key
    write_config(out_dir, run_info, event)                                  # config.json, with the history
    history_event("resume", step, changed, source, world_size, device)      # with the code: git commit, dirty
    cfg = resolve_auto(cfg, procs)            # init_from=auto as resume or scratch; None: the run is finished

What a run *is*: its data stream (its data, seed, data_seed, batch_size, seq_len; the data is known by its
fingerprint, lab/shards.py, so data_dir may move, and by data_dir alone for a checkpoint older than fingerprints),
its model, its precision, its optimizer and that optimizer's hyperparameters, its validation set, its weight
averages, and the LR of every step it has taken. A resume (init_from=resume) must keep all of that; it may change
the bookkeeping (intervals, keep_*, device, compile, micro_batch_size, ...) and the schedule of steps not taken yet:
raising max_steps of a constant-LR run continues the trunk, the paper's whole point. A branch
(init_from=<checkpoint>) starts a new run from a checkpoint: it may change the schedule, the peak LR and the
averages (a cooldown is just that), but reads the same data stream unless allow_data_change=True says otherwise.
"""

import datetime
import json
import subprocess
from pathlib import Path

import torch
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

from lab import checkpoint, parallel
from lab.config import ConfigError, read_json, write_atomically
from lab.shards import short
from schedules import SCHEDULE_KEYS, ScheduleError, learning_rate, resolve_cooldown_steps, validate_schedule

DATA_STREAM = ("data_dir", "seed", "data_seed", "batch_size", "seq_len")
# the model shape is checked against the checkpoint's weights as well (train.load_start)
IDENTITY = (*DATA_STREAM, "model", "n_layer", "n_head", "n_embd", "ffw_size", "n_kv_head", "tie_embeddings", "dtype",
            "optimizer", "beta1", "beta2", "weight_decay", "grad_clip", "eval_tokens", "float8")
AVERAGES = ("swa", "swa_interval", "swa_window", "ema", "ema_decay", "ema_interval")
LAUNCH = ("init_from", "overwrite", "out_dir")  # how this start was asked for, not what the run is
REPOSITORY = Path(__file__).resolve().parent.parent  # the checkout whose code runs, when it is one


def changed_settings(previous, cfg):
    """{key: [previous value, this value]} for every setting that differs, the launch keys left out."""
    return {key: [previous[key], value] for key, value in cfg.items()
            if key in previous and key not in LAUNCH and previous[key] != value}


def first_step_with_other_lr(previous, cfg, steps_taken):
    """The first of the steps already taken whose LR the new settings change (0 if they are no schedule), or None."""
    try:
        for step in range(steps_taken):
            if learning_rate(previous, step) != learning_rate(cfg, step):
                return step
    except ScheduleError:  # e.g. one key changed alone, without the other that makes it valid
        return 0
    return None


def check_changes(previous, cfg, start_step, branch):
    """The settings that changed since the checkpoint's run (`previous`), after refusing, in one line naming
    each, those that would make it another run. Returns changed_settings."""
    changed = changed_settings(previous, cfg)
    if cfg["dtype"] == "auto":  # auto continues in the run's own precision (precision.resolve's run_dtype)
        changed.pop("dtype", None)
    if branch:
        frozen = [k for k in IDENTITY if not (cfg["allow_data_change"] and k in DATA_STREAM)]
        why = ("a branch continues its trunk's run: its data stream (unless allow_data_change=True), model, "
               "precision, optimizer and validation set")
    else:
        frozen = [*IDENTITY, *AVERAGES]
        if cfg["optimizer"] == "adamw_schedulefree":  # its own warmup and LR shape its averaged weights
            frozen += ["lr", "warmup_steps"]
        why = ("resuming continues the same run: start a new one, or branch off a checkpoint "
               "(init_from=<out_dir>/ckpt_<step>) with its own out_dir")
    refused = [k for k in changed if k in frozen]
    schedule = [k for k in changed if k in (*SCHEDULE_KEYS, "lr") and k not in refused]
    step = None if branch or not schedule else first_step_with_other_lr(previous, cfg, start_step)
    if step is not None:  # name the keys that change a past LR on their own (all of them if only together)
        alone = [k for k in schedule if first_step_with_other_lr(previous, {**previous, k: cfg[k]}, start_step) is not None]
        refused += alone or schedule
        why += (f"; the schedule change alters the LR of step {step}, already taken "
                f"({learning_rate(previous, step):.3g} -> {learning_rate(cfg, step):.3g})")
    if refused:
        what = "branch off" if branch else "resume"
        settings = ", ".join(f"{k}={changed[k][1]!r} (the run's: {changed[k][0]!r})" for k in refused)
        if "dtype" in refused:  # dtype=auto resolves per machine: the same command can mean another precision
            why += "; dtype is the precision the run computes in: dtype=auto continues in the run's own"
        raise ConfigError(f"cannot {what} a run with other settings: {settings}; {why}")
    return changed


def load_optimizer_state(optimizer, saved, device):
    """The checkpoint's optimizer state under this run's implementation: load_state_dict takes every group
    setting from the file, `fused` too, so a CPU trunk branched on a GPU would otherwise run unfused. Set before
    loading, so that the step counters are placed where the fused kernel wants them."""
    if isinstance(optimizer, torch.optim.AdamW):
        saved = dict(saved, param_groups=[dict(g, fused=device.type == "cuda") for g in saved["param_groups"]])
    optimizer.load_state_dict(saved)


def load_start(cfg, procs, mconf, fingerprint):
    """The settings of init_from's checkpoint, checked against this run's and its data (`fingerprint`), without its
    tensors. Returns (state, changed settings, the checkpoint's path); restore_training_state reads the tensors once
    the model is wrapped. The data's fingerprint, when both have one, is what must stay: data_dir may move."""
    path, hint = starting_checkpoint(cfg, procs)
    state = checkpoint.load(path, hint, required=("model", "optimizer", "scaler", "rng", "step", "config",
                                                  "model_config"), tensors=False)
    previous = state["config"]
    if check_same_data(cfg, state, fingerprint, procs.master):
        previous = dict(previous, data_dir=cfg["data_dir"])
    # block_size only sizes the rotary tables: a checkpoint's weights serve any seq_len
    differ = [f"{k}={v} (this run: {mconf.__dict__.get(k)})" for k, v in state["model_config"].items()
              if k != "block_size" and v != mconf.__dict__.get(k)]
    if differ:
        raise checkpoint.CheckpointError(f"the checkpoint's model does not match this run's model: {', '.join(differ)}")
    changed = check_changes(previous, cfg, state["step"], branch=cfg["init_from"] != "resume")
    if previous["data_dir"] != state["config"]["data_dir"]:
        changed["data_dir"] = [state["config"]["data_dir"], cfg["data_dir"]]
    return state, changed, path


def run_layout(model, optimizer):
    """checkpoint.read_tensors' layout for this run: each tensor of the checkpoint shaped like the live tensor it
    becomes (a model weight, an average of one, an optimizer moment of a parameter), so that under FSDP it is a
    DTensor and DCP reads only this process's shard; anything else (AdamW's step counts) whole, on the CPU."""
    live = get_model_state_dict(model)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def layout(where, shape, dtype):
        like = params[where[2]] if where[:2] == ("optimizer", "state") else live.get(where[-1])
        if like is not None and list(like.shape) == list(shape):
            return torch.empty_like(like, dtype=dtype)
        return torch.empty(shape, dtype=dtype)
    return layout


def restore_training_state(state, path, model, optimizer, scaler, device):
    """The model's weights, the optimizer, the grad scaler and the RNG from the checkpoint, every process reading
    only its shards (an old single-file checkpoint: cut from the full tensors every process holds). Returns the
    state with its tensors, for restore_averages once the averages exist (they start from the loaded weights)."""
    state = checkpoint.read_tensors(state, path, run_layout(model, optimizer))
    set_model_state_dict(model, state["model"])
    load_optimizer_state(optimizer, state["optimizer"], device)
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"])
    return state


def restore_averages(state, averages):
    """The weight averages continue from the checkpoint's (restore_training_state's state) when it has them."""
    for key, average in averages.items():
        if average and state.get(key) is not None:
            average.load_state_dict(state[key])


def check_same_data(cfg, state, fingerprint, master):
    """Whether the checkpoint's run (`state`) read the data of this fingerprint (lab/shards.py): a resume, or a
    branch without allow_data_change, on other data is refused in one line naming both. None for a checkpoint
    written before fingerprints were recorded, which cannot be checked: a warning says so, and the run goes on."""
    theirs, branch = (state.get("data") or {}).get("fingerprint"), cfg["init_from"] != "resume"
    if theirs is None:
        if master:
            print(f"warning: the checkpoint records no data fingerprint (written before they were recorded): that "
                  f"data_dir={cfg['data_dir']} holds the data it was trained on is not checked", flush=True)
        return None
    if theirs != fingerprint and not (branch and cfg["allow_data_change"]):
        raise ConfigError(f"cannot {'branch off' if branch else 'resume'} a run on other data: data_dir="
                          f"{cfg['data_dir']} has the fingerprint {short(fingerprint)}, the checkpoint's run read "
                          f"{short(theirs)}; point data_dir at that data"
                          + (", or pass allow_data_change=True to branch onto this one" if branch else ""))
    return theirs == fingerprint


def code_version(root=REPOSITORY):
    """{'commit': the commit checked out, 'dirty': whether a tracked file differs from it} of the git checkout the
    code runs from, or None outside one (or without git). Untracked files do not count, as in git describe --dirty."""
    try:
        commit, status = (subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60,
                                         check=True).stdout
                          for args in (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"]))
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(commit=commit.strip(), dirty=bool(status.strip()))


def history_event(kind, step, changed, source, world_size, device):
    """One entry of config.json's history: a start, a resume or a branch, what it changed, and the code that ran."""
    event = dict(event=kind, step=step, time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 world_size=world_size, device=str(device), changed=changed, code=code_version())
    if source:
        event["from"] = str(source)
    return event


def write_config(out_dir, run_info, event):
    """config.json: the run's current settings and, in `history`, every start, resume and branch with what it
    changed, so that no earlier value is lost when a resume extends the run. Written atomically."""
    path = Path(out_dir) / "config.json"
    history = []
    if event["event"] == "resume" and path.exists():
        try:
            history = read_json(path).get("history", [])
        except (ConfigError, AttributeError):  # unreadable: the checkpoint still says what the run was
            history = []
    info = dict(run_info, history=[*history, event])
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(info, indent=2) + "\n"))


def prepare_out_dir(cfg, procs):
    """Refuse to mix two runs in one out_dir; on a fresh start, clear what a replaced run left. Rank 0 alone looks
    and clears, and every process follows its verdict (or its error): a process that looked for itself could find
    the config.json that rank 0 writes moments later for this very run, and refuse it (a slower node, a slower
    filesystem, a busy CPU). Rank 0 writes nothing in out_dir before this decision, and the others never look."""
    parallel.decided_by_master(lambda: claim_out_dir(cfg), procs)


def claim_out_dir(cfg):
    """prepare_out_dir's decision and its clearing, on rank 0."""
    out_dir = Path(cfg["out_dir"])
    source = Path(cfg["init_from"]).resolve()
    if cfg["init_from"] not in ("scratch", "resume") and source.parent == out_dir.resolve():
        raise ConfigError(f"init_from={cfg['init_from']} lies in out_dir {out_dir}: a branch needs its own out_dir")
    if cfg["init_from"] != "resume" and (out_dir / "config.json").exists() and not cfg["overwrite"]:
        raise ConfigError(f"{out_dir} already holds a run: use --init_from=resume to continue it, "
                          f"--overwrite=True to replace it, or another out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg["init_from"] != "resume":
        for _, path in checkpoint.list_checkpoints(out_dir):
            checkpoint.remove(path)
        for name in ("metrics.jsonl", "swa.pt", "ema.pt"):  # nothing of the replaced run may pass for this one's
            (out_dir / name).unlink(missing_ok=True)


def truncate_metrics(path, step):
    """After resuming from `step`, the lines logged past it belong to the lost future: remove them, and a last
    line cut short by a kill mid-write with them (logged after the last checkpoint, it is past `step` too)."""
    if path.exists():
        lines = [l for l in path.read_text().splitlines() if l.strip()]
        try:
            json.loads(lines[-1] if lines else "{}")
        except json.JSONDecodeError:
            lines.pop()
        kept = "".join(l + "\n" for l in lines if json.loads(l)["step"] <= step)
        write_atomically(path, lambda tmp: tmp.write_text(kept))


def starting_checkpoint(cfg, procs):
    """(path, hint) of the checkpoint this run starts from. Rank 0 picks out_dir's latest for a resume, and
    every process loads that one checkpoint: on several nodes, out_dir must be on a filesystem they all share, and a
    process that cannot see the file says so, on every process, instead of starting from something else."""
    if cfg["init_from"] == "resume":
        path, hint = parallel.decided_by_master(lambda: checkpoint.latest(cfg["out_dir"]), procs)
    else:
        path, hint = Path(cfg["init_from"]), ""
    seen = parallel.gather(checkpoint.is_finished(path))
    blind = [rank for rank, ok in enumerate(seen) if not ok]
    if blind and len(blind) < len(seen):
        raise parallel.agreed(checkpoint.CheckpointError(
            f"process(es) of rank {', '.join(map(str, blind))} cannot see {path}, which rank 0 can: out_dir and "
            f"init_from must be on a filesystem that every node shares"))
    return Path(path), hint


def start_or_resume(out_dir, max_steps, source="scratch"):
    """How the same command carries on the run of out_dir: None when the run is finished (a checkpoint at
    max_steps), resume when out_dir holds a finished checkpoint, else a start from `source` ('scratch' or a
    checkpoint to branch from) that replaces what out_dir holds: without a checkpoint, that is at most the
    config.json and logs of a start that died before its first checkpoint. A checkpoint being written (or left
    half-written by a kill) is no checkpoint here (checkpoint.list_checkpoints). Rank 0 decides it, for
    init_from=auto (resolve_auto), branch.py and sweep.py."""
    saved = [step for step, _ in checkpoint.list_checkpoints(out_dir)]
    if max_steps in saved:
        return None
    if saved:
        return dict(init_from="resume")
    check_started_from(out_dir, source)
    return dict(init_from=str(source), overwrite=True)


def check_started_from(out_dir, source):
    """ConfigError when out_dir holds a run whose first start was not from `source` ('scratch' or a checkpoint): a
    run of yours there is refused, not overwritten."""
    config_json = Path(out_dir) / "config.json"
    if not config_json.is_file():
        return
    info = read_json(config_json)
    history = info.get("history") if isinstance(info, dict) else None
    started = history[0].get("from", "scratch") if history and isinstance(history[0], dict) else None
    same = started == "scratch" if str(source) == "scratch" else (
        started not in (None, "scratch") and Path(started).resolve() == Path(source).resolve())
    if not same:
        raise ConfigError(f"{out_dir} holds a run that did not start from {source} (it started from "
                          f"{started or 'an unknown point'}): move it away, or give the branches another trunk name")


def resolve_auto(cfg, procs):
    """cfg with init_from=auto replaced by what it means now (start_or_resume, decided by rank 0 for every
    process), or None when the run is finished (rank 0 prints that). What is resumed passes every check of a
    resume; what a start replaces must be a start of this same run: a config.json of other settings is refused, as
    a resume refuses it. overwrite=True asks to replace the run: auto then starts from scratch."""
    if cfg["init_from"] != "auto":
        return cfg
    if cfg["overwrite"]:
        return dict(cfg, init_from="scratch")

    def decide():
        launch = start_or_resume(cfg["out_dir"], cfg["max_steps"])
        record = Path(cfg["out_dir"]) / "config.json"
        if launch and launch["init_from"] == "scratch" and record.exists():
            try:
                check_changes(read_json(record).get("config", {}), cfg, 0, branch=False)
            except ConfigError as e:
                raise ConfigError(f"init_from=auto: {cfg['out_dir']} holds no checkpoint but the config.json of a "
                                  f"run that it would replace: {e}") from None
        return launch
    launch = parallel.decided_by_master(decide, procs)
    if launch is None and procs.master:
        print(f"{cfg['out_dir']} holds a finished run (step {cfg['max_steps']}): nothing to train", flush=True)
    return launch and dict(cfg, **launch)


def starting_point(cfg, procs, mconf, fingerprint):
    """(checkpoint state, changed settings, checkpoint path, origin, step) where train.py's run starts: nothing for a
    new run (init_from=scratch), else the checkpoint of load_start, all checks passed (its data: `fingerprint`)."""
    if cfg["init_from"] == "scratch":
        return {}, {}, None, None, 0
    state, changed, source = load_start(cfg, procs, mconf, fingerprint)
    # a branch records its trunk; a resumed run keeps whatever origin it had
    origin = (state.get("origin") if cfg["init_from"] == "resume"
              else {"checkpoint": str(cfg["init_from"]), "out_dir": state["config"]["out_dir"], "step": state["step"]})
    if state["step"] >= cfg["max_steps"]:
        raise ConfigError(f"the starting checkpoint is at step {state['step']}, not before max_steps={cfg['max_steps']}")
    return state, changed, source, origin, state["step"]


def plan_branches(trunk, lengths, cooldown_fracs, cooldown_steps_list, settings=None):
    """[(final length N, cooldown steps C, branch step N - C, out_dir)], one per length and cooldown. Each branch's
    schedule (wsd, with the other schedule `settings` such as warmup_steps) is validated here, so that a bad one
    fails before any branch trains."""
    if not lengths:
        raise ConfigError("give the branches' final lengths, e.g. --lengths=[300,600,900]")
    cooldowns = [("steps", c) for c in cooldown_steps_list] or [("frac", f) for f in cooldown_fracs]
    if not cooldowns:
        raise ConfigError("give the cooldowns, e.g. --cooldown_fracs=[0.2] or --cooldown_steps_list=[60]")
    branches = []
    for length in lengths:
        for kind, value in cooldowns:
            cooldown = dict(cooldown_steps=value) if kind == "steps" else dict(cooldown_frac=value, cooldown_steps=None)
            try:  # before resolving the cooldown, which needs numbers
                validate_schedule(**{**(settings or {}), "schedule": "wsd", "max_steps": length, **cooldown})
            except ScheduleError as e:
                what = f"{value!r} steps" if kind == "steps" else f"fraction {value!r}"
                raise ConfigError(f"the branch of length {length!r} with a cooldown of {what}: {e}") from None
            steps = value if kind == "steps" else resolve_cooldown_steps(length, value, None)
            branches.append((length, steps, length - steps, Path(f"{trunk}-to{length}-cd{steps}")))
    return branches
