"""Ingest against independent reads with uproot, on generated and on real ROOT files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepclf.config import parse_pipeline
from hepclf.ingest import FeatureTable, ingest
from hepclf.ingest.run import read_samples
from hepclf.runtime.errors import InputDataError
from tests.conftest import demo_pipeline_dict, shared_file


def _config(data: dict, base: Path | None = None):
    return parse_pipeline(data, base_dir=base)


def test_demo_features_match_direct_uproot_read(demo_dir: Path, cache_dir: Path) -> None:
    config = _config(demo_pipeline_dict(demo_dir))
    table = ingest(config)
    raw = uproot.open(demo_dir / "signal.root")["Events"].arrays(library="ak")
    raw = raw[raw.nJet >= 2]
    sig = table.subset(table.sample == 0)
    col = {c: i for i, c in enumerate(table.columns)}
    np.testing.assert_array_equal(sig.X[:, col["lep_pt"]], ak.to_numpy(raw.lep_pt))
    np.testing.assert_allclose(
        sig.X[:, col["ht"]], ak.to_numpy(ak.sum(raw.Jet_pt, axis=1)), rtol=1e-6
    )
    ordered = raw.Jet_pt[ak.argsort(raw.Jet_pt, axis=1, ascending=False)]
    lead = ak.to_numpy(ak.fill_none(ak.pad_none(ordered, 4, clip=True), 0.0))
    np.testing.assert_array_equal(sig.X[:, [col[f"jet_pt_{i}"] for i in range(4)]], lead)
    btag = raw.Jet_btag[ak.argsort(raw.Jet_pt, axis=1, ascending=False)]
    lead_b = ak.to_numpy(ak.fill_none(ak.pad_none(btag, 4, clip=True), -1.0))
    np.testing.assert_array_equal(sig.X[:, [col[f"jet_btag_{i}"] for i in range(4)]], lead_b)
    # weight = genWeight x scale (cross-section) / the generated sum of weights (Runs tree)
    generated = uproot.open(demo_dir / "signal.root")["Runs"]["genEventSumw"].array(library="np")
    scale = config.samples[0].scale / generated.sum()
    np.testing.assert_allclose(sig.weight, ak.to_numpy(raw.genWeight).astype(np.float64) * scale)
    np.testing.assert_array_equal(sig.event_id, ak.to_numpy(raw.event))
    assert set(np.unique(table.label)) == {0, 1}
    assert table.X.dtype == np.float32
    summary = table.info["samples"][0]
    assert summary["entries"] == 4000 and summary["selected"] == len(raw)
    assert summary["negative_weights"] == int((ak.to_numpy(raw.genWeight) < 0).sum())


@pytest.mark.parametrize("selection", ["nJet >= 7", "nJet >= 2", None])
def test_small_chunks_and_selections_match_a_direct_read(
    demo_dir: Path, cache_dir: Path, selection: str | None
) -> None:
    """Many chunks, a tight, a loose and no cut: the same rows as uproot + a NumPy mask, and
    no memory kept for rejected events."""
    data = demo_pipeline_dict(demo_dir, selection=selection, step_size=700)
    data["samples"][1]["selection"] = "met > 30"  # the second sample cuts on its own
    config = _config(data)
    table = read_samples(config)
    col = {c: i for i, c in enumerate(table.columns)}
    for i, (name, extra) in enumerate((("signal.root", None), ("background.root", "met > 30"))):
        raw = uproot.open(demo_dir / name)["Events"].arrays(library="ak")
        keep = np.ones(len(raw), bool)
        if selection:
            keep &= ak.to_numpy(raw.nJet) >= int(selection.split()[-1])
        if extra:
            keep &= ak.to_numpy(raw.met) > 30
        part = table.subset(table.sample == i)
        np.testing.assert_array_equal(part.event_id, ak.to_numpy(raw.event)[keep])
        np.testing.assert_array_equal(part.X[:, col["met"]], ak.to_numpy(raw.met)[keep])
        ordered = raw.Jet_eta[keep][ak.argsort(raw.Jet_pt[keep], axis=1, ascending=False)]
        lead = ak.to_numpy(ak.fill_none(ak.pad_none(ordered, 4, clip=True), 0.0))
        np.testing.assert_array_equal(part.X[:, [col[f"jet_eta_{j}"] for j in range(4)]], lead)
    base = table.X.base if table.X.base is not None else table.X
    assert base.nbytes <= 1.12 * table.X.nbytes


def test_cache_is_reused_and_invalidated(demo_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("signal.root", "background.root"):
        (data_dir / name).write_bytes((demo_dir / name).read_bytes())
    config = _config(demo_pipeline_dict(data_dir))
    first = ingest(config)
    second = ingest(config)
    assert first.info["cached"] is False and second.info["cached"] is True
    np.testing.assert_array_equal(first.X, second.X)
    os.utime(data_dir / "signal.root", ns=(1, 1))
    assert ingest(config).info["cached"] is False
    changed = _config(demo_pipeline_dict(data_dir, selection="nJet >= 3"))
    third = ingest(changed)
    assert third.info["cached"] is False and len(third) < len(first)


def test_cache_written_in_the_background_is_a_snapshot(demo_dir: Path, cache_dir: Path) -> None:
    """Changing the returned table at once (in place) does not reach the cache entry."""
    from hepclf.ingest import cache

    config = _config(demo_pipeline_dict(demo_dir))
    first = ingest(config)
    expected = first.X.copy()
    first.X[:] = -1.0  # while the cache may still be being written
    cache.wait()
    again = ingest(config)
    assert again.info["cached"] is True
    np.testing.assert_array_equal(again.X, expected)


def test_parquet_round_trip(demo_dir: Path, tmp_path: Path) -> None:
    table = read_samples(_config(demo_pipeline_dict(demo_dir)))
    path = table.write_parquet(tmp_path / "t.parquet")
    back = FeatureTable.read_parquet(path)
    np.testing.assert_array_equal(back.X, table.X)
    np.testing.assert_array_equal(back.label, table.label)
    np.testing.assert_array_equal(back.sample, table.sample)
    assert back.columns == table.columns and back.sample_names == table.sample_names
    frame = back.to_pandas()
    assert list(frame["sample"].unique()) == ["ttH", "ttbar"]


def test_tmva_example_weights_only_on_background(cache_dir: Path) -> None:
    path = shared_file("tmva_class_example.root")
    config = _config(
        {
            "name": "tmva",
            "samples": [
                {
                    "name": "S",
                    "files": [str(path)],
                    "tree": "TreeS",
                    "label": "signal",
                    "scale": 2.0,
                },
                {
                    "name": "B",
                    "files": [str(path)],
                    "tree": "TreeB",
                    "label": "background",
                    "weight": "weight",
                },
            ],
            "features": ["var1", "var2", {"name": "v34", "expr": "var3 * var4"}],
        }
    )
    table = ingest(config)
    f = uproot.open(path)
    s, b = f["TreeS"].arrays(library="np"), f["TreeB"].arrays(library="np")
    assert len(table) == len(s["var1"]) + len(b["var1"]) == 12000
    np.testing.assert_array_equal(table.weight[table.label == 1], 2.0)
    np.testing.assert_allclose(table.weight[table.label == 0], b["weight"])
    np.testing.assert_array_equal(table.X[table.label == 0, 1], b["var2"])
    np.testing.assert_allclose(table.X[table.label == 1, 2], s["var3"] * s["var4"], rtol=1e-6)


def test_std_vector_branches(cache_dir: Path) -> None:
    path = shared_file("ml_dataloader_filters_vectors_hvector.root")
    config = _config(
        {
            "name": "vectors",
            "samples": [
                {
                    "name": "a",
                    "files": [str(path)],
                    "tree": "test_tree",
                    "label": "signal",
                    "selection": "f3",
                },
                {
                    "name": "b",
                    "files": [str(path)],
                    "tree": "test_tree",
                    "label": "background",
                    "selection": "!f3",
                },
            ],
            "features": [
                "f1",
                "f2",
                {"name": "f5", "branch": "f5", "leading": 2, "pad": -9.0},
                {"name": "sum_f4", "expr": "sum(f4)"},
                {"name": "n_true_f6", "expr": "sum(f6)"},
            ],
        }
    )
    table = ingest(config)
    raw = uproot.open(path)["test_tree"].arrays(library="ak")
    ordered = ak.concatenate([raw[raw.f3], raw[~raw.f3]])
    assert len(table) == len(raw)
    np.testing.assert_array_equal(table.X[:, 0], ak.to_numpy(ordered.f1))
    lead = ak.to_numpy(ak.fill_none(ak.pad_none(ordered.f5, 2, clip=True), -9.0))
    np.testing.assert_array_equal(table.X[:, 2:4], lead)
    np.testing.assert_array_equal(table.X[:, 4], ak.to_numpy(ak.sum(ordered.f4, axis=1)))
    np.testing.assert_array_equal(table.X[:, 5], ak.to_numpy(ak.sum(ordered.f6, axis=1)))


def test_jagged_double_arrays_sorted_by_energy(cache_dir: Path) -> None:
    path = shared_file("df017_vecOpsHEP.root")
    config = _config(
        {
            "name": "vecops",
            "samples": [
                {
                    "name": "many",
                    "files": [str(path)],
                    "tree": "myDataset",
                    "label": "signal",
                    "selection": "nPart > 50",
                },
                {
                    "name": "few",
                    "files": [str(path)],
                    "tree": "myDataset",
                    "label": "background",
                    "selection": "nPart <= 50",
                },
            ],
            "features": [
                {"name": "px", "branch": "px", "leading": 3, "sort_by": "E"},
                {"name": "pt_sum", "expr": "sum(sqrt(px**2 + py**2))"},
            ],
        }
    )
    table = ingest(config)
    raw = uproot.open(path)["myDataset"].arrays(library="ak")
    raw = ak.concatenate([raw[raw.nPart > 50], raw[raw.nPart <= 50]])
    order = ak.argsort(raw.E, axis=1, ascending=False)
    expected = ak.to_numpy(raw.px[order][:, :3])
    np.testing.assert_allclose(table.X[:, :3], expected, rtol=1e-6)
    np.testing.assert_allclose(
        table.X[:, 3], ak.to_numpy(ak.sum(np.sqrt(raw.px**2 + raw.py**2), axis=1)), rtol=1e-5
    )


def _write_tree(path: Path, branches: dict) -> Path:
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.dtype for k, v in branches.items()})
        f["Events"].extend(branches)
    return path


def test_non_identifier_branch_names(tmp_path: Path, cache_dir: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("s", "b"):
        _write_tree(
            tmp_path / f"{name}.root",
            {
                "jet1_b-tag": rng.random(50).astype(np.float32),
                "x": rng.random(50).astype(np.float32),
            },
        )
    config = _config(
        {
            "name": "odd",
            "samples": [
                {"name": "s", "files": ["s.root"], "label": "signal"},
                {"name": "b", "files": ["b.root"], "label": "background"},
            ],
            "selection": "`jet1_b-tag` > 0.1",
            "features": ["jet1_b-tag", {"name": "twice", "expr": "2 * `jet1_b-tag`"}],
        },
        base=tmp_path,
    )
    table = ingest(config)
    assert table.columns == ["jet1_b-tag", "twice"]
    np.testing.assert_allclose(table.X[:, 1], 2 * table.X[:, 0])
    assert (table.X[:, 0] > 0.1).all()


def test_rntuple_input(tmp_path: Path, cache_dir: Path) -> None:
    rng = np.random.default_rng(1)
    for name, shift in (("s", 1.0), ("b", 0.0)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f["Events"] = {"x": rng.normal(shift, 1, 200), "n": rng.integers(0, 5, 200)}
        classes = uproot.open(tmp_path / f"{name}.root").classnames()
        if "RNTuple" not in next(iter(classes.values())):
            pytest.skip(f"this uproot writes {classes} on assignment, not an RNTuple")
    config = _config(
        {
            "name": "rn",
            "samples": [
                {"name": "s", "files": ["s.root"], "label": "signal"},
                {"name": "b", "files": ["b.root"], "label": "background"},
            ],
            "features": ["x", "n"],
        },
        base=tmp_path,
    )
    table = ingest(config)
    expected = uproot.open(tmp_path / "s.root")["Events"].arrays(library="np")["x"]
    np.testing.assert_allclose(table.X[table.label == 1, 0], expected.astype(np.float32))


# ---- bad input: one clear message naming the thing, nothing written -------------------------


def _demo(demo_dir: Path, **overrides):
    return _config(demo_pipeline_dict(demo_dir, **overrides))


def test_glob_matching_nothing(demo_dir: Path, cache_dir: Path) -> None:
    data = demo_pipeline_dict(demo_dir)
    data["samples"][0]["files"] = [str(demo_dir / "nothing_*.root")]
    with pytest.raises(InputDataError, match=r"sample 'ttH': no file matches .*nothing_\*\.root"):
        ingest(_config(data))


def _with_input(path: Path, good: Path):
    """A pipeline reading ``path`` as signal and a good file as background."""
    return _config(
        {
            "name": "broken",
            "samples": [
                {"name": "s", "files": [str(path)], "label": "signal"},
                {"name": "b", "files": [str(good)], "label": "background"},
            ],
            "features": ["xvalue", "yvalue"],
        }
    )


def _small_tree(path: Path) -> Path:
    """Two branches of rounded numbers: they compress, so each basket is a zlib block."""
    rng = np.random.default_rng(3)
    x, y = (np.round(rng.normal(size=2000), 2) for _ in range(2))
    return _write_tree(path, {"xvalue": x, "yvalue": y})


def _overwrite_middle(path: Path, start: int, length: int, out: Path) -> Path:
    """A copy of ``path`` with 200 random bytes in the middle of ``[start, start + length)``."""
    data = bytearray(path.read_bytes())
    middle = start + length // 2 - 100
    data[middle : middle + 200] = np.random.default_rng(0).integers(0, 256, 200, np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


def bad_root_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files broken in different ways, each with the message it must give."""
    good = _small_tree(folder / "good.root")
    size = good.stat().st_size
    empty = folder / "empty.root"
    empty.write_bytes(b"")
    text = folder / "notes.root"
    text.write_text("this is not a ROOT file\n" * 20)
    cut = folder / "cut.root"
    cut.write_bytes(good.read_bytes()[: size // 2])
    with uproot.open(good) as f:
        branch = f["Events"]["yvalue"]
        basket = (int(branch.member("fBasketSeek")[0]), int(branch.member("fBasketBytes")[0]))
        key = f.key("Events")
        described = (key.fSeekKey + key.fKeylen, key.fNbytes - key.fKeylen)
    return {
        "empty": (empty, r"empty\.root: empty file \(0 bytes\), not a ROOT file"),
        "text": (
            text,
            r"notes\.root: not a ROOT file \(it starts with 'this is not a ROOT file'\)",
        ),
        "truncated": (
            cut,
            rf"cut\.root: truncated or incomplete ROOT file \({size // 2:,} bytes, expected at "
            rf"least {size:,}\)",
        ),
        "basket": (
            _overwrite_middle(good, *basket, folder / "bad_basket.root"),
            r"bad_basket\.root \(tree 'Events'.*\): corrupted data in branch 'yvalue' \(entries "
            r"0-1999; decompression failed\)",
        ),
        "tree": (
            _overwrite_middle(good, *described, folder / "bad_tree.root"),
            r"bad_tree\.root: corrupted data in the description of tree 'Events'",
        ),
        "names": (
            _garble_name(good, b"yvalue", folder / "bad_names.root"),
            r"bad_names\.root: corrupted data in the description of tree 'Events' \(garbled "
            r"branch names",
        ),
    }


def _garble_name(path: Path, name: bytes, out: Path) -> Path:
    """A copy of ``path`` whose first copy of a branch name has unprintable bytes."""
    data = path.read_bytes()
    at = data.index(name)
    out.write_bytes(data[:at] + b"\xff\xfe\x01\x02" + data[at + 4 :])
    return out


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "basket", "tree", "names"])
def test_broken_root_files_say_what_is_wrong(kind: str, tmp_path: Path, cache_dir: Path) -> None:
    path, message = bad_root_files(tmp_path)[kind]
    with pytest.raises(InputDataError, match=message) as err:
        ingest(_with_input(path, tmp_path / "good.root"))
    assert "missing branch" not in str(err.value)
    assert ("copy it again" in str(err.value)) == (kind != "text")


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "basket", "tree", "names"])
def test_scoring_reports_broken_files_the_same_way(kind: str, tmp_path: Path) -> None:
    """The scoring reader fails the file with the same plain message (and writes nothing)."""
    from sklearn.linear_model import LogisticRegression

    from hepclf.config.features import FeatureConfig
    from hepclf.config.training import NormalizationConfig
    from hepclf.scoring.file_job import ScoreSettings, score_file
    from hepclf.scoring.scorers import ModelSpec, ScoringModel
    from hepclf.training.bundle import ModelBundle
    from hepclf.training.normalize import Normalizer

    path, message = bad_root_files(tmp_path)[kind]
    X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    bundle = ModelBundle(
        "lr",
        [FeatureConfig(name="x", branch="xvalue"), FeatureConfig(name="y", branch="yvalue")],
        Normalizer.fit(X, NormalizationConfig()),
        LogisticRegression().fit(X, y),  # type: ignore[arg-type]
    )
    model = ScoringModel(ModelSpec(str(tmp_path), "score_lr"), bundle)
    out = tmp_path / "out" / "scores.root"
    result = score_file(str(path), out, [model], ScoreSettings(out_dir=out.parent))
    assert result.status == "failed"
    assert re.search(message, result.error or ""), result.error
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_missing_tree_lists_present_trees(cache_dir: Path) -> None:
    path = shared_file("tmva_class_example.root")
    config = _config(
        {
            "name": "t",
            "samples": [
                {"name": "S", "files": [str(path)], "tree": "Events", "label": "signal"},
                {"name": "B", "files": [str(path)], "tree": "TreeB", "label": "background"},
            ],
            "features": ["var1"],
        }
    )
    with pytest.raises(InputDataError, match=r"no tree named 'Events'.*TreeB, TreeS"):
        ingest(config)


