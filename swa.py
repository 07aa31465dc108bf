"""
Weight averaging: SWA over fixed windows and EMA during training, and SWA of a finished run's checkpoints.

    python train.py configs/cpu_tiny.py --swa=True --swa_interval=5 --swa_window=50   # logs val_loss_swa
    python train.py configs/cpu_tiny.py --ema=True --ema_decay=0.99                   # logs val_loss_ema
    python swa.py --run=out/cpu_tiny --start_step=100 --end_step=300                   # offline, no training
    python swa.py --run=out/cpu_tiny --start_step=100 --end_step=300 --out=out/cpu_tiny/swa_100_300.pt
    python swa.py --run=out/trunk --start_step=960 --end_step=1200 --merge=1-sqrt   # WSM: a merge for a cooldown

SWA (the paper's "stochastic weight averaging"): every `interval` optimizer steps the current weights are folded
into a uniform average; the average restarts every `window` steps, and evaluation uses the average of the latest
*completed* window. Window k covers the steps (k*window, (k+1)*window]. EMA: every `interval` steps,
ema = decay * ema + (1 - decay) * w, so its horizon is about interval / (1 - decay) steps.

What is averaged: the floating-point tensors of the model's state_dict, i.e. the parameters and the persistent
floating buffers (our GPT has none: its rotary tables are non-persistent and recomputed from the config, so
they are neither averaged nor touched). Integer buffers (counters) would be left as they are. Tied tensors
(the embedding and the output head) are averaged once and appear under both names.
Averages are kept in fp32 whatever the model's dtype, and live on the model's device.

With torch.compile or DDP the parameters belong to the wrapped module: train.py passes the unwrapped model
(`raw_model`); a wrapper is unwrapped here anyway (`_orig_mod`, `module`). With several processes the weights
are identical on every rank after each step, so every rank keeps its own (identical) average: evaluation is
shared out across ranks and all of them must evaluate the same weights, which costs one fp32 copy per rank.

The offline command averages (in fp32) the checkpoints of a run whose steps lie in [start_step, end_step],
evaluates the average on the run's validation windows exactly as train.py does, next to the last checkpoint of
the range, and with --out saves the average as a weight file (a dict with 'model', 'model_config', 'step' and
'average'; it loads with weights_only=True, and sample.py accepts it as --ckpt). --merge=uniform (the default)
is the plain mean; --merge=SHAPE (linear, 1-sqrt, any cooldown shape of schedules.py) weights the checkpoints with
the coefficients that stand for a cooldown of that shape over the range (WSM, arXiv 2507.17634; see merge_weights),
printed before the losses. Both go through the same weighted running mean (average_checkpoints).
"""

import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from lab import checkpoint, parallel, precision
from lab.config import ConfigError, Setting, fail, parse_args, read_json
from lab.data import DataError
from schedules import ScheduleError, cooldown_multiplier, parse_cooldown_shape


def unwrap(model):
    """The module that owns the parameters, under torch.compile (`_orig_mod`) and DDP (`module`) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def _distinct_floats(state):
    """Names of the distinct floating tensors of a state dict, and {alias: name} for tensors tied to another."""
    names, aliases, seen = [], {}, {}
    for name, t in state.items():
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
            continue
        local = t.to_local() if hasattr(t, "to_local") else t  # an FSDP shard (DTensor) has no storage of its own
        key = (local.data_ptr(), t.shape, local.stride()) if t.numel() else name  # empty tensors share no storage
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            names.append(name)
    return names, aliases


def copy_all(targets, sources):
    """targets[i].copy_(sources[i]) for each i. Not torch._foreach_copy_: FSDP's sharded tensors (DTensor) lack it."""
    for target, source in zip(targets, sources, strict=True):
        target.copy_(source)


def _model_floats(model):
    """(names, aliases, tensors) of the model's averaged tensors; the tensors are the live parameters."""
    state = unwrap(model).state_dict(keep_vars=True)
    names, aliases = _distinct_floats(state)
    return names, aliases, [state[n].detach() for n in names]


