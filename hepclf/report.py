"""Human-facing results of a pipeline run: the comparison table, metrics.json and summary.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from hepclf.pipeline import ModelResult, PipelineResult

COLUMNS = (
    ("model", None),
    ("AUC test", "auc_test"),
    ("AUC train", "auc_train"),
    ("effS@B=0.01 test", ("0.01", "test")),
    ("effS@B=0.01 train", ("0.01", "train")),
    ("effS@B=0.1 test", ("0.1", "test")),
    ("effS@B=0.1 train", ("0.1", "train")),
    ("KS p sig", "ks_pvalue_signal"),
    ("KS p bkg", "ks_pvalue_background"),
    ("overtrained", "overtrained"),
    ("train s", "train_seconds"),
)


def model_summary(result: ModelResult) -> dict[str, Any]:
    """The key figures of one model, as written to metrics.json."""
    return {
        **result.report.to_summary(),
        "train_seconds": round(result.train_seconds, 3),
        "model_uri": result.model_uri,
        "run_id": result.run_id,
        "device": result.classifier.device_,
    }


def metrics_document(result: PipelineResult) -> dict[str, Any]:
    """``metrics.json``: the parent ``mlflow_run_id`` and, per model name, its key figures."""
    doc: dict[str, Any] = {"mlflow_run_id": result.run_id}
    doc.update({name: model_summary(r) for name, r in result.results.items()})
    return doc


def _cells(summary: dict[str, Any]) -> list[str]:
    cells = []
    for _, key in COLUMNS[1:]:
        if isinstance(key, tuple):
            value = summary["eff_s_at_eff_b"][key[0]][key[1]]
        else:
            value = summary[key]
        if isinstance(value, bool):
            cells.append("YES" if value else "no")
        elif key == "train_seconds":
            cells.append(f"{value:.1f}")
        elif key in ("ks_pvalue_signal", "ks_pvalue_background"):
            cells.append(f"{value:.3g}")
        else:
            cells.append(f"{value:.4f}")
    return cells


def comparison_table(result: PipelineResult) -> Table:
    """One row per model, best model marked, for the terminal."""
    table = Table(title=f"Model comparison (best: {result.best})", title_justify="left")
    for title, _ in COLUMNS:
        table.add_column(title, justify="left" if title == "model" else "right")
    for name, r in result.results.items():
        marker = " *" if name == result.best else ""
        table.add_row(name + marker, *_cells(model_summary(r)))
    return table


def summary_markdown(result: PipelineResult, header: dict[str, str]) -> str:
    """``summary.md``: run identifiers, the comparison table and the plots."""
    lines = [f"# {header.get('pipeline', 'hepclf')} — model comparison", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += ["", "| " + " | ".join(t for t, _ in COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    for name, r in result.results.items():
        label = f"**{name}**" if name == result.best else name
        lines.append("| " + " | ".join([label, *_cells(model_summary(r))]) + " |")
    lines += [
        "",
        "effS@B=x: signal efficiency at background efficiency x. KS p: Kolmogorov-Smirnov",
        "p-value of train vs test score distributions; 'overtrained' when either is below the",
        "threshold. Plots: `plots/roc.png`, `plots/<model>_overtraining.png`, learning curves,",
        "feature importance, input correlations and distributions.",
        "",
    ]
    return "\n".join(lines)
