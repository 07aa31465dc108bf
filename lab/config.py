"""
Command-line configuration shared by every script, in nanoGPT's style.

    python train.py configs/cpu_tiny.py --max_steps=100 --lr=3e-3

A script's settings are a table {key: Setting}: each setting defined once, with its default, the types it accepts,
a one-line help and the values allowed (a range of numbers or a list of choices). DEFAULTS, TYPES, the range
checks, `--help` and the documentation's test all come from that table.

Settings are resolved in order: the script's defaults, then each config file named on the command line
(plain Python assignments, executed as code: only run config files you trust, as with nanoGPT), then each
`--key=value` override. Values are parsed with `ast.literal_eval` (so `--lr=1e-3`, `--compile=False`,
`--keep_ckpt_steps=[100,200]` work) and fall back to the raw string (`--cooldown_shape=1-sqrt`);
a bare `--flag` sets a boolean key to True. `--help` (or `-h`) prints the script's docstring (its commands) and
every setting with its default, its help and what it allows, and exits.
A key the script does not know (with the closest name, or nanoGPT's name for it, suggested: NANOGPT), a value of
the wrong type, or one outside what the setting allows is a `ConfigError` naming it, before anything is built.
"""

import ast
import difflib
import json
import operator
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path


class ConfigError(ValueError):
    """Bad configuration given by the user; the message is one line meant for them."""


def fail(message):
    """Print one clear line and exit non-zero: how every script reports bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def write_atomically(path, write):
    """write(temporary path beside `path`), flush it to disk, then rename it over `path`: a reader, or a run killed
    midway, sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_figure(fig, path, dpi):
    """A matplotlib figure as `path` (its format from the suffix), atomically; a PDF without its creation date, so
    that the same figure drawn again is the same file (a regenerated figure that did not change shows no change)."""
    metadata = {"CreationDate": None} if Path(path).suffix == ".pdf" else None
    return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:],
                                                          metadata=metadata))


def read_json(path, lines=False):
    """The JSON document in `path` (or with lines=True, the list of one per line); ConfigError if unreadable."""
    try:
        text = path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()] if lines else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


@dataclass(frozen=True)
class Setting:
    """One setting of a script. `allowed`: a range of numbers ('> 0', '>= 1', '[0, 1)': a bracket includes its end)
    or a tuple of the values allowed; None allows any value of its types. `types`: the types it accepts, where the
    default's type alone does not say (e.g. (int, type(None))). `items`: a list's item type; each item must also lie
    in `allowed`."""
    default: object
    help: str
    allowed: object = None
    types: tuple = None
    items: type = None

    def accepted_types(self):
        return self.types or (type(self.default),)

    def describe_allowed(self):
        """What the setting allows, in words: '> 0', 'in [0, 1)', 'one of ddp, fsdp', each '... or None'."""
        if self.allowed is None:
            return ""
        if isinstance(self.allowed, tuple):
            text = "one of " + ", ".join(map(str, self.allowed))
        else:
            text = f"in {self.allowed}" if self.allowed[0] in "[(" else self.allowed
        return text + (" or None" if type(None) in self.accepted_types() else "")


def with_defaults(table, **defaults):
    """The table with other defaults for some keys (a script that runs train.py's settings with its own)."""
    return {key: replace(setting, default=defaults[key]) if key in defaults else setting
            for key, setting in table.items()}


def defaults_of(table):
    """{key: default} of a table of Settings: a script's DEFAULTS."""
    return {key: setting.default for key, setting in table.items()}


def types_of(table):
    """{key: types} of the settings whose default alone does not say what they accept: a script's TYPES."""
    return {key: setting.types for key, setting in table.items() if setting.types}


def as_table(defaults, types=None):
    """`defaults` itself when it is a table of Settings; else a table of {key: default} (with `types`, the types of
    the keys whose default does not say) whose settings have no help and allow any value of their types."""
    if all(isinstance(value, Setting) for value in defaults.values()):
        return defaults
    types = types or {}
    return {key: Setting(default, "", types=_as_tuple(types.get(key))) for key, default in defaults.items()}


def _as_tuple(types):
    return types if types is None or isinstance(types, tuple) else (types,)


# ---- nanoGPT's names: the settings of its train.py and sample.py (karpathy/nanoGPT 3adf61e) and ours ----

