"""What produced a run: package versions and the git commit, logged with every run."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]

PACKAGES = (
    "hepclf",
    "numpy",
    "pandas",
    "uproot",
    "awkward",
    "scikit-learn",
    "xgboost",
    "tensorflow",
    "keras",
    "mlflow",
)


# the distributions that install a package's module: the core install has xgboost-cpu
DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu")}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        versions[name] = "not installed"
        for distribution in DISTRIBUTIONS.get(name, (name,)):
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def git_commit(where: Path | None = None) -> str | None:
    """The commit of the git checkout holding ``where`` (default: the hepclf source), if any."""
    folder = where or _PACKAGE_DIR
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_dirty(where: Path | None = None) -> bool:
    """True when the checkout has uncommitted changes (the commit alone does not pin the code)."""
    folder = where or _PACKAGE_DIR
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())
