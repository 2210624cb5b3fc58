"""Pipeline YAML validation: good files load, bad ones name the file, the key and the form."""

from __future__ import annotations

from pathlib import Path

import pytest

from hepclf.config import load_pipeline, parse_pipeline
from hepclf.runtime.errors import ConfigError
from tests.conftest import REPO


def test_demo_pipeline_loads_with_every_documented_key() -> None:
    config = load_pipeline(REPO / "pipelines" / "demo.yaml")
    assert [s.label for s in config.samples] == ["signal", "background"]
    assert config.feature_columns[:4] == ["lep_pt", "lep_eta", "met", "nJet"]
    assert "jet_pt_3" in config.feature_columns and "jet_pt_4" not in config.feature_columns
    assert config.split.test_fraction == 0.5 and config.normalization.method == "standard"
    assert set(config.models) == {"dnn", "bdt", "xgb", "rf", "svm", "linear"}
    assert config.resolve("x.root") == str((REPO / "pipelines" / "x.root").resolve())


def _minimal(**extra: object) -> dict:
    base = {
        "name": "t",
        "samples": [
            {"name": "s", "files": ["s.root"], "label": "signal"},
            {"name": "b", "files": "b.root", "label": "background"},
        ],
        "features": ["x"],
    }
    base.update(extra)
    return base


def test_one_file_string_is_accepted() -> None:
    assert parse_pipeline(_minimal()).samples[1].files == ["b.root"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "samples": [
                    {"name": "s", "files": ["s"], "label": "sig"},
                    {"name": "b", "files": ["b"], "label": "background"},
                ]
            },
            r"none is 'signal'.*samples\[0\]\.label is 'sig'",
        ),
        (
            {"features": [{"name": "j", "branch": "Jet_pt", "leading": 0}]},
            r"features\[0\]\.leading: Input should be greater than or equal to 1",
        ),
        (
            {"features": [{"name": "j", "branch": "a", "expr": "b"}]},
            r"exactly one of 'branch' or 'expr'",
        ),
        ({"split": {"test_fraction": 1.5}}, r"split\.test_fraction: Input should be less than 1"),
        ({"normalization": "zscore"}, r"normalization\.method: Input should be 'standard'"),
        ({"split": {"method": "event_id"}}, r"needs the top-level key 'event_id: BRANCH'"),
        ({"features": ["weight"]}, r"clash with the table's own columns"),
        ({"bogus_key": 1}, r"bogus_key: Extra inputs are not permitted"),
        (
            {
                "samples": [
                    {"name": "s", "files": ["s"], "label": "signal"},
                    {"name": "t", "files": ["t"], "label": "signal"},
                ]
            },
            r"at least one 'signal' and one 'background'",
        ),
    ],
)
def test_invalid_pipelines_name_key_and_form(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_pipeline(_minimal(**change), source="my.yaml")
    assert str(err.value).startswith("my.yaml: the pipeline is not valid")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: pipeline file not found"):
        load_pipeline(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_pipeline(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        load_pipeline(listy)


def test_fingerprint_tracks_ingest_settings_only() -> None:
    a = parse_pipeline(_minimal())
    assert (
        a.ingest_fingerprint() == parse_pipeline(_minimal(models={"xgb": {}})).ingest_fingerprint()
    )
    assert (
        a.ingest_fingerprint() != parse_pipeline(_minimal(selection="x > 1")).ingest_fingerprint()
    )


def test_classes_that_clean_to_one_score_branch_are_refused() -> None:
    """score_<model>_<class> replaces odd characters by '_': 'tt+H' and 'tt-H' would collide."""
    samples = [
        {"name": f"s{i}", "files": [f"{i}.root"], "label": label}
        for i, label in enumerate(["tt+H", "ttbb", "tt-H"])
    ]
    with pytest.raises(
        ConfigError,
        match=r"the classes 'tt\+H' and 'tt-H' would both be written to the score branch "
        r"score_<model>_tt_H .*rename one of them in the samples' 'label:'",
    ):
        parse_pipeline(_minimal(samples=samples))
    samples[2]["label"] = "ttlf"  # distinct after cleaning: loads, one branch per class
    config = parse_pipeline(_minimal(samples=samples))
    assert config.class_names == ["tt+H", "ttbb", "ttlf"]
