"""bench/mutation.py: its command line (the modules it knows, one line for one it does not), every target's files
there to mutate and test, and a module's score from mutmut's statuses (equivalent mutants apart)."""
import pytest

from bench import mutation
from helpers import REPO
from lab.config import ConfigError


def test_list_prints_every_module_and_an_unknown_one_is_one_line(capsys):
    mutation.main(["--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(mutation.TARGETS)
    with pytest.raises(ConfigError, match=r"^unknown module 'shedules' \(did you mean 'schedules'\?\); expected some "
                                          r"of schedules, "):
        mutation.main(["shedules", "--list"])
    with pytest.raises(ConfigError, match=r"^children=0: must be >= 1$"):
        mutation.main(["schedules", "--children=0"])


def test_every_target_names_files_that_exist():
    for name, target in mutation.TARGETS.items():
        assert (REPO / target.path).is_file(), name
        assert all((REPO / test).is_file() for test in target.tests), name
        assert all((REPO / test.split("::")[0]).is_file() for test in target.deselect), name


def test_a_module_s_score_counts_killed_mutants_of_the_non_equivalent_ones(monkeypatch):
    monkeypatch.setattr(mutation, "EQUIVALENT", {"m.x_f__mutmut_3": "the same value"})
    statuses = {"m.x_f__mutmut_1": "killed", "m.x_f__mutmut_2": "timeout", "m.x_f__mutmut_3": "survived",
                "m.x_f__mutmut_4": "survived", "m.x_f__mutmut_5": "no tests"}
    assert mutation.score(statuses) == dict(
        killed=2, non_equivalent=4, equivalent=["m.x_f__mutmut_3"],
        survivors={"m.x_f__mutmut_4": "survived", "m.x_f__mutmut_5": "no tests"})


def test_survivors_run_only_the_survivors_and_nothing_when_none_is_left(monkeypatch, tmp_path):
    """--survivors passes mutmut the survivors that are not known equivalent; with none of them left it runs nothing
    (`mutmut run` without names would run every mutant of the file, those outside the target's functions too)."""
    monkeypatch.setattr(mutation, "OUT", tmp_path)
    (tmp_path / "schedules").mkdir()
    monkeypatch.setattr(mutation, "EQUIVALENT", {"m.x_f__mutmut_3": "the same value"})
    statuses = {"m.x_f__mutmut_1": "killed", "m.x_f__mutmut_3": "survived", "m.x_f__mutmut_4": "no tests"}
    monkeypatch.setattr(mutation, "statuses", lambda folder, target: statuses)
    commands = []
    monkeypatch.setattr(mutation.subprocess, "run", lambda command, **kwargs: commands.append(command))
    assert mutation.run_module("schedules", mutation.TARGETS["schedules"], 2, survivors=True) == statuses
    assert commands == [[mutation.MUTMUT, "run", "--max-children=2", "m.x_f__mutmut_4"]]
    statuses["m.x_f__mutmut_4"] = "killed"
    mutation.run_module("schedules", mutation.TARGETS["schedules"], 2, survivors=True)
    assert len(commands) == 1
