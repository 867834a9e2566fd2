"""The documentation site (docs/, mkdocs.yml) builds with --strict: a broken link, an anchor
that does not exist or a page left out of the navigation fails the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_documentation_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert built.returncode == 0, built.stderr[-3000:]  # (not --quiet: it hides the warnings strict counts)
    assert (tmp_path / "personal-data" / "index.html").exists()


def test_every_page_the_readme_points_to_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/setup.md", "docs/how-it-works.md", "docs/index.md"):
        assert f"]({page})" in readme and (ROOT / page).exists()
