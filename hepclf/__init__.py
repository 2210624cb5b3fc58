"""hepclf: separate signal from background events in ROOT files."""

__version__ = "0.1.0"
