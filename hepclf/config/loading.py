"""Reading a pipeline: YAML to :class:`PipelineConfig`, pydantic's errors to one message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hepclf.config.pipeline import PipelineConfig
from hepclf.runtime.errors import ConfigError
from hepclf.runtime.files import close_matches


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """A hint for a misspelt key: the closest key allowed where it stands, or the list."""
    model: Any = PipelineConfig
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item) if isinstance(model, type) else None
        if field is None:
            return ""
        model = _model_in(field.annotation)
        if model is None:
            return ""
    allowed = [k for k in model.model_fields if k != "base_dir"]
    found = close_matches(str(loc[-1]), allowed, n=1)
    return f"; did you mean '{found[0]}'?" if found else f"; allowed here: {', '.join(allowed)}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def parse_pipeline(
    data: Any, source: str = "<pipeline>", base_dir: Path | None = None
) -> PipelineConfig:
    """Validate a mapping as a pipeline, turning pydantic errors into one readable message."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of pipeline keys, got {type(data).__name__}"
        )
    try:
        return PipelineConfig.model_validate({**data, "base_dir": base_dir or Path(".")})
    except ConfigError as err:  # a model's parameters (see _known_model_params)
        raise ConfigError(f"{source}: models: {err}") from None
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = tuple(x for x in e["loc"] if x not in ("function-after",))
            where = _format_location(loc)
            got = e.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            hint = _did_you_mean(loc) if e["type"] == "extra_forbidden" else ""
            lines.append(f"  - {where}: {e['msg']}{shown}{hint}")
        raise ConfigError(
            f"{source}: the pipeline is not valid:\n"
            + "\n".join(lines)
            + "\nSee pipelines/demo.yaml for a complete, commented example."
        ) from None


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML; relative file patterns resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found; give the path to a pipeline YAML")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_pipeline(data, source=str(path), base_dir=path.parent.resolve())
