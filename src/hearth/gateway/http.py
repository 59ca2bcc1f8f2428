"""Plain HTTP routes served next to the WebSocket on the same port."""

from __future__ import annotations

import ipaddress
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hearth.gateway.readiness import readiness
from hearth.gateway.state import GatewayState
from hearth.protocol import protocol_schema
from hearth.store.stats import live_counts


class HttpRoutes:
    def __init__(self, state: GatewayState) -> None:
        self.state = state

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

    async def metrics(self, request: Request) -> Response:
        """Prometheus text format; off unless `[metrics] enabled`, and without a configured
        token only scrapers on this machine may read it (counts reveal activity)."""
        settings = self.state.settings.metrics
        if not settings.enabled:
            return PlainTextResponse("metrics are off: set [metrics] enabled = true", 404)
        if settings.token:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent.encode(), f"Bearer {settings.token}".encode()):
                return PlainTextResponse("a bearer token is required", 401)
        elif not _is_loopback(request.client.host if request.client else None):
            return PlainTextResponse(
                "only loopback may scrape without a token: set [metrics] token", 403
            )
        metrics = self.state.metrics
        metrics.set_connections(c.client.name if c.client else None for c in self.state.connections)
        running, pending = await live_counts(self.state.db)
        metrics.set_state(running=running, approvals_pending=pending)
        metrics.sync_bus_reconnects(self.state.bus.reconnects)
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    async def protocol_schema(self, request: Request) -> JSONResponse:
        # Built on the first request, not at start (~0.1 s of schema generation).
        return JSONResponse(protocol_schema())


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
