"""The model layer on pydantic-ai: providers from configuration, structured output with fallback."""

from hearth.models.factory import ModelFactory, ModelNotConfiguredError, ResolvedModel
from hearth.models.structured import ModelCallError, run_model

__all__ = [
    "ModelCallError",
    "ModelFactory",
    "ModelNotConfiguredError",
    "ResolvedModel",
    "run_model",
]
