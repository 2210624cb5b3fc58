"""Rich views of library results: the only place that turns hepclf's data into terminal
output (tables, spinners, coloured notes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import rich.progress
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from hepclf.runtime.progress import Advance, FinishedModel, Progress

if TYPE_CHECKING:
    from hepclf.ingest.summary import Rows
    from hepclf.tracking.compare import ExperimentRuns
    from hepclf.training.report import Comparison


def comparison_table(comparison: Comparison, width: int | None = None) -> Table:
    """The comparison as a compact table (short headers, no inner borders) that fits ``width``.

    One line per model when that fits (or ``width`` is None); else two lines per model,
    each test figure above its train figure; if even that is too wide, the least telling
    columns are left out and the caption names them. Values are never cut.
    """
    table = _comparison_table(comparison)
    if width is None or comparison.metrics is None or natural_width(table) <= width:
        return table
    from hepclf.training.report import STACKED_COLUMNS, narrow_drop_order
    from hepclf.training.report import comparison as build

    left_out: list[str] = []
    narrow = build(comparison.metrics, comparison.best, comparison.title, STACKED_COLUMNS)
    for drop in ("", *narrow_drop_order(comparison.metrics)):
        if drop:
            if drop not in narrow.titles:  # not shown (e.g. no model has that figure)
                continue
            left_out.append(drop)
        narrow = build(
            comparison.metrics, comparison.best, comparison.title, STACKED_COLUMNS, tuple(left_out)
        )
        table = _comparison_table(narrow, leading=1)
        if natural_width(table) <= width:
            break
    if left_out:
        table.caption = f"left out at {width} columns: {', '.join(left_out)}"
        table.caption_justify = "left"
    return table


def _comparison_table(comparison: Comparison, leading: int = 0) -> Table:
    table = Table(
        title=comparison.title or None,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
        leading=leading,
    )
    height = max(h.count("\n") for h in comparison.headers)
    for i, header in enumerate(comparison.headers):  # headers aligned at the bottom
        header = "\n" * (height - header.count("\n")) + header
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    for row in comparison.rows:
        table.add_row(*row)
    return table


def natural_width(table: Table) -> int:
    """The columns a table takes when nothing has to wrap or be cut."""
    wide = Console(width=10_000)
    return Measurement.get(wide, wide.options, table).maximum


def rows_table(rows: Rows) -> Table:
    """Plain rows (e.g. the ingest summary) as a compact table: names left, numbers right,
    two-line headers; numbers are never cut, long names fold onto a second line."""
    table = Table(
        title=rows.title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for i, header in enumerate(rows.headers):
        text = i < rows.text_columns
        table.add_column(
            "\n".join(header.rsplit(" ", 1)),
            justify="left" if text else "right",
            overflow="fold" if text else "ellipsis",
            no_wrap=not text,
        )
    for row in rows.rows:
        table.add_row(*row)
    return table


def run_tables(found: ExperimentRuns, width: int | None = None) -> list[tuple[str, Table]]:
    """Per pipeline run: a heading (id, start, status, champion) and its comparison table.

    The heading is a line of its own rather than the table's title, which Rich would wrap
    to the width of a narrow table.
    """
    from hepclf.training.report import comparison

    tables = []
    for run in found.runs:
        status = run.status if run.status == "FINISHED" else f"[bold red]{run.status}[/]"
        if run.status == "FINISHED":
            champion = f", best: {run.best}" if run.best else ""
        else:
            champion = " (not finished: no champion)"
        heading = f"run {run.run_id[:8]}  {run.started}  {status}{champion}"
        rows = {
            name + ("" if run.model_status.get(name) == "FINISHED" else " (unfinished)"): m
            for name, m in run.models.items()
        }
        tables.append((heading, comparison_table(comparison(rows, run.best, ""), width)))
    return tables


class RichProgress(Progress):
    """Spinners for steps, one line per finished model, notes and warnings."""

    bars = True

    def __init__(self, console: Console, err_console: Console) -> None:
        self.console, self.err_console = console, err_console
        self._bars: rich.progress.Progress | None = None

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Advance]:
        """A transient bar on stderr; bars open at the same time share one live display."""
        owner = self._bars is None
        if self._bars is None:
            self._bars = rich.progress.Progress(
                rich.progress.TextColumn("[bold]{task.description:>6}"),
                rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(),
                rich.progress.TimeElapsedColumn(),
                rich.progress.TimeRemainingColumn(),
                console=self.err_console,
                transient=True,
            )
            self._bars.start()
        bars = self._bars
        task = bars.add_task(escape(description), total=total)
        try:
            yield lambda n: bars.advance(task, n)
        finally:
            if owner:
                bars.stop()
                self._bars = None

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        with self.console.status(escape(description)):
            yield

    def note(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def warn(self, message: str) -> None:
        self.err_console.print(
            f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
        )

    def model_done(self, result: FinishedModel) -> None:
        self.console.print(
            f"  {result.name}: test AUC {result.report.auc_test:.4f}, "
            f"{result.train_seconds:.1f} s on {result.classifier.device_}",
            highlight=False,
        )
