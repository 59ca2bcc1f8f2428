"""Hearth: a self-hosted gateway for a personal AI agent."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hearthgate")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
