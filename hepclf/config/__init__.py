"""The pipeline YAML: one analysis described as data, validated with pydantic.

Everything downstream (ingest, split, normalisation, the zoo, tracking, scoring) reads
its settings from :class:`PipelineConfig`, so the keys here are a contract. One module a
section: :mod:`.samples`, :mod:`.features`, :mod:`.training` (split, normalisation,
categories, tuning, evaluation), :mod:`.result` (the physics result); :mod:`.pipeline`
holds them together and :mod:`.loading` reads the YAML.
"""

from hepclf.config.loading import load_pipeline, parse_pipeline
from hepclf.config.pipeline import PipelineConfig

__all__ = ["PipelineConfig", "load_pipeline", "parse_pipeline"]
