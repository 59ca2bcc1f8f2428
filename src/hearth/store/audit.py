"""Who is answering right now, for the audit columns of an approval.

An approval can be answered through several layers (the gateway's handler, the workflow
engine or the chat service, then the repository). Rather than threading the answerer through
each of them, the entry point that knows who is speaking (the WebSocket dispatcher, a channel
adapter) sets `current_answerer` for the task handling the request, and
`ApprovalRepository.resolve` records it. Resolutions made without one (expiry, shutdown) stay
unattributed, which is what they are.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Answerer:
    client: str | None = None
    channel: str | None = None
    user: str | None = None
    address: str | None = None

    def columns(self) -> dict[str, str | None]:
        return {
            "answered_client": self.client,
            "answered_channel": self.channel,
            "answered_user": self.user,
            "answered_address": self.address,
        }


current_answerer: contextvars.ContextVar[Answerer | None] = contextvars.ContextVar(
    "hearth_answerer", default=None
)
