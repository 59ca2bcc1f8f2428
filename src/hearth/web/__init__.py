"""The web dashboard: its built bundle (`static/`, made by `make web` from `web/`) and the
routes that serve it with a strict Content-Security-Policy."""
