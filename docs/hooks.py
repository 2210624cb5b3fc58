"""mkdocs hooks: the configuration and CLI references, generated from the code at build time.

``<!-- configuration-reference -->`` in a page becomes tables of every pipeline key, built
from the pydantic models of :mod:`hepclf.config` and the models' ``Params`` (types,
defaults, and the docstrings or descriptions of the fields), so the reference cannot drift
from what the YAML loader accepts. ``<!-- cli-reference -->`` becomes the output of Typer's
own ``typer hepclf.cli utils docs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # document this checkout's code, not another installed copy

CONFIG_MARK = "<!-- configuration-reference -->"
CLI_MARK = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CONFIG_MARK in markdown:
        markdown = markdown.replace(CONFIG_MARK, configuration_reference())
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    return markdown


def configuration_reference() -> str:
    """One table per pipeline section (its YAML path as heading), then one per model."""
    from hepclf.config import PipelineConfig
    from hepclf.models import MODEL_TYPES

    sections: list[tuple[str, type[BaseModel]]] = []
    _collect("(top level)", PipelineConfig, sections)
    parts = [_section(path, model, dict(sections)) for path, model in sections]
    parts.append(
        "## Model hyperparameters {#models}\n\n`models: {NAME: {KEY: VALUE}}`; an unknown key "
        "is an error that lists the allowed ones."
    )
    for name, cls in MODEL_TYPES.items():
        extra = f" (needs `pip install 'hepclf[{cls.extra}]'`)" if cls.extra else ""
        parts.append(_section(f"models.{name}", cls.Params, {}, note=extra))
    return "\n\n".join(parts)


def _collect(path: str, model: type[BaseModel], out: list[tuple[str, type[BaseModel]]]) -> None:
    out.append((path, model))
    prefix = "" if path == "(top level)" else f"{path}."
    for key, field in model.model_fields.items():
        nested = _model_in(field.annotation)
        if nested is not None and all(m is not nested for _, m in out):
            many = _is_list(field.annotation)
            _collect(f"{prefix}{key}{'[]' if many else ''}", nested, out)


def _section(
    path: str, model: type[BaseModel], anchors: dict[str, type[BaseModel]], note: str = ""
) -> str:
    doc = " ".join((model.__doc__ or "").split())
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, field in model.model_fields.items():
        if field.exclude:
            continue
        meaning = " ".join((field.description or "").split())
        rows.append(
            f"| `{key}` | {_cell(_type(field.annotation, anchors))} | "
            f"{_cell(_default(field))} | {_cell(meaning)} |"
        )
    return f"## `{path}` {{#{_anchor(path)}}}\n\n{doc}{note}\n\n" + "\n".join(rows)


def _anchor(path: str) -> str:
    return "top-level" if path == "(top level)" else path.replace("[]", "").replace(".", "-")


def _type(annotation: Any, anchors: dict[str, type[BaseModel]]) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for path, model in anchors.items():
            if model is annotation:
                return f"[mapping](#{_anchor(path)})"
        return "mapping"
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a, anchors) for a in args)
    if origin is list:
        return f"list of {_type(args[0], anchors)}"
    if origin is tuple:
        return "[" + ", ".join(_type(a, anchors) for a in args) + "]"
    if origin is dict:
        return f"mapping of {_type(args[0], anchors)} to {_type(args[1], anchors)}"
    if typing.get_origin(annotation) is typing.Annotated:
        return _type(args[0], anchors)
    names = {str: "text", int: "integer", float: "number", bool: "true/false", Any: "any"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "the whole zoo" if field.alias is None and "zoo" in str(field.description) else "{}"
    if field.default is PydanticUndefined:
        return "required"
    if isinstance(field.default, BaseModel):
        return "its defaults"
    if field.default is None:
        return "null"
    if isinstance(field.default, bool):
        return f"`{str(field.default).lower()}`"
    return f"`{field.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _is_list(annotation: Any) -> bool:
    """``list[X]``, also inside ``list[X] | None``."""
    if typing.get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in typing.get_args(annotation))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def cli_reference() -> str:
    """Typer's own Markdown for every command and option (``typer ... utils docs``)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "typer", "hepclf.cli", "utils", "docs", "--name", "hepclf"],
        capture_output=True,
        text=True,
        env={**env, "TERMINAL_WIDTH": "100"},
        cwd=REPO,
        timeout=300,
        check=True,
    )
    # the page has its own title: Typer's headings move one level down
    return "\n".join(
        "#" + line if line.startswith("#") else line for line in done.stdout.splitlines()
    )
