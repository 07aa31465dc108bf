"""
Command-line configuration shared by every script, in nanoGPT's style.

    python train.py configs/cpu_tiny.py --max_steps=100 --lr=3e-3

Settings are resolved in order: the script's defaults, then each config file named on the command line
(plain Python assignments, executed as code: only run config files you trust, as with nanoGPT), then each
`--key=value` override. Values are parsed with `ast.literal_eval` (so `--lr=1e-3`, `--compile=False`,
`--keep_ckpt_steps=[100,200]` work) and fall back to the raw string (`--cooldown_shape=1-sqrt`);
a bare `--flag` sets a boolean key to True. `--help` (or `-h`) prints the script's docstring and every setting
with its default, and exits.
A key the script does not know, or a value of the wrong type, is a `ConfigError` naming it.
"""

import ast
import difflib
import json
import os
import sys
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


def read_json(path, lines=False):
    """The JSON document in `path` (or with lines=True, the list of one per line); ConfigError if unreadable."""
    try:
        text = path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()] if lines else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _unknown_key(key, known):
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _accepts(value, allowed):
    # bool is a subclass of int: a flag must not silently become a number, nor a number a flag.
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed and int not in allowed:
        return True
    return isinstance(value, tuple(t for t in allowed if t is not bool))


def _coerce(key, value, defaults, types):
    allowed = types.get(key) or (type(defaults[key]),)
    if not isinstance(allowed, tuple):
        allowed = (allowed,)
    if not _accepts(value, allowed):
        names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"config key '{key}' expects {names}, got {value!r} ({type(value).__name__})")
    if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
        value = float(value)
    return value


def _parse_value(text, default_type):
    if default_type is str:
        return text  # a path or a name stays a string even when it looks like a number
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _print_help(defaults):
    """The running script's docstring (its commands), then each setting it accepts with its default."""
    print((sys.modules["__main__"].__doc__ or "").strip())
    print("\nSettings (--key=value) and their defaults:")
    width = max(map(len, defaults))
    for key, value in defaults.items():
        print(f"  --{key:<{width}}  {value!r}")


def parse_args(argv, defaults, types=None):
    """Resolve defaults <- config files <- --key=value overrides; return a new dict.

    `types` maps a key to the type (or tuple of types) it accepts, for keys whose default alone does not say,
    e.g. {'cooldown_steps': (int, type(None))}.
    """
    if "--help" in argv or "-h" in argv:
        _print_help(defaults)
        sys.exit(0)
    types = types or {}
    config = dict(defaults)
    for arg in argv:
        if arg.startswith("--"):
            key, sep, text = arg[2:].partition("=")
            if key not in defaults:
                raise _unknown_key(key, list(defaults))
            if not sep:
                if isinstance(defaults[key], bool):  # a bare --flag switches a boolean on
                    config[key] = True
                    continue
                raise ConfigError(f"override '{arg}' needs a value: --{key}=VALUE")
            allowed = types.get(key) or (type(defaults[key]),)
            str_only = allowed in (str, (str,))
            config[key] = _coerce(key, _parse_value(text, str if str_only else None), defaults, types)
        else:
            for key, value in config_file(arg).items():
                if key not in defaults:
                    raise ConfigError(f"in {arg}: {_unknown_key(key, list(defaults))}")
                config[key] = _coerce(key, value, defaults, types)
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
