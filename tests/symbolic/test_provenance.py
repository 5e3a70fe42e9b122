"""The git revision every result file records: the repository root's, and '-dirty' when a tracked
file changed."""

import shutil
import subprocess
from pathlib import Path

import pytest

from symbolic.common import provenance

ROOT = Path(__file__).resolve().parents[2]  # tests/symbolic/THIS -> the repository root


def _git(folder: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_the_default_path_is_the_repository_root():
    assert provenance._REPO_ROOT == ROOT
    assert (provenance._REPO_ROOT / "pyproject.toml").is_file()


@needs_git
def test_the_default_revision_is_the_head_of_this_checkout():
    try:
        head = _git(ROOT, "rev-parse", "HEAD").strip()
    except subprocess.CalledProcessError:
        pytest.skip("the tests do not run from a git checkout")
    assert provenance.git_revision().removesuffix("-dirty") == head


@needs_git
def test_the_revision_is_the_commit_and_dirty_after_a_change(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD").strip()
    assert provenance.git_revision(tmp_path) == head
    (tmp_path / "b.txt").write_text("untracked files do not count")
    assert provenance.git_revision(tmp_path) == head
    (tmp_path / "a.txt").write_text("two")
    assert provenance.git_revision(tmp_path) == head + "-dirty"


def test_outside_a_checkout_the_revision_is_unknown(tmp_path):
    assert provenance.git_revision(tmp_path / "not-a-repository") == "unknown"