# {nanoGPT's key: [(our key, how the value converts)]}: the first pair whose key the script knows (None: no
# counterpart) is the hint of an unknown key; docs/training.md shows the table. Keys that are ours too are listed
# for the documentation, with what differs.
SAME = "the same"
NANOGPT = {
    "out_dir": [("out_dir", SAME), ("ckpt", "sample.py and export.py read a run's latest checkpoint from "
                                             "--ckpt=<out_dir>"), ("run", "swa.py reads --run=<out_dir>")],
    "init_from": [("init_from", "scratch and resume as in nanoGPT, or a checkpoint to branch from; OpenAI's "
                                "gpt2* weights are not loaded"),
                  ("ckpt", "sample.py: --ckpt=<out_dir> (its latest checkpoint) or one checkpoint")],
    "eval_interval": [("eval_interval", SAME)],
    "log_interval": [("log_interval", SAME)],
    "eval_iters": [("eval_tokens", "a fixed validation set of eval_tokens = eval_iters x batch_size x block_size "
                                   "tokens, the same windows at every evaluation")],
    "eval_only": [(None, "a run evaluates at step 0; swa.py --run=<out_dir> --start_step=N --end_step=N evaluates "
                         "the checkpoint of step N")],
    "always_save_checkpoint": [("ckpt_interval", "a checkpoint every ckpt_interval steps and at the end, whatever "
                                                 "the validation loss; keep_last_ckpts of them are kept")],
    "wandb_log": [("wandb_log", SAME)],
    "wandb_project": [("wandb_project", SAME)],
    "wandb_run_name": [("wandb_run_name", SAME)],
    "dataset": [("data_dir", "the folder prepare_data.py wrote, data/<dataset>-<tokenizer>, e.g. data/stdlib-bytes")],
    "gradient_accumulation_steps": [("batch_size", "batch_size is the global batch here, nanoGPT's batch_size x "
                                                   "gradient_accumulation_steps, and micro_batch_size is nanoGPT's "
                                                   "batch_size: the micro-steps follow from the two")],
    "batch_size": [("batch_size", "differs: the global batch of an optimizer step here (nanoGPT's batch_size x "
                                  "gradient_accumulation_steps); nanoGPT's batch_size is micro_batch_size")],
    "block_size": [("seq_len", "tokens per sequence")],
    "n_layer": [("n_layer", SAME)],
    "n_head": [("n_head", SAME)],
    "n_embd": [("n_embd", SAME)],
    "dropout": [(None, "the paper's models have no dropout")],
    "bias": [(None, "the paper's models have no biases, as nanoGPT's bias=False")],
    "learning_rate": [("lr", "the peak learning rate")],
    "max_iters": [("max_steps", "optimizer steps of the run")],
    "weight_decay": [("weight_decay", SAME)],
    "beta1": [("beta1", SAME)],
    "beta2": [("beta2", SAME)],
    "grad_clip": [("grad_clip", SAME)],
    "decay_lr": [("schedule", "decay_lr=True is schedule=cosine (nanoGPT's schedule), decay_lr=False is "
                              "schedule=constant")],
    "warmup_iters": [("warmup_steps", "the warmup's steps (from 1 % of the peak here, from 0 in nanoGPT)")],
    "lr_decay_iters": [("cycle_steps", "the cosine's length; None: max_steps, nanoGPT's usual lr_decay_iters = "
                                       "max_iters; a wsd cooldown's length is cooldown_steps or cooldown_frac of "
                                       "max_steps")],
    "min_lr": [("final_lr_frac", "a fraction of the peak: final_lr_frac = min_lr / learning_rate, e.g. 6e-5 / 6e-4 "
                                 "= 0.1, the cosine's default here")],
    "backend": [(None, "lab/parallel.py uses nccl for CUDA tensors and gloo for CPU ones")],
    "device": [("device", "the same, and auto (cuda, then mps, then cpu)")],
    "dtype": [("dtype", "the same, and auto (what the device computes fast: lab/precision.py)")],
    "compile": [("compile", SAME), (None, "sample.py generates without torch.compile")],
    "start": [("start", "the same, without nanoGPT's FILE: prefix")],
    "num_samples": [("num_samples", SAME)],
    "max_new_tokens": [("max_new_tokens", SAME)],
    "temperature": [("temperature", SAME)],
    "top_k": [("top_k", SAME)],
    "seed": [("seed", SAME)],
}


def _unknown_key(key, known):
    for ours, how in NANOGPT.get(key, ()):
        if ours is None:
            return ConfigError(f"unknown config key '{key}': nanoGPT's {key} has no counterpart here ({how})")
        if ours in known:
            return ConfigError(f"unknown config key '{key}': nanoGPT's {key} is {ours} here ({how})")
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


# ---- values: their types, then what each setting allows ----

def _accepts(value, allowed):
    # bool is a subclass of int: a flag must not silently become a number, nor a number a flag.
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed and int not in allowed:
        return True
    return isinstance(value, tuple(t for t in allowed if t is not bool))


