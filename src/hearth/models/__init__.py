"""The model layer on pydantic-ai: providers from configuration, structured output with fallback,
and requests that degrade instead of failing on weak local servers.

Importing this package does not import pydantic-ai or a provider SDK (seconds of start-up for
every CLI command): they are imported where a model is first built or called.
"""

from hearth.models.capabilities import Capabilities, ToolLevel
from hearth.models.errors import MAX_REASON, ModelCallError, describe, one_line
from hearth.models.factory import ModelFactory, ModelNotConfiguredError, ResolvedModel
from hearth.models.structured import run_model

__all__ = [
    "MAX_REASON",
    "Capabilities",
    "ModelCallError",
    "ModelFactory",
    "ModelNotConfiguredError",
    "ResolvedModel",
    "ToolLevel",
    "describe",
    "one_line",
    "run_model",
]