def _fold(mean, weights, share):
    """mean <- mean + share * (w - mean), in fp32: with share = 1 / (count + 1), the uniform mean of `count` earlier
    values and `weights`; with share = c / (c_0 + ... + c), the weighted mean of coefficients c_0 .. c.

    A running mean (rather than a sum) keeps the average's magnitude, so its rounding error stays at
    about count * 2^-24 * max|w| however long the window, and it is directly usable as weights.
    """
    with torch.no_grad():  # a block, not a decorator: the mutation run (mutmut) mutates undecorated functions only
        weights = [w.float() for w in weights]  # no copy when already fp32
        if share == 1.0:
            copy_all(mean, weights)  # exact: a restarted window forgets the previous one entirely
        else:
            torch._foreach_lerp_(mean, weights, share)


def _as_state(names, aliases, tensors):
    state = dict(zip(names, tensors))
    state.update({alias: state[name] for alias, name in aliases.items()})
    return state


def _load_tensors(own, names, saved, what):
    """Copy a saved {name: tensor} into our fp32 buffers, after checking it belongs to this model."""
    if set(saved) != set(names):
        raise checkpoint.CheckpointError(f"the checkpoint's {what} average does not hold this model's tensors")
    copy_all(own, [saved[n] for n in names])


def _check_settings(what, saved, current):
    for key, value in current.items():
        if saved[key] != value:
            raise checkpoint.CheckpointError(f"the checkpoint's {what} average used {key}={saved[key]}, this run "
                                             f"{key}={value}: keep the setting or start without the average")


class SWA:
    """Uniform averages over fixed windows of steps; `completed()` is the latest window's average."""

    def __init__(self, model, interval, window):
        if interval < 1 or window < 1 or window % interval:
            raise ConfigError(f"swa_window={window} must be a positive multiple of swa_interval={interval}")
        self.interval, self.window = interval, window
        self.names, self.aliases, tensors = _model_floats(model)
        self._current = [torch.zeros_like(t, dtype=torch.float32) for t in tensors]
        self._count = 0  # snapshots in _current
        self._window_index = None  # k of the window _current accumulates
        self._completed = None  # fp32 tensors of the latest completed window (allocated when the first completes)
        self._completed_info = None  # (window index, snapshots) of _completed

    def update(self, step, model):
        """Call after every optimizer step; `step` = finished updates. Folds in the weights at multiples of interval.

        A window entered mid-way (an SWA created at a step inside a window) completes with the snapshots it saw.
        """
        if step % self.interval:
            return
        index = (step - 1) // self.window
        if index != self._window_index:
            self._window_index, self._count = index, 0
        _fold(self._current, _model_floats(model)[2], 1.0 / (self._count + 1))
        self._count += 1
        if step % self.window == 0:  # the window's last step: its average becomes the one to evaluate
            if self._completed is None:
                self._completed = [torch.empty_like(t) for t in self._current]
            # swap rather than copy: the next fold overwrites the older buffer (see _fold's share == 1)
            self._completed, self._current = self._current, self._completed
            self._completed_info = (index, self._count)
            self._window_index, self._count = None, 0

    def completed(self):
        """{name: fp32 tensor} of the latest completed window, or None before one completes.

        The tensors are the live buffers: valid until the next window completes (clone to keep longer).
        """
        return None if self._completed is None else _as_state(self.names, self.aliases, self._completed)

    def completed_window(self):
        """(window index k, number of snapshots) of completed(), or None: window k ends at step (k+1)*window."""
        return self._completed_info

    def state_dict(self):
        return dict(interval=self.interval, window=self.window, count=self._count, window_index=self._window_index,
                    current=dict(zip(self.names, self._current)), completed_info=self._completed_info,
                    completed=None if self._completed is None else dict(zip(self.names, self._completed)))

    def load_state_dict(self, state):
        _check_settings("SWA", state, dict(interval=self.interval, window=self.window))
        _load_tensors(self._current, self.names, state["current"], "SWA")
        self._count, self._window_index = state["count"], state["window_index"]
        self._completed_info = state["completed_info"]
        if state["completed"] is None:
            self._completed = None
        else:
            self._completed = self._completed or [torch.empty_like(t) for t in self._current]
            _load_tensors(self._completed, self.names, state["completed"], "SWA")


