"""lab/owned.py: a script replaces only what it wrote in a folder (its manifest), and a folder of its own holds
nothing else."""
import pytest

from lab import owned
from lab.config import ConfigError


def test_a_script_may_replace_only_the_names_it_wrote_before(tmp_path):
    folder = tmp_path / "figures"
    assert owned.claim(folder, "plot.py", {"a.png", "b.png"}) == set() and folder.is_dir()  # made
    owned.record(folder, "plot.py", {"a.png"})
    (folder / "a.png").write_text("plot.py's")
    (folder / "notes.txt").write_text("yours")  # another name: no matter
    assert owned.claim(folder, "plot.py", {"a.png", "b.png"}) == {"a.png"}
    (folder / "b.png").write_text("yours")
    with pytest.raises(ConfigError, match=rf"^{folder} already has b.png, which plot.py did not write"):
        owned.claim(folder, "plot.py", {"a.png", "b.png"})
    assert owned.written_before(folder, "other.py") == set()  # each script its own manifest


def test_a_folder_of_its_own_holds_nothing_the_script_did_not_write(tmp_path):
    owned.record(tmp_path, "gpu_check.py", {"full", "resumed"})
    (tmp_path / "full").mkdir()
    assert owned.claim(tmp_path, "gpu_check.py", ["full", "resumed"], alone=True) == {"full", "resumed"}
    (tmp_path / "ckpt_0000100").mkdir()
    with pytest.raises(ConfigError, match=rf"^{tmp_path} holds ckpt_0000100, which gpu_check.py did not write"):
        owned.claim(tmp_path, "gpu_check.py", ["full", "resumed"], alone=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        owned.claim(tmp_path / "file", "gpu_check.py", ["full"])
