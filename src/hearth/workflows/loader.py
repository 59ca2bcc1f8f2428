"""Reading workflow files: one bad file is reported, never fatal, and never hides the others.

Every problem becomes one line "<path>: line <N>: <where>: <what>", with the line taken from the
YAML node that pydantic's error location points at, so a misspelt key in a long file can be
found without counting list items. Only `yaml.safe_load` constructs objects; `yaml.compose`
(with the safe loader) is used for line numbers alone.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from hearth.workflows.definition import DefinitionError, WorkflowDef, format_loc, key_message

__all__ = [
    "WORKFLOW_ID_PATTERN",
    "LoadedWorkflow",
    "WorkflowFileError",
    "line_of",
    "load_workflow_dirs",
    "load_workflow_file",
    "parse_workflow_source",
]

log = logging.getLogger("hearth.workflows.loader")

WORKFLOW_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
_SUFFIXES = (".yaml", ".yml")


class WorkflowFileError(ValueError):
    """The text of a workflow file is not a valid workflow; the message is ready to show."""


@dataclass(frozen=True)
class LoadedWorkflow:
    id: str
    path: Path
    source: str
    #: sha256 of the file's bytes: lets an execution pin the exact definition it started with.
    content_hash: str
    definition: WorkflowDef | None
    error: str | None

    @property
    def valid(self) -> bool:
        return self.definition is not None and self.error is None


def load_workflow_file(path: Path) -> LoadedWorkflow:
    """Load one file; any problem with it ends up in `error`, never as an exception."""
    workflow_id = path.stem
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return LoadedWorkflow(
            workflow_id, path, "", _sha256(b""), None, f"{path}: cannot read the file: {reason}"
        )
    content_hash = _sha256(data)
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LoadedWorkflow(
            workflow_id,
            path,
            "",
            content_hash,
            None,
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)",
        )
    errors: list[str] = []
    if not re.fullmatch(WORKFLOW_ID_PATTERN, workflow_id):
        errors.append(
            f"{path}: the file name gives the workflow id {workflow_id!r}, which may only contain "
            "letters, digits, '_' and '-'; rename the file"
        )
    definition: WorkflowDef | None = None
    try:
        definition = parse_workflow_source(source, path)
    except WorkflowFileError as exc:
        errors.append(str(exc))
    if errors:
        return LoadedWorkflow(workflow_id, path, source, content_hash, None, "\n".join(errors))
    return LoadedWorkflow(workflow_id, path, source, content_hash, definition, None)


def load_workflow_dirs(dirs: Sequence[Path]) -> dict[str, LoadedWorkflow]:
    """All `*.yaml` / `*.yml` files of `dirs`, by workflow id (sorted).

    When two files give the same id, the one from the earlier directory (or, within one
    directory, the first by name, so `a.yaml` before `a.yml`) wins and the other is only logged:
    the data directory comes first, so a user's file overrides a shared one.
    """
    found: dict[str, LoadedWorkflow] = {}
    for directory in dirs:
        if not directory.is_dir():
            log.debug("workflow directory %s does not exist; skipped", directory)
            continue
        for path in _workflow_files(directory):
            workflow_id = path.stem
            if workflow_id in found:
                log.warning(
                    "workflow %r: %s is ignored because %s has the same id",
                    workflow_id,
                    path,
                    found[workflow_id].path,
                )
                continue
            found[workflow_id] = load_workflow_file(path)
    return dict(sorted(found.items()))


def _workflow_files(directory: Path) -> list[Path]:
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        log.warning("cannot list workflow directory %s: %s", directory, exc)
        return []
    return sorted(
        path
        for path in entries
        # Editors leave hidden files (".#x.yaml", ".x.yaml.swp") next to the real ones.
        if path.suffix in _SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def parse_workflow_source(source: str, path: Path | None = None) -> WorkflowDef:
    """Parse and validate the text of a workflow file, e.g. a snapshot pinned in the database.

    Raises WorkflowFileError with one line per problem, each starting with the path (or
    "<workflow>" when there is none).
    """
    where = str(path) if path is not None else "<workflow>"
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        raise WorkflowFileError(f"{where}: {line}invalid YAML: {detail}") from None
    except yaml.YAMLError as exc:
        raise WorkflowFileError(f"{where}: invalid YAML: {exc}") from None
    if root is None or data is None:
        raise WorkflowFileError(
            f"{where}: the file is empty; a workflow needs at least 'name' and 'steps'"
        )
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise WorkflowFileError(
            f"{where}: line {root.start_mark.line + 1}: expected a mapping with 'name' and "
            f"'steps' at the top level, got {_yaml_kind(data)}"
        )
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise WorkflowFileError("\n".join(f"{where}: {problem}" for problem in duplicates))
    try:
        return WorkflowDef.model_validate(data)
    except ValidationError as exc:
        lines = [
            _format_problem(where, root, problem)
            for error in exc.errors()
            for problem in _problems(root, error)
        ]
        raise WorkflowFileError("\n".join(lines)) from None


def line_of(source: str, loc: Sequence[str | int]) -> int | None:
    """1-based line of the YAML node at `loc` (`("steps", 2, "args", "path")`) in `source`.

    For checks made after the file parsed (tools, references), so they point at a line like
    the schema errors do. None when the text is not YAML (it parsed once, so that is rare).
    """
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return None
    return _find(root, tuple(loc))[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _yaml_kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return type(data).__name__


def _duplicate_keys(node: yaml.Node) -> list[str]:
    """PyYAML keeps the last of two equal keys silently; a repeated key is always a mistake."""
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(current: yaml.Node) -> None:
        if id(current) in seen_nodes:  # aliases share nodes
            return
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: dict[str, int] = {}
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                    line = key_node.start_mark.line + 1
                    if key_node.value in keys:
                        problems.append(
                            f"line {line}: duplicate key {key_node.value!r} "
                            f"(already on line {keys[key_node.value]})"
                        )
                    else:
                        keys[key_node.value] = line
                walk(value_node)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                walk(item)

    walk(node)
    return problems


Loc = tuple[str | int, ...]


def _problems(root: yaml.Node, error: ErrorDetails) -> list[tuple[Loc, Loc, str]]:
    """(where to say, where to find the line, message) for one pydantic error.

    Our own DefinitionErrors are expanded into one entry per issue.
    """
    loc: Loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, DefinitionError):
        return [((*loc, *issue.loc), (*loc, *issue.loc), issue.message) for issue in cause.issues]
    kind = error["type"]
    if loc and loc[-1] == "[key]" and len(loc) > 1:
        # pydantic's way of saying a mapping key (a YAML boolean or number) is not a string;
        # its loc holds the converted key (`on` arrives as True, even as 1), so quote the YAML.
        key_node = _find(root, loc[:-1])[1]
        key: object = key_node.value if isinstance(key_node, yaml.ScalarNode) else loc[-2]
        return [(loc[:-2], loc[:-1], key_message(key))]
    if kind == "extra_forbidden":
        return [(loc, loc, _unknown_key_message(loc))]
    if kind == "missing":
        return [(loc, loc, "required key is missing")]
    return [(loc, loc, error["msg"].removeprefix("Value error, "))]


def _format_problem(where: str, root: yaml.Node, problem: tuple[Loc, Loc, str]) -> str:
    place, line_loc, message = problem
    line = _find(root, line_loc)[0]
    return f"{where}: line {line}: {format_loc(place) or '(top level)'}: {message}"


def _find(root: yaml.Node, loc: Loc) -> tuple[int, yaml.Node | None]:
    """1-based line of the deepest YAML node `loc` reaches, and the key node of its last part.

    The line is a key's own line for the last part (for a block value that is the line the
    reader recognises) and a value's first line on the way there.
    """
    node = root
    line = root.start_mark.line
    last_key: yaml.Node | None = None
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if _key_matches(key_node, part):
                    line = key_node.start_mark.line
                    node = value_node
                    if last:
                        last_key = key_node
                    elif not isinstance(value_node, yaml.ScalarNode):
                        line = value_node.start_mark.line
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1, last_key


def _key_matches(key_node: yaml.Node, part: str | int) -> bool:
    if not isinstance(key_node, yaml.ScalarNode):
        return False
    if key_node.value == str(part):
        return True
    if isinstance(part, str):
        return False
    # A non-string key in pydantic's loc came from an unquoted YAML scalar such as `on` or `1`.
    try:
        return bool(yaml.safe_load(key_node.value) == part)
    except yaml.YAMLError:
        return False


def _unknown_key_message(loc: tuple[str | int, ...]) -> str:
    key = str(loc[-1]) if loc else ""
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    fields = list(model.model_fields)
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (expected one of: {', '.join(fields)})"


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc`, found by walking annotations."""
    current: Any = WorkflowDef
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is list and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X and `Annotated[X, ...]` → X, so the walk can look inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or origin is types.UnionType:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
