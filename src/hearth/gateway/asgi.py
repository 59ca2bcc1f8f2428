"""The Starlette application: one port for HTTP routes and the WebSocket."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from hearth.gateway.dispatch import Router
from hearth.gateway.http import HttpRoutes
from hearth.gateway.state import GatewayState
from hearth.gateway.websocket import WebSocketEndpoint
from hearth.web.routes import dashboard_routes


def build_asgi_app(state: GatewayState, router: Router) -> Starlette:
    http = HttpRoutes(state)
    ws = WebSocketEndpoint(state, router)
    return Starlette(
        routes=[
            Route("/healthz", http.healthz, methods=["GET"]),
            Route("/readyz", http.readyz, methods=["GET"]),
            Route("/metrics", http.metrics, methods=["GET"]),
            Route("/protocol.schema.json", http.protocol_schema, methods=["GET"]),
            WebSocketRoute("/ws", ws.handle),
            *dashboard_routes(),
        ]
    )
