"""What the terminal shows fits 80 columns without cutting a value, and follows $COLUMNS
also when piped: help of every command, the comparison tables of train and compare."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from hepclf.cli.render import comparison_table
from hepclf.training.report import comparison
from tests.conftest import WIDEST_METRICS

HEPCLF = [sys.executable, "-m", "hepclf"]


def piped(*args: str, columns: int | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([*HEPCLF, *args], capture_output=True, text=True, env=env, timeout=300)


def commands() -> list[str]:
    from hepclf.cli import app

    return sorted(c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands)


def test_help_of_every_command_fits_80_columns_uncut() -> None:
    for command in ["", *commands()]:
        done = piped(*([command] if command else []), "--help", columns=80)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, command
        usage_dots = (
            "[ARGS]...",
            "inputs...",
            "{inputs}...",
        )  # click's "repeatable" marks, not cuts
        text = done.stdout
        for dots in usage_dots:
            text = text.replace(dots, "")
        assert "…" not in text and "..." not in text, command
    serve = piped("serve", "--help", columns=80).stdout
    assert "--insecure-local / --no-insecure-local" in serve  # the option that was cut
    top = piped("--help", columns=80).stdout
    assert "Write synthetic signal and background ROOT files (TTree" in top  # not cut short


def test_columns_is_followed_when_piped() -> None:
    wide = piped("train", "--help", columns=200).stdout.splitlines()
    narrow = piped("train", "--help", columns=80).stdout.splitlines()
    assert max(map(len, wide)) > 80 >= max(map(len, narrow))
    assert len(wide) < len(narrow)


def rendered(table_width: int, names: list[str], best: str) -> list[str]:
    table = comparison({n: WIDEST_METRICS for n in names}, best, "Model comparison")
    console = Console(width=table_width, record=True)
    console.print(comparison_table(table, table_width))
    return console.export_text().splitlines()


def test_comparison_at_80_columns_keeps_every_value_on_two_lines_per_model() -> None:
    names = ["linear", "bdt (unfinished)", "xgb", "dnn", "rf", "svm"]
    lines = rendered(80, names, "xgb")
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80 and "…" not in text
    first = next(i for i, line in enumerate(lines) if line.startswith("xgb *"))
    assert lines[first].split() == [
        "xgb", "*", "0.7752", "0.129", "0.449", "3e-15", "2.35", "0.123", "YES", "1234.4"
    ]  # fmt: skip
    assert lines[first + 1].split() == ["0.7904", "0.181", "0.485", "0.0036"]  # train below
    assert "left out" not in text  # everything fits, stacked


def test_comparison_is_one_line_per_model_when_wide_and_says_what_it_leaves_out() -> None:
    wide = rendered(200, ["linear", "xgb"], "linear")
    row = next(line for line in wide if line.startswith("linear *")).split()
    assert row[2:5] == ["0.7752", "0.7904", "0.129/0.181"]
    narrow = rendered(56, ["linear", "xgb"], "linear")
    text = "\n".join(narrow)
    assert max(len(line) for line in narrow) <= 56 and "…" not in text
    assert "left out at 56 columns: train s" in text
    assert "0.7752" in text and "0.7904" in text and "YES" in text  # AUCs and flag stay


@pytest.mark.slow
def test_compare_defaults_to_the_experiment_of_the_latest_pipeline_run(tmp_path: Path) -> None:
    """Not the experiment created or updated last: that one holds no pipeline run."""
    import time

    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    for experiment, auc in (("older-analysis", 0.7), ("latest-analysis", 0.81234)):
        mlflow.set_experiment(experiment)
        with mlflow.start_run(tags={"hepclf.kind": "pipeline", "hepclf.best_model": "bdt"}):
            for name in ("bdt", "linear"):
                with mlflow.start_run(nested=True, tags={"hepclf.model": name}):
                    mlflow.log_metrics({**WIDEST_METRICS, "auc_test": auc, "overtrained": 0.0})
        time.sleep(0.05)
    mlflow.set_experiment("created-last")
    with mlflow.start_run(tags={"hepclf.kind": "result"}):
        mlflow.log_metric("x", 1.0)
    mlflow.set_tracking_uri("")
    done = piped("compare", "--tracking-uri", uri, columns=80)
    assert done.returncode == 0, done.stderr
    assert "Experiment 'latest-analysis'" in done.stdout
    table = [line for line in done.stdout.splitlines() if not line.startswith("Experiment")]
    assert max(len(line) for line in table) <= 80 and "…" not in done.stdout
    assert any(line.split()[:3] == ["bdt", "*", "0.8123"] for line in table)


def test_result_models_are_chosen_by_name_and_unknown_ones_named() -> None:
    from hepclf.runtime.errors import HepclfError
    from hepclf.workflows.result import chosen_sources

    sources = {"bdt": "models:/m-1", "linear": "models:/m-2", "xgb": "models:/m-3"}
    assert chosen_sources(sources, ["xgb", "bdt"], "runs:/abc") == {
        "xgb": "models:/m-3",
        "bdt": "models:/m-1",
    }
    with pytest.raises(HepclfError, match=r"'svm' not among the finished models .*bdt, linear"):
        chosen_sources(sources, ["svm"], "runs:/abc")
    with pytest.raises(HepclfError, match="is a single model"):
        chosen_sources({"": "models:/x@champion"}, ["bdt"], "models:/x@champion")


def test_max_train_events_is_shown_for_the_models_that_cap_their_events() -> None:
    """bdt, rf and svm train on at most max_train_events (also inside fold ensembles): the
    summary table shows that count; models without a cap show '-'; a narrow terminal's
    stacked table leaves it to the wide one."""
    from hepclf.models import build_model
    from hepclf.models.folds import FoldEnsemble
    from hepclf.training.results import max_train_events

    assert max_train_events(build_model("svm", {"max_train_events": 5000}, seed=1)) == 5000
    bdt = build_model("bdt", {"max_train_events": 300_000}, seed=1)
    assert max_train_events(FoldEnsemble(bdt, folds=2, seed=1)) == 300_000
    assert max_train_events(build_model("xgb", {}, seed=1)) is None
    capped = {"linear": WIDEST_METRICS, "svm": {**WIDEST_METRICS, "max_train_events": 20_000.0}}
    table = comparison(capped, "linear", "Model comparison")
    console = Console(width=200, record=True)
    console.print(comparison_table(table, 200))
    lines = console.export_text().splitlines()
    assert next(line for line in lines if line.startswith("svm")).split()[-1] == "20,000"
    assert next(line for line in lines if line.startswith("linear")).split()[-1] == "-"
    narrow = Console(width=56, record=True)
    narrow.print(comparison_table(table, 56))
    text = narrow.export_text()
    assert "20,000" not in text and "0.7904" in text  # stacked: test above train
    assert "left out at 56 columns: train s" in text
