"""
What a script may replace or delete in a folder it writes into again and again (plot.py's figures, gpu_check.py's
runs, the benchmarks' output): only what it wrote there before. The folder keeps the names of the files and folders
the script wrote (`.written_by_<script>.json`, its manifest); a name there that the manifest does not list is the
user's, and the script refuses to replace it.

    earlier = owned.claim(out, "plot.py", names)      # what plot.py wrote in `out` before; ConfigError if one of
                                                      # `names` is there and plot.py did not write it
    owned.record(out, "plot.py", earlier | names)     # before writing: an interrupted call still owns its files
    ...
    owned.record(out, "plot.py", written)             # after: what the folder holds of this script's
"""

import json
from pathlib import Path

from lab.config import ConfigError, read_json, write_atomically


def manifest(folder, script):
    return Path(folder) / f".written_by_{Path(script).stem}.json"


def written_before(folder, script):
    """The names `script` wrote in `folder` (its manifest), or none."""
    path = manifest(folder, script)
    return set(read_json(path)) if path.is_file() else set()


def claim(folder, script, names, alone=False):
    """Make `folder` one that `script` may write `names` into, and return what it wrote there before. Refused, in one
    line, where one of `names` exists and `script` did not write it; with alone=True, where the folder holds
    anything `script` did not write (a folder of its own: gpu_check.py's runs)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder")
    earlier = written_before(folder, script)
    present = {p.name for p in folder.iterdir()} - {manifest(folder, script).name} if folder.is_dir() else set()
    foreign = sorted(present - earlier if alone else (present & set(names)) - earlier)
    if foreign:
        what = "holds" if alone else "already has"
        raise ConfigError(f"{folder} {what} {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which "
                          f"{script} did not write: give it a folder of its own (an empty or new one)")
    folder.mkdir(parents=True, exist_ok=True)
    return earlier


def record(folder, script, names):
    """The manifest of `folder`: `script` wrote `names` there."""
    write_atomically(manifest(folder, script), lambda tmp: tmp.write_text(json.dumps(sorted(names), indent=0) + "\n"))