def test_missing_branch_suggests_close_names(demo_dir: Path, cache_dir: Path) -> None:
    data = demo_pipeline_dict(demo_dir)
    data["features"] = ["lep_pT", "met"]
    with pytest.raises(InputDataError, match=r"missing branch 'lep_pT' \(did you mean 'lep_pt'"):
        ingest(_config(data))


def test_failing_expression(demo_dir: Path, cache_dir: Path) -> None:
    data = demo_pipeline_dict(demo_dir)
    data["features"] = [{"name": "bad", "expr": "Jet_pt + Jet_btag[:, :1]"}]
    with pytest.raises(InputDataError, match=r"signal\.root.*'Jet_pt \+ Jet_btag\[:, :1\]' failed"):
        ingest(_config(data))


def test_selection_leaving_no_events(demo_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(
        InputDataError, match=r"sample 'ttH': the selection .*nJet > 100.* leaves no"
    ):
        ingest(_demo(demo_dir, selection="nJet > 100"))


def test_class_without_events(demo_dir: Path, tmp_path: Path, cache_dir: Path) -> None:
    empty = _write_tree(
        tmp_path / "empty.root",
        {
            "lep_pt": np.zeros(0, np.float32),
            "lep_eta": np.zeros(0, np.float32),
            "met": np.zeros(0, np.float32),
            "nJet": np.zeros(0, np.int32),
            "event": np.zeros(0, np.int64),
            "genWeight": np.zeros(0, np.float32),
        },
    )
    data = demo_pipeline_dict(demo_dir, selection=None)
    data["features"] = ["lep_pt", "met"]
    data["samples"][0]["files"] = [str(empty)]
    data["samples"][0]["sum_weights"] = None  # the file has no Runs tree
    with pytest.raises(
        InputDataError, match=r"no signal events after selection \(samples \['ttH'\]"
    ):
        ingest(_config(data))


def test_nan_features_are_counted(demo_dir: Path, cache_dir: Path) -> None:
    data = demo_pipeline_dict(demo_dir, selection=None)
    data["features"] = [
        "met",
        {"name": "lead_pt", "expr": "max(Jet_pt)"},
        {"name": "log_eta", "expr": "log(lep_eta)"},
    ]
    with pytest.raises(
        InputDataError, match=r"NaN or inf values in features \(log_eta: \d+"
    ) as err:
        ingest(_config(data))
    assert "nan_policy: drop" in str(err.value)
    data["nan_policy"] = "drop"
    table = ingest(_config(data))
    assert np.isfinite(table.X).all()
    dropped = table.info["samples"][0]["dropped_nonfinite"]
    assert dropped == table.info["samples"][0]["entries"] - table.info["samples"][0]["selected"]
    assert dropped > 0


def test_jagged_feature_without_leading(demo_dir: Path, cache_dir: Path) -> None:
    data = demo_pipeline_dict(demo_dir)
    data["features"] = ["met", "Jet_pt"]
    with pytest.raises(InputDataError, match=r"feature 'Jet_pt'.*variable number.*leading: N"):
        ingest(_config(data))
