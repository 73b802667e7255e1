"""Let daphne close a WebSocket with the RFC 6455 protocol codes, and leave form bodies to the application.

Layer: transport.  Installed once by ``chatsite/asgi.py``.

daphne turns an ASGI ``websocket.close`` into autobahn's ``sendClose``, which
only accepts 1000 and 3000-4999 (codes for applications).  The codes this
server closes with on a protocol error -- 1002 protocol error, 1008 policy
violation, 1009 message too big, 1011 internal error (see
:data:`channels_socketio.errors.WIRE_ERRORS`) -- made it raise, the close frame was never
sent, and the client stayed connected to a session the server had already
forgotten; daphne also drops the close reason.  The patched ``handle_reply``
sends the close frame with its code and reason, the protocol codes directly,
the others through autobahn's checks.

Twisted, under daphne, also parses every ``multipart/form-data`` body itself
(into ``request.args``, which daphne never reads), whole and in memory,
and answers a body it cannot parse with an empty 400 before the application
sees it: :func:`install` turns that off, so uploads reach the application's
own streaming parser and limits.
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
    _leave_forms_to_the_application()
    if getattr(WebSocketProtocol.handle_reply, "chat_patched", False):
        return
    original = WebSocketProtocol.handle_reply

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
            code = message.get("code") or 1000
            reason = (message.get("reason") or "").encode()[:123]
            if code in PROTOCOL_CLOSE_CODES:
                self.sendCloseFrame(code=code, reasonUtf8=reason or None, isReply=False)
            else:
                self.sendClose(code=code, reason=reason.decode(errors="ignore") or None)
            return
        original(self, message)

    handle_reply.chat_patched = True  # type: ignore[attr-defined]
    WebSocketProtocol.handle_reply = handle_reply


def _leave_forms_to_the_application() -> None:
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest.__init__, "chat_patched", False):
        return
    original = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # twisted.web.http.Request's switch (Twisted 22.10+)

    __init__.chat_patched = True  # type: ignore[attr-defined]
    WebRequest.__init__ = __init__
