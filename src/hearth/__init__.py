"""Hearth: a self-hosted gateway for a personal AI agent."""

# The single source of the version: the build reads it from here (`[tool.hatch.version]`), so
# every CLI run is spared importing importlib.metadata and scanning installed distributions.
__version__ = "0.1.0"

__all__ = ["__version__"]
