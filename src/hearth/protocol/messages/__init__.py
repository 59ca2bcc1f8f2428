"""Message families. Each module here is one family and lists its own messages.

A module exposes `CLIENT_MESSAGES` and `SERVER_MESSAGES` tuples; `hearth.protocol.registry`
discovers every module in this package, so adding a family means adding a file and nothing else.
"""