class EMA:
    """Exponential moving average of the weights, updated every `interval` steps; starts from the model's weights."""

    def __init__(self, model, decay, interval):
        if not 0.0 <= decay < 1.0 or interval < 1:
            raise ConfigError(f"ema_decay={decay} must lie in [0, 1) and ema_interval={interval} be at least 1")
        self.decay, self.interval = decay, interval
        self.names, self.aliases, tensors = _model_floats(model)
        self._average = [t.detach().float().clone() for t in tensors]
        self.updates = 0

    def update(self, step, model):
        """Call after every optimizer step; `step` = finished updates."""
        if step % self.interval == 0:
            with torch.no_grad():  # a block, not a decorator: see _fold
                weights = [w.float() for w in _model_floats(model)[2]]
                torch._foreach_lerp_(self._average, weights, 1.0 - self.decay)  # decay * ema + (1 - decay) * w
            self.updates += 1

    def average(self):
        """{name: fp32 tensor}: the live buffers (clone to keep a copy)."""
        return _as_state(self.names, self.aliases, self._average)

    def state_dict(self):
        return dict(decay=self.decay, interval=self.interval, updates=self.updates,
                    average=dict(zip(self.names, self._average)))

    def load_state_dict(self, state):
        _check_settings("EMA", state, dict(decay=self.decay, interval=self.interval))
        _load_tensors(self._average, self.names, state["average"], "EMA")
        self.updates = state["updates"]


@contextmanager
def swapped_weights(model, weights):
    """Put averaged weights into the model for the duration of the block, then restore the training weights bitwise.

        with swapped_weights(raw_model, swa.completed()):
            val_loss_swa = evaluate(model, ...)   # the compiled / DDP wrapper sees the same parameters
    """
    if weights is None:
        raise ValueError("no averaged weights to evaluate yet")
    names, _, tensors = _model_floats(model)
    if not set(names) <= set(weights):
        raise ValueError(f"the averaged weights lack {sorted(set(names) - set(weights))[:3]}")
    with torch.no_grad():
        saved = [t.clone() for t in tensors]  # same dtype: restoring is an exact copy
        copy_all(tensors, [weights[n] for n in names])  # fp32 -> the model's dtype
    try:
        yield
    finally:
        with torch.no_grad():
            copy_all(tensors, saved)


def save_weights(path, weights, model_config, step, average):
    """A weight file: averaged weights, the model's shape, the last step averaged, and how they were averaged."""
    checkpoint.save_file(dict(model=weights, model_config=model_config, step=step, average=average), path)


def save_average_files(out_dir, swa, ema, model_config, step, master):
    """At a checkpoint of train.py: the latest completed SWA window's average as out_dir/swa.pt, the EMA as ema.pt.
    They stay single files of full tensors, written by rank 0; every process calls this, since each of FSDP's
    sharded tensors is gathered by all of them."""
    weights = parallel.gathered(dict(swa=swa and swa.completed(), ema=ema and ema.average()))
    if not master:
        return
    if weights["swa"] is not None:
        index, snapshots = swa.completed_window()
        save_weights(Path(out_dir) / "swa.pt", weights["swa"], model_config, (index + 1) * swa.window,
                     dict(kind="swa", interval=swa.interval, window=swa.window, snapshots=snapshots))
    if ema:
        save_weights(Path(out_dir) / "ema.pt", weights["ema"], model_config, step,
                     dict(kind="ema", decay=ema.decay, interval=ema.interval))


# ---- offline: average or merge the checkpoints of a finished run ----

OFFLINE_SETTINGS = dict(
    run=Setting("", "a train.py out_dir whose checkpoints are averaged"),
    start_step=Setting(0, "the first step of the checkpoints averaged", ">= 0"),
    end_step=Setting(None, "the last (None: the last checkpoint)", ">= 0", (int, type(None))),
    merge=Setting("uniform", "uniform (the mean) or a cooldown shape whose WSM coefficients weight the checkpoints"),
    out=Setting("", "a new file for the averaged weights (empty: not saved)"),
    data_dir=Setting(None, "the data to evaluate on (None: the run's)", types=(str, type(None))),
    eval_tokens=Setting(None, "validation tokens (None: the run's)", ">= 1", (int, type(None))),
    eval_batch_size=Setting(None, "sequences per evaluation forward (None: the run's)", ">= 1", (int, type(None))),
    device=Setting("auto", "auto, cpu, cuda, cuda:N or mps"),
    dtype=Setting("auto", "the precision (auto: the one the run was trained in, that of its logged losses)",
                  precision.DTYPES),
)


