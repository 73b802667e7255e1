"""Let daphne close a WebSocket with the RFC 6455 protocol codes.

Layer: transport.  Installed once by ``chatsite/asgi.py``.

daphne turns an ASGI ``websocket.close`` into autobahn's ``sendClose``, which
only accepts 1000 and 3000-4999 (codes for applications).  The codes this
server closes with on a protocol error -- 1002 protocol error, 1008 policy
violation, 1009 message too big, 1011 internal error (see
:data:`chat.errors.WIRE_ERRORS`) -- made it raise, the close frame was never
sent, and the client stayed connected to a session the server had already
forgotten.  The patched ``serverClose`` sends those codes as the close frame
they are; every other code takes daphne's own path.
"""

from __future__ import annotations

from typing import Any

#: Codes RFC 6455 lets an endpoint send that autobahn's sendClose refuses.
PROTOCOL_CLOSE_CODES = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server: nothing to patch
        return
    if getattr(WebSocketProtocol.serverClose, "chat_patched", False):
        return
    original = WebSocketProtocol.serverClose

    def server_close(self: Any, code: int | None = None) -> None:
        if code in PROTOCOL_CLOSE_CODES:
            if self.state == self.STATE_OPEN:
                self.sendCloseFrame(code=code, isReply=False)
            return
        original(self, code)

    server_close.chat_patched = True  # type: ignore[attr-defined]
    WebSocketProtocol.serverClose = server_close
