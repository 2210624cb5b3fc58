"""Sample normalisation: event weight = weight × scale / Σw of the generated events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from hepclf.config import parse_pipeline
from hepclf.ingest import ingest
from hepclf.runtime.errors import ConfigError, InputDataError
from tests.conftest import demo_pipeline_dict

XSEC = {"ttH": 2.0, "ttbar": 50.0}


def _demo(demo_dir: Path, sum_weights: object, **overrides: object):
    config = demo_pipeline_dict(demo_dir, **overrides)
    for sample in config["samples"]:
        sample["scale"] = XSEC[sample["name"]]
        sample["sum_weights"] = sum_weights
    return parse_pipeline(config)


def _by_hand(path: Path, xsec: float) -> float:
    """Σ weight over the selected events × σ / Σ genWeight over every event, by numpy."""
    events = uproot.open(path)["Events"].arrays(["genWeight", "nJet"], library="np")
    w = events["genWeight"].astype(np.float64)
    return float(w[events["nJet"] >= 2].sum() * xsec / w.sum())


@pytest.mark.parametrize("stored", [{"tree": "Runs", "branch": "genEventSumw"}, "all_events"])
def test_expected_events_are_cross_section_times_selected_fraction(
    demo_dir: Path, cache_dir: Path, stored: object
) -> None:
    table = ingest(_demo(demo_dir, stored))
    for i, (name, file) in enumerate((("ttH", "signal.root"), ("ttbar", "background.root"))):
        total = float(table.weight[table.sample == i].sum())
        assert total == pytest.approx(_by_hand(demo_dir / file, XSEC[name]), rel=1e-9)
    generated = [s["generated_sum_weights"] for s in table.info["samples"]]
    runs = uproot.open(demo_dir / "background.root")["Runs"]["genEventSumw"].array(library="np")
    assert generated[1] == pytest.approx(float(runs.sum()), rel=1e-9)


def test_without_selection_the_weights_sum_to_the_cross_section(
    demo_dir: Path, cache_dir: Path
) -> None:
    table = ingest(_demo(demo_dir, {"tree": "Runs", "branch": "genEventSumw"}, selection=None))
    assert float(table.weight[table.sample == 1].sum()) == pytest.approx(50.0, rel=1e-9)


def test_a_number_divides_the_weights(demo_dir: Path, cache_dir: Path) -> None:
    plain = ingest(_demo(demo_dir, None))
    divided = ingest(_demo(demo_dir, 1000.0))
    np.testing.assert_allclose(divided.weight, plain.weight / 1000.0, rtol=1e-12)


def test_a_missing_sum_of_weights_tree_or_branch_is_named(demo_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(InputDataError, match=r"signal.root: no tree named 'Run'.*Runs"):
        ingest(_demo(demo_dir, {"tree": "Run", "branch": "genEventSumw"}))
    with pytest.raises(InputDataError, match=r"'sum_weights'.*genEventSumW.*genEventSumw"):
        ingest(_demo(demo_dir, {"tree": "Runs", "branch": "genEventSumW"}))


def test_sum_weights_must_be_positive(demo_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"samples\[0\]\.sum_weights.*positive"):
        _demo(demo_dir, 0.0)
    with pytest.raises(ConfigError, match="sum_weights"):
        _demo(demo_dir, "all")
