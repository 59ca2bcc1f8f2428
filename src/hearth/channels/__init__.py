"""Chat channels (Telegram, …): adapters between a messaging service and Hearth's services.

A channel is a peer of the gateway: it listens to domain events on the bus and calls the
services directly. Domain packages never import channels.
"""
