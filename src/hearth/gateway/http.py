"""Plain HTTP routes served next to the WebSocket on the same port."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from hearth.gateway.readiness import readiness
from hearth.gateway.state import GatewayState
from hearth.protocol import protocol_schema


class HttpRoutes:
    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self._schema = protocol_schema()

    async def healthz(self, request: Request) -> JSONResponse:
        """200 when the database answers; 503 otherwise (for load balancers and monitors)."""
        if await self.state.db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse(
            {"status": "unavailable", "reason": "database does not answer"}, status_code=503
        )

    async def readyz(self, request: Request) -> JSONResponse:
        """200 only when this node can do its work: see `gateway.readiness`."""
        result = await readiness(self.state)
        if result.ready:
            return JSONResponse({"status": "ready", "checks": result.checks})
        failing = {name: why for name, why in result.checks.items() if why != "ok"}
        return JSONResponse(
            {"status": "not ready", "checks": result.checks, "failing": failing},
            status_code=503,
        )

    async def protocol_schema(self, request: Request) -> JSONResponse:
        return JSONResponse(self._schema)
