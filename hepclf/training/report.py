"""What a pipeline run reports, as data: champion choice, metrics.json, summary.md, tables.

One home for the comparison columns: ``hepclf train`` (this run's models) and ``hepclf
compare`` (models of runs read back from MLflow) build their tables from the same
:data:`COLUMNS` over flat metric keys, and the CLI only renders them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepclf.runtime.errors import ConfigError
from hepclf.training.results import ModelResult, PipelineResult, Selection, max_train_events


@dataclass(frozen=True)
class Column:
    """A comparison column: one metric key, or a (test, train) pair shown as 'a/b'."""

    title: str
    keys: tuple[str, ...]
    header: str = ""
    stacked: bool = False
    """Values one above the other (two lines per model) instead of 'a/b'."""

    def cell(self, metrics: Mapping[str, float]) -> str:
        values = [format_value(k, metrics.get(k)) for k in self.keys]
        return ("\n" if self.stacked else "/").join(values)


COLUMNS: tuple[Column, ...] = (
    Column("AUC test", ("auc_test",)),
    Column("AUC train", ("auc_train",)),
    Column(
        "effS@B=0.01 test/train",
        ("eff_s_at_eff_b_0.01_test", "eff_s_at_eff_b_0.01_train"),
        "effS@B=0.01\ntest/train",
    ),
    Column(
        "effS@B=0.1 test/train",
        ("eff_s_at_eff_b_0.1_test", "eff_s_at_eff_b_0.1_train"),
        "effS@B=0.1\ntest/train",
    ),
    Column("KS p sig", ("ks_pvalue_signal",)),
    Column("KS p bkg", ("ks_pvalue_background",)),
    Column("KS p min", ("ks_pvalue_min",)),
    Column("Z0 exp", ("z0_expected",)),
    Column("mu95 exp", ("mu_up_expected",)),
    Column("overtrained", ("overtrained",), "over-\ntrained"),
    Column("train s", ("train_seconds",)),
    Column("max train events", ("max_train_events",), "max train\nevents"),
)
"""The comparison columns (flat metric keys, as logged to MLflow)."""
STACKED_COLUMNS: tuple[Column, ...] = (
    Column("AUC test/train", ("auc_test", "auc_train"), "AUC\ntest\ntrain", True),
    Column(
        "effS@B=0.01 test/train",
        ("eff_s_at_eff_b_0.01_test", "eff_s_at_eff_b_0.01_train"),
        "effS@\nB=0.01\ntest\ntrain",
        True,
    ),
    Column(
        "effS@B=0.1 test/train",
        ("eff_s_at_eff_b_0.1_test", "eff_s_at_eff_b_0.1_train"),
        "effS@\nB=0.1\ntest\ntrain",
        True,
    ),
    Column("KS p sig/bkg", ("ks_pvalue_signal", "ks_pvalue_background"), "KS p\nsig\nbkg", True),
    *(c for c in COLUMNS if c.keys[0] in ("ks_pvalue_min", "z0_expected", "mu_up_expected")),
    Column("overtrained", ("overtrained",), "over-\ntrained"),
    Column("train s", ("train_seconds",), "train\ns"),
    Column("max train events", ("max_train_events",), "max\ntrain\nevents"),
)
"""The same figures for a narrow terminal: each test/train pair one above the other."""
NARROW_DROP_ORDER = (
    "max train events",
    "train s",
    "mu95 exp",
    "effS@B=0.01 test/train",
    "KS p sig/bkg",
)
"""Columns a terminal too narrow for the stacked table leaves out, first to last."""
OPTIONAL_KEYS = frozenset(
    {
        "z0_expected",
        "mu_up_expected",
        "eff_s_at_eff_b_0.01_test",
        "eff_s_at_eff_b_0.1_test",
        "ks_pvalue_signal",
        "ks_pvalue_background",
        "ks_pvalue_min",
        "max_train_events",
    }
)
"""Columns shown only when some model has them: the physics result needs ``result:``; a
two-class model has signal efficiencies and two KS p-values, a multi-class one the smallest
of its per-node KS p-values; only bdt, rf and svm cap their training events."""
CHANNEL_Z0 = re.compile(r"z0_expected_((?:cat|node)_.+)")
"""The flat key of one channel's own Z0 (channels are named ``node_<class>``,
``cat_<category>`` or ``cat_<category>_node_<class>``, :mod:`hepclf.physics.channels`)."""
LOWER_IS_BETTER = frozenset({"mu_up_expected"})
"""Selection metrics where the smallest value wins (an expected upper limit)."""


def format_value(key: str, value: Any) -> str:
    """A metric as the tables show it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "overtrained":
        return "YES" if value else "no"
    if key.endswith("_seconds"):
        return f"{value:.1f}"
    if key == "max_train_events":
        return f"{int(value):,}"
    if key.startswith("ks_pvalue"):  # two digits; tiny ones need only their magnitude
        return f"{value:.0e}" if value < 1e-3 else f"{value:.2g}"
    if key.startswith("eff_s_at_eff_b"):
        return f"{value:.3f}"
    if key.startswith("z0_expected"):  # combined, per channel, from toys
        return f"{value:.2f}"
    if key.startswith("mu_up_expected"):
        return f"{value:.3g}"
    return f"{value:.4f}"


