"""The repository's shape: the root holds what users run, the package lab/ the library (importing from the root only
the paper's two definitions, model.py and schedules.py), bench/ the benchmarks; no import circles; train.py reads
in one sitting; no function over 100 lines; every script says in its docstring how to run it, prints it and every
setting on --help, and checks the range of every numeric setting; code, tests and docs name no tracker number and
no evidence outside the repository."""
import ast
import re

import pytest

from helpers import REPO

OURS = {path.stem for path in REPO.glob("*.py")}
ROOT_FOR_THE_PACKAGE = {"model", "schedules"}  # the paper's definitions: they import nothing of ours


def python_files():
    return [p for folder in (REPO, REPO / "lab", REPO / "bench") for p in sorted(folder.glob("*.py"))]


def module_name(path):
    return path.stem if path.parent == REPO else f"{path.parent.name}.{path.stem}"


def imports(path):
    """Our modules `path` imports, at any depth of its code: 'train', 'lab.settings', 'bench.gpu', ..."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if node.module in ("lab", "bench") else node.module
                     for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in OURS | {"lab", "bench"}}
    return found - {"lab", "bench"}


def test_the_root_holds_at_most_15_scripts_and_the_library_is_one_package():
    assert len(list(REPO.glob("*.py"))) <= 15
    assert (REPO / "lab" / "__init__.py").is_file() and (REPO / "bench" / "__init__.py").is_file()


def test_the_package_imports_no_entry_point_and_nothing_imports_a_benchmark():
    for path in python_files():
        mine = imports(path)
        if path.parent.name == "lab":
            assert {m for m in mine if "." not in m} <= ROOT_FOR_THE_PACKAGE, (path, mine)
        if path.stem in ROOT_FOR_THE_PACKAGE and path.parent == REPO:
            assert not mine, (path, mine)
        if path.parent.name != "bench":
            assert not any(m.startswith("bench.") for m in mine), (path, mine)


def test_no_import_circles():
    graph = {module_name(p): {m for m in imports(p)} for p in python_files()}

    def visit(module, trail):
        assert module not in trail, " -> ".join([*trail, module])
        for imported in graph.get(module, ()):
            visit(imported, [*trail, module])
    for module in graph:
        visit(module, [])


def test_train_reads_in_one_sitting_and_no_function_is_over_100_lines():
    assert len((REPO / "train.py").read_text().splitlines()) <= 350
    long = [(path.name, node.name, node.end_lineno - node.lineno + 1) for path in python_files()
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100]
    assert long == []


def test_every_script_says_how_to_run_it():
    for path in python_files():
        text = path.read_text()
        if 'if __name__ == "__main__":' in text:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "python " in doc or "torchrun " in doc, path


def test_no_docstring_loses_a_line_continuation():
    """A backslash at a line's end in a docstring joins two command lines when --help prints it: raw strings keep it."""
    for path in python_files():
        text = path.read_text()
        first = ast.parse(text).body[0] if ast.parse(text).body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            source = ast.get_source_segment(text, first.value)
            assert "\\\n" not in source or source.startswith(("r", "R")), path


# Each script with its settings table (None: no settings) and how it is run: --help prints its commands and every key.
SCRIPTS = ["train.py", "sample.py", "prepare_data.py", "plot.py", "export.py", "checkpoint.py", "swa.py", "sweep.py",
           "branch.py", "gpu_check.py", "predict.py", "schedules.py", "model.py", "bench/speed.py", "bench/data.py",
           "bench/nanogpt.py", "bench/gpu.py", "bench/checkpoint.py", "bench/restart.py", "bench/mutation.py",
           "bench/recipes.py", "bench/law_limit.py"]


def script_settings(name):
    """The settings table the script's --help must list (None: it takes none)."""
    import importlib
    from lab import settings
    module = importlib.import_module(module_name(REPO / name))
    tables = dict(sweep="SWEEP_SETTINGS", swa="OFFLINE_SETTINGS")
    if name == "branch.py":
        return {**settings.SETTINGS, **module.BRANCH_SETTINGS}
    if name == "gpu_check.py":
        return module.check_settings([])
    if name == "train.py":
        return settings.SETTINGS
    return getattr(module, tables.get(module.__name__, "SETTINGS"), None)


def test_every_script_s_help_prints_its_usage_and_every_setting_and_exits_0(monkeypatch, capsys):
    import runpy
    import sys
    assert sorted(SCRIPTS) == sorted(str(p.relative_to(REPO)) for p in python_files()
                                     if 'if __name__ == "__main__":' in p.read_text())
    for name in SCRIPTS:
        command = f"-m {module_name(REPO / name)}" if name.startswith("bench/") else f"python {name}"  # or torchrun
        monkeypatch.setattr(sys, "argv", [name, "--help"])
        try:
            runpy.run_path(str(REPO / name), run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = exit.code
        out = capsys.readouterr().out
        assert code in (0, None) and command in out, (name, code, out[:300])
        table = script_settings(name)
        assert table is None or all(f"  --{key} " in out for key in table), name


def test_every_numeric_setting_of_every_script_says_what_it_allows_and_refuses_what_it_does_not():
    """-1 lies outside every range here (none reaches below 0): each numeric setting refuses it in one line."""
    from lab.config import ConfigError, parse_args
    checked = 0
    for name in SCRIPTS:
        for key, setting in (script_settings(name) or {}).items():
            if {*setting.accepted_types(), setting.items} & {int, float} and not isinstance(setting.default, bool):
                assert setting.allowed is not None, (name, key)
                bad = [-1] if setting.items else -1
                with pytest.raises(ConfigError, match=rf"^{key}=\[?-1(\.0)?\]?: (each item )?must be "):
                    parse_args([f"--{key}={bad!r}"], script_settings(name))
                checked += 1
    assert checked > 100  # train.py's 34 in every script that runs it, and the scripts' own


# (a colour such as #000000, six hex digits, is not a tracker number)
TRACKER = re.compile(r"(?i)\b(?:issue|ticket|pull request|PR)s?\s*#?\d+\b|(?<![\w&#/])#(?![0-9a-f]{6}\b)\d+\b")
OUTSIDE = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+|(?<![\w.])/(?:work|home|Users|root|mnt|opt)/[\w./-]*")
MARKDOWN = re.compile(r"(?<![\w.-])([\w-]+\.md)\b")


def text_files():
    """Code, tests, docs and CI: every file of the repository a reader reads (not the logs and data it holds)."""
    found = [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts and p.suffix in (".py", ".md")]
    return sorted(found) + [REPO / ".ci" / "run", REPO / "pytest.ini", *sorted(REPO.glob("requirements*.txt"))]


def test_code_tests_and_docs_name_no_tracker_numbers_and_no_evidence_outside_the_repository():
    """No tracker numbers: a reader of the repository has no tracker. No path outside the repository (a folder beside
    it, a machine's absolute path) and no markdown file it lacks: what a claim rests on is in it (results/perf/)."""
    documents = {p.name for p in REPO.rglob("*.md") if ".git" not in p.parts}
    found = []
    for path in text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{number}"
            found += [f"{where}: {m[0]}" for m in TRACKER.finditer(line)]
            base = path.parent if path.suffix == ".md" else REPO  # a document's links, the code's commands
            found += [f"{where}: {m[0]}" for m in OUTSIDE.finditer(line)
                      if m[0].startswith("/") or not (base / m[0]).resolve().is_relative_to(REPO)]
            found += [f"{where}: {m[1]}" for m in MARKDOWN.finditer(line) if m[1] not in documents]
    assert found == []
