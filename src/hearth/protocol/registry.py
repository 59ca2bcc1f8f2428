"""Builds the `ClientMessage` / `ServerMessage` unions from the family modules.

Families are discovered, not listed, so later features add a module under
`hearth.protocol.messages` without editing a central table. The unions are built once per
process into immutable adapters; they hold no mutable state.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from hearth.protocol import messages
from hearth.protocol.base import PROTOCOL_VERSION, ClientMessage, ServerMessage


def _family_modules() -> list[ModuleType]:
    """Every family module under `hearth.protocol.messages`, imported, in name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(messages.__path__))
    return [importlib.import_module(f"{messages.__name__}.{name}") for name in names]


@cache
def _family_server_models(family: str) -> dict[str, type[ServerMessage]]:
    module = importlib.import_module(f"{messages.__name__}.{family}")
    return _index(module.SERVER_MESSAGES, "server")


def server_model(kind: str) -> type[ServerMessage] | None:
    """The server message class for `kind`, importing only the family that defines it.

    `family_index` says which family that is; a type it does not know (a stale index during
    development) falls back to discovering every family.
    """
    from hearth.protocol.family_index import SERVER_FAMILIES

    family = SERVER_FAMILIES.get(kind)
    if family is not None:
        model = _family_server_models(family).get(kind)
        if model is not None:
            return model
    return server_models().get(kind)


def _type_literal(model: type[Any]) -> str:
    default = model.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{model.__name__}.type needs a Literal default")
    return default


def _index(models: Iterable[type[Any]], kind: str) -> dict[str, type[Any]]:
    index: dict[str, type[Any]] = {}
    for model in models:
        key = _type_literal(model)
        if key in index:
            raise TypeError(f"duplicate {kind} message type {key!r}")
        index[key] = model
    return index


@cache
def client_models() -> dict[str, type[ClientMessage]]:
    """Every client message class by its `type`."""
    return _index((m for mod in _family_modules() for m in mod.CLIENT_MESSAGES), "client")


@cache
def server_models() -> dict[str, type[ServerMessage]]:
    """Every server message class by its `type`."""
    return _index((m for mod in _family_modules() for m in mod.SERVER_MESSAGES), "server")


def _union_adapter(models: Iterable[type[Any]]) -> TypeAdapter[Any]:
    members = tuple(models)
    union = Union[members]  # type: ignore[valid-type]  # noqa: UP007 - built at run time
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


@cache
def client_adapter() -> TypeAdapter[Any]:
    """Parses one client frame into the right model (discriminated on `type`)."""
    return _union_adapter(client_models().values())


@cache
def server_adapter() -> TypeAdapter[Any]:
    """Parses one server frame; the client uses it so replies are typed too."""
    return _union_adapter(server_models().values())


def parse_client(raw: str | bytes) -> ClientMessage:
    """Validate one client frame. Raises `pydantic.ValidationError` with the field path."""
    message: ClientMessage = client_adapter().validate_json(raw)
    return message


def parse_server(raw: str | bytes) -> ServerMessage:
    """Validate one server frame with the one model its `type` names.

    Clients go straight to the model rather than through the union so that only the families a
    command really receives are imported and only their validators built (see `WireModel`'s
    `defer_build` and `family_index`).
    Frames that are not an object with a known `type` go through the union, whose error names
    the problem.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    kind = data.get("type") if isinstance(data, dict) else None
    model = server_model(kind) if isinstance(kind, str) else None
    if model is None:
        message: ServerMessage = server_adapter().validate_json(raw)
        return message
    return model.model_validate(data)


@cache
def protocol_schema() -> dict[str, Any]:
    """The published schema: `{"protocol", "client", "server"}` as JSON Schema documents.

    Cached: it is fixed for the life of the process; callers must not mutate it.
    """
    return {
        "protocol": PROTOCOL_VERSION,
        "client": client_adapter().json_schema(by_alias=True),
        "server": server_adapter().json_schema(by_alias=True, mode="serialization"),
    }