@dataclass
class Comparison:
    """A table as data: a title, column titles and one row of cells per model."""

    title: str
    columns: list[Column]
    rows: list[list[str]]
    best: str | None = None
    metrics: Mapping[str, Mapping[str, float]] | None = None
    """The flat metrics per model, for other layouts of the same table."""

    @property
    def titles(self) -> list[str]:
        return ["model", *(c.title for c in self.columns)]

    @property
    def headers(self) -> list[str]:
        """Compact (two-line) headers for a terminal table."""
        return ["model", *(c.header or c.title.replace(" ", "\n", 1) for c in self.columns)]


def result_channels(metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The channels of the physics result whose own Z0 some model has, in order."""
    found = (CHANNEL_Z0.fullmatch(key) for m in metrics.values() for key in m)
    return list(dict.fromkeys(match.group(1) for match in found if match))


def channel_columns(channels: list[str], stacked: bool = False) -> list[Column]:
    """One column per channel of the physics result: its Z0 and median limit fitted alone
    (the 'Z0 exp' and 'mu95 exp' columns are all channels fitted together)."""
    return [
        Column(
            f"{channel} Z0/mu95",
            (f"z0_expected_{channel}", f"mu_up_expected_{channel}"),
            f"{channel}\nZ0\nmu95" if stacked else f"{channel}\nZ0/mu95",
            stacked,
        )
        for channel in channels
    ]


def narrow_drop_order(metrics: Mapping[str, Mapping[str, float]]) -> tuple[str, ...]:
    """:data:`NARROW_DROP_ORDER` with the per-channel columns (last first) after 'train s':
    the combined result is the more telling one."""
    channels = [c.title for c in channel_columns(result_channels(metrics))][::-1]
    after = NARROW_DROP_ORDER.index("train s") + 1
    return (*NARROW_DROP_ORDER[:after], *channels, *NARROW_DROP_ORDER[after:])


def comparison(
    metrics: Mapping[str, Mapping[str, float]],
    best: str | None,
    title: str,
    columns: tuple[Column, ...] = COLUMNS,
    leave_out: tuple[str, ...] = (),
) -> Comparison:
    """Rows for models given as {name: flat metrics}; the champion is marked with '*'.

    ``columns``: :data:`COLUMNS` (one line per model) or :data:`STACKED_COLUMNS`; with
    several channels in the physics result, one column per channel follows 'mu95 exp';
    ``leave_out``: titles of columns not to show.
    """
    chosen: list[Column] = []
    for column in columns:
        chosen.append(column)
        if column.keys[0] == "mu_up_expected":
            stacked = columns is STACKED_COLUMNS
            chosen += channel_columns(result_channels(metrics), stacked)
    shown = [
        c
        for c in chosen
        if (c.keys[0] not in OPTIONAL_KEYS or any(c.keys[0] in m for m in metrics.values()))
        and c.title not in leave_out
    ]
    rows = [
        [name + (" *" if name == best else ""), *(c.cell(m) for c in shown)]
        for name, m in metrics.items()
    ]
    return Comparison(title, shown, rows, best, metrics)


def run_comparison(result: PipelineResult) -> Comparison:
    """The comparison table of a pipeline run."""
    return comparison(
        {n: r.metrics() for n, r in result.results.items()},
        result.best,
        f"Model comparison (best: {result.best})",
    )


# -- champion ----------------------------------------------------------------------------


def select_champion(
    results: Mapping[str, ModelResult], metric: str, skip_flagged: bool = True
) -> Selection:
    """The model with the best ``metric``; with ``skip_flagged``, among those not flagged
    over-trained.

    Best is highest, except for :data:`LOWER_IS_BETTER` metrics (the expected limit
    ``mu_up_expected``, whose median is the flat metric).

    With a single split an over-trained model's test score is an optimistic guess of how
    it generalises, so ``skip_flagged`` passes it over even when its number is higher (when
    every model is flagged the best one is still chosen, with a warning). Under k-fold the
    metric is out-of-fold, every event scored by a model that never saw it: that is the
    honest figure, so the pipeline chooses by it alone and only reports the flag.
    """
    values = {n: r.metrics().get(metric) for n, r in results.items()}
    if any(v is None for v in values.values()):
        raise ConfigError(
            f"evaluation.select_metric {metric!r} is not a metric of the models; use e.g. "
            "'auc_test' or 'eff_s_at_eff_b_0.1_test' ('z0_expected' and 'mu_up_expected' need "
            "a 'result:' block)"
        )
    ranked = sorted(values, key=lambda n: float(values[n]), reverse=metric not in LOWER_IS_BETTER)
    flagged = [n for n in ranked if results[n].overtrained]
    if not skip_flagged:
        best = ranked[0]
        selection = Selection(
            best, metric, float(values[best]), flagged=flagged, skip_flagged=False
        )
        if best in flagged:
            selection.note = (
                f"champion {best} (best {metric}) is flagged over-trained (KS test of train "
                "vs out-of-fold scores); its out-of-fold figures are still honest. Set "
                "evaluation.skip_flagged: true to pass over flagged models."
            )
        return selection
    fine = [n for n in ranked if n not in flagged]
    if not fine:
        best = ranked[0]
        warning = (
            f"every model is flagged over-trained (KS p-value of train vs test scores below "
            f"{results[best].report.ks_threshold:g}); chose {best} by {metric} anyway. Its test "
            "figures may be optimistic: regularise the models or train on more events."
        )
        return Selection(best, metric, float(values[best]), [], warning, flagged=flagged)
    best = fine[0]
    passed = ranked[: ranked.index(best)]
    selection = Selection(best, metric, float(values[best]), passed, flagged=flagged)
    if passed:
        selection.note = (
            f"passed over {', '.join(passed)} (better {metric} but flagged over-trained); "
            f"champion: {best}"
        )
    return selection


# -- files --------------------------------------------------------------------------------


def model_summary(result: ModelResult) -> dict[str, Any]:
    """The key figures of one model, as written to metrics.json."""
    return {
        **result.report.to_summary(),
        "train_seconds": round(result.train_seconds, 3),
        "predict_seconds": round(result.predict_seconds, 3),
        "model_uri": result.model_uri,
        "run_id": result.run_id,
        "device": result.classifier.device_,
        "max_train_events": max_train_events(result.classifier),
        **(result.folds.summary() if result.folds is not None else {}),
        **(result.tuning.summary() if result.tuning is not None else {}),
        **(result.physics.to_summary() if result.physics is not None else {}),
    }


def metrics_document(result: PipelineResult) -> dict[str, Any]:
    """``metrics.json``: the parent ``mlflow_run_id``, ``wall_seconds`` and, per model name,
    its key figures."""
    doc: dict[str, Any] = {"mlflow_run_id": result.run_id}
    doc.update({name: model_summary(r) for name, r in result.results.items()})
    doc["champion"] = result.selection.summary()
    doc["wall_seconds"] = round(result.wall_seconds, 3)
    return doc


def summary_markdown(result: PipelineResult) -> str:
    """``summary.md``: run identifiers, the champion choice, the comparison table, the plots."""
    selection = result.selection
    header = {
        "pipeline": result.name,
        "mlflow run": result.run_id,
        "experiment": result.experiment,
        "tracking URI": result.tracking_uri,
        "best model": f"{selection.best} (by {selection.metric})",
    }
    table = run_comparison(result)
    lines = [f"# {result.name} — model comparison", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += [f"- **note**: {n}" for n in (selection.note, *result.notes) if n]
    if selection.warning:
        lines.append(f"- **warning**: {selection.warning}")
    lines += ["", "| " + " | ".join(table.titles) + " |"]
    lines.append("|" + "---|" * len(table.titles))
    for name, row in zip(result.results, table.rows, strict=True):
        label = f"**{name}**" if name == result.best else name
        lines.append("| " + " | ".join([label, *row[1:]]) + " |")
    lines += [
        "",
        "effS@B=x: signal efficiency at background efficiency x. KS p: Kolmogorov-Smirnov",
        "p-value of train vs test score distributions; 'overtrained' when either is below the",
        "threshold (with evaluation.skip_flagged, the default for a single split, such models",
        "are not chosen as champion while another is not flagged; under k-fold the champion",
        "is the best by its out-of-fold figures).",
        "Plots: `plots/roc.png`, `plots/<model>_overtraining.png`, learning curves, feature",
        "importance, input correlations and distributions.",
        "",
    ]
    if result_channels(table.metrics or {}):
        lines[-1:-1] = [
            "Z0 exp, mu95 exp: expected discovery significance and median 95 % CL limit on mu",
            "with all channels of the physics result fitted together; '<channel> Z0/mu95': that",
            "channel fitted alone (`results/<model>/result.json` holds the limit bands).",
        ]
    return "\n".join(lines)


def write_reports(result: PipelineResult, folder: Path) -> dict[str, Path]:
    """Write ``metrics.json`` and ``summary.md`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics, summary = folder / "metrics.json", folder / "summary.md"
    metrics.write_text(json.dumps(metrics_document(result), indent=2, default=float))
    summary.write_text(summary_markdown(result))
    return {"metrics": metrics, "summary": summary}
