"""The documentation: the site builds strictly, its references come from the code, and every
``hepclf`` command shown in the README and the docs names a real command and real options."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from hepclf.cli import app
from hepclf.config import PipelineConfig
from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 400
    assert lines[:4] == [
        "```sh",
        "make demo   # set up .venv, generate demo ROOT files, train + evaluate the zoo, "
        "log to MLflow",
        "make test   # set up .venv, run the test suite",
        "```",
    ]


@pytest.mark.slow
def test_site_builds_strictly_with_generated_references(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (site / "reference" / "configuration" / "index.html").read_text()
    for key in PipelineConfig.model_fields:
        if key != "base_dir":
            assert f"<code>{key}</code>" in reference, key
    assert "<code>sum_weights</code>" in reference and "models.bdt" in reference
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in typer.main.get_command(app).commands:
        assert f"hepclf {command}" in cli, command


def _commands(text: str) -> list[list[str]]:
    """Every ``hepclf ...`` line of the shell blocks of a page, continuation lines joined."""
    found = []
    for language, block in FENCE.findall(text):
        if language not in ("sh", "bash", "console", ""):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip().removeprefix("$ ")
            if line.startswith("hepclf "):
                found.append(shlex.split(line.split("&&")[0]))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_shown_commands_and_options_exist(page: Path) -> None:
    commands = typer.main.get_command(app).commands
    for words in _commands(page.read_text()):
        words = [w for w in words[1:] if w != "--verbose"]
        name = words[0]
        assert name in commands, f"{page.name}: hepclf {name} is not a command"
        known = {o for p in commands[name].params for o in (*p.opts, *p.secondary_opts)}
        for word in words[1:]:
            option = word.strip("[]").split("=")[0]
            if option.startswith("--"):
                assert option in known, f"{page.name}: hepclf {name} has no option {option}"
