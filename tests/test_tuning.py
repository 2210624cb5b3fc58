"""Budgeted Optuna tuning: search spaces, training events only, resumable studies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from hepclf.config.training import TuneConfig
from hepclf.models import MODEL_TYPES, SEARCH_SPACES, check_model_params
from hepclf.runtime.errors import ConfigError
from hepclf.training.studies import storage_path_for
from hepclf.training.tuning import training_events, tune_model
from hepclf.training.tuning_cv import cross_validated_auc

TINY_XGB = {"n_estimators": 30, "n_jobs": 1, "early_stopping_rounds": 5}


def events(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 5)) + 0.7 * y[:, None] * np.array([1.0, 0.5, 0.0, 0.0, 0.2])
    return X.astype(np.float32), y


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_every_model_has_a_search_space_of_valid_parameters(name: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        drawn = SEARCH_SPACES[name](study.ask())
        assert set(drawn) <= set(MODEL_TYPES[name].Params.model_fields)
        check_model_params(name, drawn)  # raises ConfigError for a value fit would refuse


def test_objective_is_the_mean_held_out_fold_auc(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X, y = events()
    fold = np.arange(len(X)) % 3
    aucs = cross_validated_auc("linear", {"method": "logistic"}, X, y, None, None, fold, 1)
    for k, auc in enumerate(aucs):  # independent: scikit-learn's own logistic regression
        model = LogisticRegression(max_iter=1000).fit(X[fold != k], y[fold != k])
        expected = roc_auc_score(y[fold == k], model.decision_function(X[fold == k]))
        assert auc == pytest.approx(expected, abs=2e-3)
    result = tune_model(
        "linear", X, y, folds=3, trials=4, timeout_s=60, storage=tmp_path / "t.db", seed=1
    )
    assert result.best_value == pytest.approx(max(result.trial_values))
    assert result.n_trials == 4
    pasted = yaml.safe_load(result.to_yaml())["models"]["linear"]
    assert pasted == result.best_params and pasted["method"] in ("fisher", "logistic")


def test_tuning_never_reads_test_events(tmp_path: Path) -> None:
    """Corrupting every test event (features and labels) leaves every trial unchanged."""
    from hepclf.config.training import SplitConfig
    from hepclf.ingest.table import FeatureTable
    from hepclf.training.split import split_table

    X, y = events(2000, seed=3)
    table = FeatureTable(
        X, [f"x{i}" for i in range(5)], y, np.ones(len(y)), np.zeros(len(y), int), ["s"],
        np.arange(len(y)),
    )  # fmt: skip
    split = split_table(table, SplitConfig(test_fraction=0.4, seed=2))

    def tuned(t: FeatureTable, db: str) -> list[float]:
        X_t, y_t, w_t = training_events(t, split)
        result = tune_model(
            "xgb", X_t, y_t, w_t, base_params=TINY_XGB, folds=2, trials=3, timeout_s=120,
            storage=tmp_path / db, seed=4, pruning=False,
        )  # fmt: skip
        return result.trial_values

    clean = tuned(table, "a.db")
    X_bad, y_bad = X.copy(), y.copy()
    X_bad[split.test] = np.random.default_rng(9).normal(50, 30, X_bad[split.test].shape)
    y_bad[split.test] = 1 - y_bad[split.test]
    corrupted = FeatureTable(X_bad, table.columns, y_bad, table.weight, table.sample,
                             table.sample_names, table.event_id)  # fmt: skip
    assert tuned(corrupted, "b.db") == clean
    # and the training events are exactly the non-test rows
    X_t, _, _ = training_events(table, split)
    assert len(X_t) == len(table) - len(split.test)
    assert np.array_equal(np.sort(np.concatenate([split.train, split.validation])),
                          np.setdiff1d(np.arange(len(table)), split.test))  # fmt: skip


def test_tuning_reads_rows_of_the_table_as_their_normalised_copy(tmp_path: Path) -> None:
    """Training events as rows of the table, normalised as they are read (no copy), give
    the study (fingerprint over several blocks) and trial values of their normalised copy."""
    from hepclf.config.training import NormalizationConfig, SplitConfig
    from hepclf.ingest.table import FeatureTable
    from hepclf.models.rows import BLOCK_EVENTS, Rows
    from hepclf.training.normalize import Normalizer
    from hepclf.training.split import split_table
    from hepclf.training.studies import data_fingerprint

    def table_of(n: int) -> FeatureTable:
        X, y = events(n, seed=5)
        X = np.asfortranarray(X * 3.0 + 10.0)  # column-major, like an ingested table
        return FeatureTable(
            X, [f"x{i}" for i in range(5)], y, np.ones(n), np.zeros(n, int), ["s"], np.arange(n)
        )

    def normalised_copy(table: FeatureTable):
        split = split_table(table, SplitConfig(test_fraction=0.3, seed=2))
        normalizer = Normalizer.fit(table.X, NormalizationConfig(), rows=split.train)
        rows, y, w = training_events(table, split, normalizer)
        kept = np.sort(np.concatenate([split.train, split.validation]))
        return rows, y, w, normalizer.transform(table.X[kept])

    big = table_of(2 * BLOCK_EVENTS + 100)
    rows, y, _, copy = normalised_copy(big)
    assert isinstance(rows, Rows) and rows.X is big.X and len(rows) == len(copy)
    assert data_fingerprint(rows, y) == data_fingerprint(copy, y)
    assert data_fingerprint(rows.take(np.arange(1, len(rows))), y[1:]) != data_fingerprint(copy, y)
    rows, y, w, copy = normalised_copy(table_of(2000))
    settings = dict(base_params=TINY_XGB, folds=2, trials=2, seed=4, pruning=False)
    on_rows = tune_model("xgb", rows, y, w, storage=tmp_path / "a.db", **settings)
    on_copy = tune_model("xgb", copy, y, w, storage=tmp_path / "b.db", **settings)
    assert on_rows.study_name == on_copy.study_name
    assert on_rows.trial_values == on_copy.trial_values


_CHILD = """
import sys
import numpy as np
from hepclf.training.tuning import tune_model
rng = np.random.default_rng(0)
y = rng.integers(0, 2, 1500)
X = (rng.normal(size=(1500, 5)) + 0.7 * y[:, None]).astype(np.float32)
tune_model("xgb", X, y, base_params={"n_estimators": 30, "n_jobs": 1,
           "early_stopping_rounds": 5}, folds=2, timeout_s=600, storage=sys.argv[1],
           study_name="resume", seed=1)
