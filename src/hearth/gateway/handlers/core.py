"""Liveness and status."""

from __future__ import annotations

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.gateway.handlers.mcp import server_infos
from hearth.gateway.handlers.telegram import status_info
from hearth.protocol import PROTOCOL_VERSION, GatewayStatus, GatewayStatusResult, Ping, Pong
from hearth.store.nodes import NodeRepository


@handles(Ping)
def ping(message: Ping, ctx: HandlerContext) -> Pong:
    return Pong(id=message.id)


@handles(GatewayStatus)
async def gateway_status(message: GatewayStatus, ctx: HandlerContext) -> GatewayStatusResult:
    state = ctx.state
    return GatewayStatusResult(
        id=message.id,
        version=state.version,
        protocol=PROTOCOL_VERSION,
        uptime_s=round(state.uptime_s, 3),
        connections=len(state.connections),
        database=state.db.backend,
        node_id=state.node_id,
        nodes=len(await NodeRepository(state.db).live()),
        telegram=status_info(state.telegram)
        if state.telegram is not None and state.telegram.settings.enabled
        else None,
        mcp=server_infos(state.mcp),
    )