def merge_weights(steps, merge):
    """The checkpoints' relative weights for --merge: 'uniform' 1 each; a cooldown shape, its WSM coefficients.

    Merging checkpoints s_0 < ... < s_k of a constant-LR run with coefficients c_j (summing to 1) gives the weights
    of s_0 plus the updates of interval i (from s_{i-1} to s_i, i = 1..k) scaled by w_i = c_i + ... + c_k, as a
    decaying LR would scale them (to first order: the real updates depend on the path). So a decay of multipliers
    w_1..w_k gives c_0 = 1 - w_1, c_j = w_j - w_{j+1}, c_k = w_k. Here w_i is the mean multiplier that a cooldown
    of this shape over K = s_k - s_0 steps from s_0 (to 0, as wsd) gives the updates of interval i:
    w_i = mean over s_{i-1} <= s < s_i of cooldown_multiplier((s - s_0) / K), the mean lr_multiplier of those steps
    in a wsd run of max_steps s_k and cooldown_steps K. With a checkpoint every step, w_i is exactly the cooldown's
    multiplier of each update; m steps apart, one w_i stands for m updates (the mean of their multipliers, so the
    window's summed LR is the cooldown's), and the spacing may vary.
    """
    if merge == "uniform":
        return [1.0] * len(steps)  # equal weights give the exact shares 1/(j+1) of SWA's running mean
    span = steps[-1] - steps[0]
    w = [sum(cooldown_multiplier((s - steps[0]) / span, merge, 0.0) for s in range(a, b)) / (b - a)
         for a, b in zip(steps, steps[1:])]
    return [1.0 - w[0], *(w[i] - w[i + 1] for i in range(len(w) - 1)), w[-1]] if w else [1.0]


def average_checkpoints(paths, weights=None):
    """(fp32 mean of the checkpoints' weights, weighted by `weights` (default: equally; any positive total, they are
    normalised), model_config, last checkpoint's state), with one checkpoint in memory at a time: checkpoint j
    enters the running mean with share weights[j] / (weights[0] + ... + weights[j]) (see _fold)."""
    weights = [1.0] * len(paths) if weights is None else weights
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"{len(paths)} checkpoints need as many weights >= 0 with a positive sum, got {weights}")
    mean = names = aliases = model_config = state = None
    total = 0.0
    for path, weight in zip(paths, weights):
        state = checkpoint.load(path)
        if model_config is None:
            model_config = state["model_config"]
            names, aliases = _distinct_floats(state["model"])
            mean = [torch.empty_like(state["model"][n], dtype=torch.float32) for n in names]
        elif state["model_config"] != model_config:
            raise checkpoint.CheckpointError(f"{path} holds another model ({state['model_config']}) than "
                                             f"{paths[0]} ({model_config})")
        if weight > 0:  # zero (c_0 of a merge of checkpoints 1 step apart: the cooldown starts at 1) adds nothing
            total += weight
            _fold(mean, [state["model"][n] for n in names], weight / total)
    return _as_state(names, aliases, mean), model_config, state


def check_merge(merge):
    """--merge must be 'uniform' or a cooldown shape of schedules.py; ConfigError otherwise."""
    if merge != "uniform":
        try:
            parse_cooldown_shape(merge)
        except ScheduleError as e:
            raise ConfigError(f"--merge={merge}: neither 'uniform' nor a cooldown shape ({e})") from None


