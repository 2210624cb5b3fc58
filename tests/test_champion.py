"""The champion rule: flagged models are passed over for a single split only; under k-fold
the best out-of-fold model wins, the flag is reported, and metrics.json says who and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hepclf.config import parse_pipeline
from hepclf.evaluation import evaluate_classifier
from hepclf.training.report import select_champion
from hepclf.training.results import ModelResult
from tests.conftest import demo_pipeline_dict


def drawn_result(name: str, overtrained: bool, auc_shift: float) -> ModelResult:
    """A model result evaluated for real on drawn scores (see tests/test_pipeline.py)."""
    rng = np.random.default_rng(len(name))
    y = rng.integers(0, 2, 4000)
    test = rng.normal(auc_shift * y, 1.0)
    train = rng.normal((4.0 if overtrained else auc_shift) * y, 1.0)
    report = evaluate_classifier(y, test, None, y, train, None)
    assert report.overtrained == overtrained
    return ModelResult(name, None, report, 0.1, {"train": train, "test": test})


def test_without_skipping_the_best_model_wins_and_its_flag_is_said() -> None:
    results = {r.name: r for r in (drawn_result("xgb", True, 1.5), drawn_result("lin", False, 1.0))}
    kept = select_champion(results, "auc_test", skip_flagged=False)
    assert kept.best == "xgb" and kept.passed_over == [] and kept.flagged == ["xgb"]
    assert "flagged over-trained" in kept.note and "skip_flagged: true" in kept.note
    assert kept.summary() == {
        "model": "xgb",
        "metric": "auc_test",
        "value": pytest.approx(results["xgb"].report.auc_test),
        "skip_flagged": False,
        "flagged": ["xgb"],
        "passed_over": [],
    }
    skipped = select_champion(results, "auc_test", skip_flagged=True)
    assert skipped.best == "lin" and skipped.passed_over == ["xgb"]
    assert skipped.summary()["skip_flagged"] is True


def test_skip_flagged_defaults_to_yes_for_a_split_and_no_under_kfold(demo_dir: Path) -> None:
    single = parse_pipeline(demo_pipeline_dict(demo_dir))
    kfold = parse_pipeline(demo_pipeline_dict(demo_dir, split={"method": "kfold"}))
    forced = parse_pipeline(
        demo_pipeline_dict(demo_dir, split={"method": "kfold"}, evaluation={"skip_flagged": True})
    )
    assert (single.skip_flagged, kfold.skip_flagged, forced.skip_flagged) == (True, False, True)


@pytest.mark.slow
def test_kfold_run_chooses_the_flagged_model_with_the_best_out_of_fold_auc(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """A deep, unregularised bdt is flagged (train vs out-of-fold KS) but still separates
    better out of fold than the Fisher discriminant: under k-fold it is the champion."""
    from hepclf.workflows.train import run_pipeline

    overtrained_bdt = {"max_depth": 6, "min_node_size": 0, "n_trees": 60}
    raw = demo_pipeline_dict(
        demo_dir,
        split={"method": "kfold", "folds": 3, "seed": 5},
        models={"bdt": overtrained_bdt, "linear": {}},
    )
    raw.pop("result", None)
    config = parse_pipeline(raw, base_dir=tmp_path)
    result = run_pipeline(
        config, output=tmp_path / "out", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"
    )
    bdt, linear = result.results["bdt"], result.results["linear"]
    assert bdt.overtrained and not linear.overtrained  # the case this rule is about
    assert bdt.report.auc_test > linear.report.auc_test  # out-of-fold
    assert result.best == "bdt" and result.selection.passed_over == []
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["champion"]["model"] == "bdt" and doc["champion"]["skip_flagged"] is False
    assert doc["champion"]["flagged"] == ["bdt"]
    assert doc["champion"]["value"] == pytest.approx(doc["bdt"]["auc_test"])
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "**bdt**" in summary and "skip_flagged" in summary