def _coerce(key, value, setting):
    allowed = setting.accepted_types()
    if not _accepts(value, allowed):
        names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"config key '{key}' expects {names}, got {value!r} ({type(value).__name__})")
    if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
        value = float(value)
    return value


COMPARISONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _bound(text):
    base, _, power = text.strip().partition("**")  # '2**64'
    return float(base) ** float(power or 1)


def in_range(value, allowed):
    """Whether the number `value` lies in the range `allowed` ('> 0', '[0, 1)'); never for NaN."""
    if allowed[0] in "[(":
        low, high = map(_bound, allowed[1:-1].split(","))
        return ((low <= value if allowed[0] == "[" else low < value)
                and (value <= high if allowed[-1] == "]" else value < high))
    comparison, bound = allowed.split()
    return COMPARISONS[comparison](value, _bound(bound))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _allows(setting, value):
    if isinstance(setting.allowed, tuple):
        return value in setting.allowed
    if not _is_number(value):  # a setting's other types ('auto') are checked where they are used
        return True
    return in_range(value, setting.allowed)


def _is_item(value, items):
    """Whether a list's item has the setting's item type (a float setting takes ints too, a flag is no number)."""
    if items in (int, float):
        return _is_number(value) and (items is float or isinstance(value, int))
    return items is None or isinstance(value, items)


def check_values(config, table):
    """A ConfigError naming the first setting whose value the table does not allow: its key, its value and what is
    allowed. Each item of a list is checked, its type too where the setting names one."""
    for key, setting in table.items():
        value = config.get(key)
        if value is None or setting.allowed is None and setting.items is None:
            continue
        if isinstance(value, list):
            if not all(_is_item(v, setting.items) and (setting.allowed is None or _allows(setting, v)) for v in value):
                kind = f"{setting.items.__name__} " if setting.items else ""
                raise ConfigError(f"{key}={value!r}: each item must be {kind}{setting.describe_allowed()}".rstrip())
        elif setting.allowed is not None and not _allows(setting, value):
            raise ConfigError(f"{key}={value!r}: must be {setting.describe_allowed()}")


def _parse_value(text, default_type):
    if default_type is str:
        return text  # a path or a name stays a string even when it looks like a number
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def print_help(table):
    """The running script's docstring (its commands), then each setting: its default, its help, what it allows."""
    print((sys.modules["__main__"].__doc__ or "").strip())
    print("\nSettings (--key=value), their defaults and what they allow:")
    width = max(map(len, table))
    shown = {key: repr(setting.default) for key, setting in table.items()}
    value_width = min(max(map(len, shown.values())), 24)
    for key, setting in table.items():
        allowed = setting.describe_allowed()
        text = setting.help + (f" ({allowed})" if allowed and allowed not in setting.help else "")
        print(f"  --{key:<{width}}  {shown[key]:<{value_width}}  {text}".rstrip())


def parse_args(argv, defaults, types=None):
    """Resolve defaults <- config files <- --key=value overrides, each value checked; return a new dict.

    `defaults`: a table of Settings, or plainly {key: default} with `types` mapping a key to the type (or tuple of
    types) it accepts where its default alone does not say, e.g. {'cooldown_steps': (int, type(None))}.
    """
    table = as_table(defaults, types)
    if "--help" in argv or "-h" in argv:
        print_help(table)
        sys.exit(0)
    config = defaults_of(table)
    for arg in argv:
        if arg.startswith("--"):
            key, sep, text = arg[2:].partition("=")
            if key not in table:
                raise _unknown_key(key, list(table))
            setting = table[key]
            if not sep:
                if isinstance(setting.default, bool):  # a bare --flag switches a boolean on
                    config[key] = True
                    continue
                raise ConfigError(f"override '{arg}' needs a value: --{key}=VALUE")
            str_only = setting.accepted_types() == (str,)
            config[key] = _coerce(key, _parse_value(text, str if str_only else None), setting)
        else:
            for key, value in config_file(arg).items():
                if key not in table:
                    raise ConfigError(f"in {arg}: {_unknown_key(key, list(table))}")
                config[key] = _coerce(key, value, table[key])
    check_values(config, table)
    return config


def config_file(path):
    """{key: value} of the settings a config file assigns (names without a leading _, modules left out)."""
    if not Path(path).is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    namespace = {}
    try:
        exec(compile(Path(path).read_text(), str(path), "exec"), namespace)
    except Exception as e:  # a broken config file is the user's input: report it in one line
        raise ConfigError(f"config file '{path}' failed to run: {type(e).__name__}: {e}") from None
    return {key: value for key, value in namespace.items()
            if not key.startswith("_") and type(value).__name__ != "module"}