def main(argv):
    """Average or merge, evaluate, print, and with --out save. Returns dict(average, last: val losses, steps,
    coefficients: normalised weights, eval_tokens)."""
    from lab.data import Dataset
    from lab.evaluation import autocast_for, evaluate
    from lab.runs import data_fingerprint
    from lab.shards import short
    from model import GPT, GPTConfig
    from lab.parallel import setup_device

    cfg = parse_args(argv, OFFLINE_SETTINGS)
    check_merge(cfg["merge"])
    run = Path(cfg["run"])
    if not (run / "config.json").is_file():
        raise ConfigError(f"no run in '{cfg['run']}' (no config.json): give --run=<a train.py out_dir>")
    info = read_json(run / "config.json")
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise ConfigError(f"{run / 'config.json'} is not a train.py config.json (no config)")
    run_cfg = info["config"]
    if cfg["out"] and not Path(cfg["out"]).resolve().parent.is_dir():  # found now, not after the averaging
        raise ConfigError(f"--out={cfg['out']}: folder {Path(cfg['out']).parent} does not exist")
    if cfg["out"] and Path(cfg["out"]).exists():  # a checkpoint, a weight file: never replaced
        raise ConfigError(f"--out={cfg['out']} exists: give a new file")
    end_step = float("inf") if cfg["end_step"] is None else cfg["end_step"]
    found = checkpoint.list_checkpoints(run)
    chosen = [(s, p) for s, p in found if cfg["start_step"] <= s <= end_step]
    if not chosen:
        end = "end" if cfg["end_step"] is None else cfg["end_step"]
        raise ConfigError(f"no checkpoint of {run} lies in steps [{cfg['start_step']}, {end}]; it has "
                          f"{', '.join(str(s) for s, _ in found) or 'none'}")
    steps = [s for s, _ in chosen]
    weights = merge_weights(steps, cfg["merge"])
    coefficients = [w / sum(weights) for w in weights]
    average, model_config, last = average_checkpoints([p for _, p in chosen], weights)

    # evaluate as train.py does: its validation windows, batch size and (dtype=auto) precision
    device = setup_device(cfg["device"])
    chosen = precision.for_run(cfg["dtype"], device, GPTConfig(**model_config), run_cfg["dtype"])
    if chosen.warning:
        print(f"warning: {chosen.warning}")
    autocast = autocast_for(device, chosen.torch_dtype)
    data = Dataset(cfg["data_dir"] or run_cfg["data_dir"])
    if not cfg["data_dir"] and data_fingerprint(info) not in (None, data.fingerprint):  # its folder prepared again
        raise ConfigError(f"{run} read data {short(data_fingerprint(info))}, but its data_dir {run_cfg['data_dir']} "
                          f"now holds {short(data.fingerprint)}: give --data_dir=<the data it read>, or another on purpose")
    eval_tokens = cfg["eval_tokens"] or run_cfg["eval_tokens"]
    val_x, val_y = (t.to(device) for t in data.val_windows(eval_tokens, run_cfg["seq_len"]))
    batch = cfg["eval_batch_size"] or run_cfg["eval_batch_size"]
    model = GPT(GPTConfig(**model_config)).to(device)
    losses = {}
    for name, weights in (("average", average), ("last", last["model"])):
        model.load_state_dict(weights)
        losses[name] = evaluate(model, val_x, val_y, batch, autocast, rank=0, world_size=1)

    what = "average" if cfg["merge"] == "uniform" else f"{cfg['merge']} merge"
    print(f"averaged {len(steps)} checkpoints of {run}: steps {', '.join(map(str, steps))}")
    print(f"coefficients ({cfg['merge']}): " + ", ".join(f"{s}: {c:.4f}" for s, c in zip(steps, coefficients)))
    print(f"val loss {losses['average']:.4f} of the {what} of steps {steps[0]}-{steps[-1]}, "
          f"{losses['last']:.4f} of the last checkpoint (step {steps[-1]}); {eval_tokens} tokens")
    if cfg["out"]:
        save_weights(cfg["out"], average, model_config, steps[-1],
                     dict(kind="checkpoints", run=str(run), steps=steps, merge=cfg["merge"], coefficients=coefficients,
                          val_loss=losses["average"]))
        print(f"saved the averaged weights to {cfg['out']}")
    return dict(losses, steps=steps, coefficients=coefficients, eval_tokens=eval_tokens)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ConfigError, DataError, checkpoint.CheckpointError) as e:
        fail(str(e))
