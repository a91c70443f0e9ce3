"""`longshot demo` runs offline and ends green."""

from __future__ import annotations

from pathlib import Path

from longshot.testing.repos import git

from helpers import run_cli


def test_demo_ends_green(tmp_path: Path) -> None:
    done = run_cli(["demo", "--keep", str(tmp_path / "demo")], {}, cwd=tmp_path, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    result = tmp_path / "demo" / "wordkit"
    assert f"The result is in {result}" in done.stdout.replace("\n", "")
    trailers = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=)", cwd=result).split()
    assert sorted(trailers) == ["api", "case", "counts", "slug", "wrap"]
    assert (result / "wordkit" / "wrap.py").exists()
