"""The heartbeat: on an interval a model reads HEARTBEAT.md and alerts only when action is needed.

`checklist` parses the file, `runner` performs one run (one model call for every open item,
dedupe, the "heartbeat is failing" alert), `target` lets the scheduler fire it, and `service`
is what the gateway calls. Only the checklist is re-exported here: the CLI needs it (for
`hearth init`) without loading the model layer.
"""

from hearth.heartbeat.checklist import (
    EXAMPLE,
    Checklist,
    ChecklistError,
    parse_checklist,
    parse_interval,
    read_checklist,
)

__all__ = [
    "EXAMPLE",
    "Checklist",
    "ChecklistError",
    "parse_checklist",
    "parse_interval",
    "read_checklist",
]
