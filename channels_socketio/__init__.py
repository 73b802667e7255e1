"""A Socket.IO v5 / Engine.IO v4 server for Django Channels.

The engine: a pure wire codec (:mod:`channels_socketio.wire`), the transports
(:mod:`channels_socketio.transport`: Engine.IO sessions, long-polling,
WebSocket, upgrade, the worker channel and the polling relay) and the
protocol core (:mod:`channels_socketio.protocol`: namespaces, sockets, acks,
rooms across processes, the emitter).  It knows nothing of the application
on top: what it needs comes in through :mod:`channels_socketio.errors`,
:mod:`channels_socketio.observer` and the options and callbacks its servers
take.  See ``README.md`` in this folder.
"""
