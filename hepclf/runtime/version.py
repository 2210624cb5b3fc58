"""The package version, in a module of its own: outputs, caches and exports stamp it without
importing the package face."""

__version__ = "0.1.0"