"""


def test_interrupted_study_resumes_and_counts_on(tmp_path: Path) -> None:
    """Kill a search mid-way; the next call continues the same study up to ``trials``."""
    db = tmp_path / "study.db"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db)])
    url = f"sqlite:///{db}"
    done: list[optuna.trial.FrozenTrial] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(done) < 3:
            time.sleep(0.5)
            try:
                study = optuna.load_study(study_name="resume", storage=url)
            except KeyError:
                continue
            done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    finally:
        child.kill()
        child.wait()
    assert len(done) >= 3, "the first search did not finish 3 trials in time"
    before = optuna.load_study(study_name="resume", storage=url)
    counted = [
        t
        for t in before.get_trials()
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    numbers_before = {t.number for t in before.get_trials()}
    rng = np.random.default_rng(0)  # the resumed search must see the same events
    y = rng.integers(0, 2, 1500)
    X = (rng.normal(size=(1500, 5)) + 0.7 * y[:, None]).astype(np.float32)
    result = tune_model(
        "xgb", X, y, base_params=TINY_XGB, folds=2, trials=len(counted) + 2, timeout_s=120,
        storage=db, study_name="resume", seed=1,
    )  # fmt: skip
    assert result.n_trials == len(counted) + 2
    after = optuna.load_study(study_name="resume", storage=url).get_trials()
    new_numbers = [t.number for t in after if t.number not in numbers_before]
    assert len(new_numbers) == 2 and min(new_numbers) > max(t.number for t in counted)
    assert result.best_value >= max(t.value for t in done)


def test_storage_beside_the_tracking_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert storage_path_for(uri) == tmp_path / "runs" / "hepclf_tuning.db"
    assert storage_path_for(None) == Path.cwd() / "hepclf_tuning.db"


def test_unknown_or_untunable_model_is_a_clear_error(tmp_path: Path) -> None:
    X, y = events(200)
    with pytest.raises(ConfigError, match="no search space"):
        tune_model("nope", X, y, trials=1, storage=tmp_path / "x.db")
    assert TuneConfig(timeout_s=10).folds == 3


@pytest.mark.slow
def test_tune_command_writes_pasteable_yaml_and_resumes(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hepclf.cli import app
    from hepclf.config import parse_pipeline
    from tests.conftest import demo_pipeline_dict, write_pipeline

    raw = demo_pipeline_dict(demo_dir, models={"xgb": TINY_XGB, "linear": {}})
    raw["tune"] = {"timeout_s": 120, "trials": 2, "folds": 2, "models": ["xgb"]}
    path = write_pipeline(tmp_path / "p.yaml", raw)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "best.yaml"
    args = ["tune", str(path), "--tracking-uri", uri, "--output", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.count("tuned xgb:") == 1  # the summary, once
    written = yaml.safe_load(out.read_text())
    if written is None:  # the current settings won: said, and nothing written as if tuned
        assert "no trial beat the current settings" in first.output
        assert out.read_text().startswith("# xgb: no trial beat")
    else:
        tuned = written["models"]
        assert set(tuned) == {"xgb"} and set(tuned["xgb"]) == set(SEARCH_SPACES["xgb"](
            optuna.create_study().ask()))  # fmt: skip
        # the block pastes into the pipeline as it is
        parse_pipeline({**raw, "models": {"xgb": {**TINY_XGB, **tuned["xgb"]}}}, base_dir=tmp_path)
    second = CliRunner().invoke(app, [*args, "--trials", "4"])
    assert second.exit_code == 0, second.output
    assert "4 trials (study" in second.output and second.output.count("tuned xgb:") == 1
    studies = optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/hepclf_tuning.db")
    assert [s.n_trials for s in studies] == [4]  # one study, continued
    import mlflow

    mlflow.set_tracking_uri(uri)
    trial_runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`hepclf.kind` = 'tuning-trial'"
    )
    assert len(trial_runs) == 4 and trial_runs["metrics.cv_auc"].notna().all()


@pytest.mark.slow
def test_train_tunes_first_and_fits_with_the_best(
    demo_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    import json

    from hepclf.config import parse_pipeline
    from hepclf.workflows.train import run_pipeline
    from tests.conftest import demo_pipeline_dict

    raw = demo_pipeline_dict(demo_dir, models={"xgb": TINY_XGB, "linear": {}})
    raw["tune"] = {"timeout_s": 120, "trials": 3, "folds": 2, "models": ["xgb"]}
    config = parse_pipeline(raw, base_dir=tmp_path)
    result = run_pipeline(
        config, output=tmp_path / "out", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"
    )
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    tuned = doc["xgb"]["tuned_params"]
    assert doc["xgb"]["tuning_trials"] == 3 and "tuned_params" not in doc["linear"]
    fitted = result.results["xgb"].classifier.get_params()
    assert all(fitted[k] == pytest.approx(v) for k, v in tuned.items())
    pasted = yaml.safe_load((tmp_path / "out" / "tuned_params.yaml").read_text())
    improved = doc["xgb"]["tuning_improved"]
    assert pasted == ({"models": {"xgb": tuned}} if improved else None)


def test_first_trial_is_the_current_setting(tmp_path: Path) -> None:
    """The search starts from the defaults plus the pipeline's values, so its best is never
    a setting that lost to them in cross-validation."""
    X, y = events(800)
    base = {**TINY_XGB, "max_depth": 3}
    tune_model("xgb", X, y, base_params=base, folds=2, trials=1, storage=tmp_path / "s.db")
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path}/s.db")
    first = study.trials[0].params
    defaults = MODEL_TYPES["xgb"].Params().model_dump()
    assert first["max_depth"] == 3
    for key in ("learning_rate", "min_child_weight", "subsample", "reg_lambda"):
        assert first[key] == pytest.approx(defaults[key])


def test_a_study_where_no_trial_beats_the_current_settings_says_so(tmp_path: Path) -> None:
    """One trial is the current setting alone: nothing was tuned, and the YAML does not
    pretend it was (a comment names the model instead of a models: block)."""
    from hepclf.training.tuning import tuned_yaml, tuning_outcome

    X, y = events(600)
    alone = tune_model("linear", X, y, folds=2, trials=1, storage=tmp_path / "one.db")
    assert not alone.improved and alone.summary()["tuning_improved"] is False
    assert "no trial beat the current settings" in tuning_outcome(alone)
    assert "after 1 trials" not in tuning_outcome(alone)
    text = tuned_yaml({"linear": alone})
    assert yaml.safe_load(text) is None and text.startswith("# linear: no trial beat")
    more = tune_model("linear", X, y, folds=2, trials=6, storage=tmp_path / "six.db")
    first_value = more.trial_values[0]
    assert more.improved == (more.best_value > first_value)
    if more.improved:
        assert yaml.safe_load(tuned_yaml({"linear": more})) == {
            "models": {"linear": more.best_params}
        }


def rare_signal(n: int = 600, rare: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``rare`` signal events among ``n``, well separated from the background."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, np.int64)
    y[rng.choice(n, rare, replace=False)] = 1
    X = rng.normal(size=(n, 3)) + 1.5 * y[:, None]
    return X.astype(np.float32), y


def test_tuning_folds_are_stratified_so_a_rare_class_is_in_every_fold(tmp_path: Path) -> None:
    """5 signal events in 600: every tuning fold holds one or two (seed 1 of the old random
    fold rule left a fold without signal)."""
    from sklearn.model_selection import StratifiedKFold

    X, y = rare_signal()
    result = tune_model(
        "linear", X, y, folds=3, trials=1, timeout_s=60, storage=tmp_path / "t.db", seed=1
    )
    # independent: scikit-learn's stratified folds with the same seed give the trial's value
    fold = np.empty(len(y), np.int64)
    for k, (_, held_out) in enumerate(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y)):
        fold[held_out] = k
        assert 1 <= y[held_out].sum() <= 2
    aucs = cross_validated_auc("linear", result.best_params, X, y, None, None, fold, 1)
    assert result.trial_values == [pytest.approx(np.mean(aucs), abs=1e-12)]


def test_class_rarer_than_the_folds_is_a_clear_error(tmp_path: Path) -> None:
    """A class with fewer training events than tune.folds is named, with the fix."""
    from hepclf.config import parse_pipeline
    from hepclf.training.tuning import tune_models

    config = parse_pipeline(
        {
            "name": "t",
            "samples": [
                {"name": n, "files": [f"{n}.root"], "label": n} for n in ("ttH", "ttbb", "ttlf")
            ],
            "signal": "ttH",
            "features": ["x0", "x1", "x2"],
            "models": {"linear": {}},
            "tune": {"folds": 3, "trials": 1, "storage": str(tmp_path / "t.db")},
        }
    )
    assert config.class_names == ["ttH", "ttbb", "ttlf"]
    rng = np.random.default_rng(2)
    y = np.r_[[0, 0], rng.integers(1, 3, 400)]
    X = rng.normal(size=(len(y), 3)).astype(np.float32)
    with pytest.raises(
        ConfigError,
        match=r"class 'ttH' has 2 training event\(s\), fewer than tune.folds \(3\).*"
        r"lower tune.folds to 2",
    ):
        tune_models(config, X, y, np.ones(len(y)))
    with pytest.raises(ConfigError, match=r"class 'ttH' has 1 training .*add events of class"):
        tune_models(config, X[1:], y[1:], np.ones(len(y) - 1))


def test_a_study_with_other_folds_is_not_resumed(tmp_path: Path) -> None:
    """A study named as before folds were stratified (same settings otherwise) is left alone."""
    from hepclf.training.studies import data_fingerprint, fingerprint

    X, y = events(600)
    db = tmp_path / "t.db"
    old_name = f"linear-{fingerprint({}, 3, 1, data_fingerprint(X, y))}"
    old = optuna.create_study(study_name=old_name, storage=f"sqlite:///{db}", direction="maximize")
    method = optuna.distributions.CategoricalDistribution(["fisher", "logistic"])
    old.add_trial(
        optuna.trial.create_trial(
            params={"method": "logistic"}, distributions={"method": method}, value=0.999
        )
    )
    result = tune_model("linear", X, y, folds=3, trials=1, timeout_s=60, storage=db, seed=1)
    assert result.study_name != old_name
    assert result.n_trials == 1 and result.trial_values != [0.999]
