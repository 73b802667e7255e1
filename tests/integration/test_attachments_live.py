"""Attachments against real servers, on both backends (services: two workers sharing PostgreSQL, Redis
and the attachments directory): upload over HTTP, send over a socket, seen live by another member on the
other worker, in history, downloaded by signed link; refusals, each with its code and nothing stored."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration import attachment_files as files
from tests.integration.chat_client import assert_error, client_pool, db_rows, issue_tokens, stored_messages, unique

API = "/api/v1"
CEILING = 200_000


@dataclass
class Live:
    first: ServerProcess
    second: ServerProcess
    ws: str
    tokens: dict[str, str]
    store: Path
    carol: str

    async def request(self, who: str | None, method: str, path: str, *, server: ServerProcess | None = None, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        headers.update(kw.pop("headers", {}))
        url = f"{(server or self.first).url}{path}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, url, headers=headers, **kw) as response:
                body = await response.read()
                return response.status, response.headers, body

    async def upload(self, who: str, data: bytes, filename: str, session: str, declared: str = "image/png"):
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type=declared)
        status, _, body = await self.request(
            who, "POST", f"{API}/workspaces/{self.ws}/sessions/{session}/attachments/", data=form
        )
        return status, json.loads(body)

    def files(self) -> list[Path]:
        return [path for path in self.store.rglob("*") if path.is_file()]


@pytest.fixture(scope="module")
def live(module_server_factory, module_backend, tmp_path_factory) -> Live:
    store = tmp_path_factory.mktemp("attachments")
    env = {
        "CHAT_API_RATE_LIMIT": "10000/m",
        "CHAT_ATTACHMENTS_DIR": str(store),
        "CHAT_ATTACHMENT_MAX_BYTES_CEILING": str(CEILING),
    }
    # uvicorn, production's server, and (services) daphne: both stream uploads to the application.
    first = module_server_factory(module_backend, conformance=False, server="uvicorn", **env)
    # Embedded servers each keep their own SQLite database: a second worker needs the services backend.
    second = module_server_factory(module_backend, conformance=False, **env) if module_backend.name == "services" else first
    ws, suffix = unique("ws"), unique("u")
    names = {"alice": "member", "carol": "member"}
    tokens = issue_tokens(first, [(f"{name}-{suffix}", ws, role) for name, role in names.items()])
    other = issue_tokens(first, [(f"bob-{suffix}", unique("other"), "member")])
    tokens = {name: tokens[f"{name}-{suffix}"] for name in names} | {"bob": other[f"bob-{suffix}"]}
    return Live(first, second, ws, tokens, store, carol=f"carol-{suffix}")


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def shared_session(live: Live) -> str:
    """A session of alice's, shared with carol."""
    key = unique("s")
    sessions = f"{API}/workspaces/{live.ws}/sessions/"
    status, _, body = await live.request("alice", "POST", sessions, json={"id": key, "title": "files"})
    assert status == 201, body
    status, _, body = await live.request("alice", "POST", f"{sessions}{key}/share/", json={"username": live.carol})
    assert status == 200, body
    return key


async def test_upload_send_live_history_and_download_across_workers(live, new):
    session = await shared_session(live)
    carol = await new("carol").connect(live.second.url, live.tokens["carol"], ["websocket"])
    await carol.join(live.ws, session)
    alice = await new("alice").connect(live.first.url, live.tokens["alice"], ["websocket"])
    await alice.join(live.ws, session)
    image = files.png(12, 7)
    status, uploaded = await live.upload("alice", image, "../../etc/photo.png", session)
    assert status == 201, uploaded
    assert (uploaded["name"], uploaded["contentType"], uploaded["width"], uploaded["height"]) == ("photo.png", "image/png", 12, 7)
    ack = await alice.send(session, "the photo", attachments=[uploaded["id"]])
    assert ack["ok"] is True, ack
    received = await carol.wait_for("chat:message-received", lambda m: m["id"] == ack["messageId"])
    [shown] = received["attachments"]
    assert {k: shown[k] for k in ("id", "name", "contentType", "size")} == {
        "id": uploaded["id"], "name": "photo.png", "contentType": "image/png", "size": len(image)
    }
    assert shown["url"] is None  # one payload for every member
    history = await carol.call("chat:request-history", {"sessionId": session, "workspaceId": live.ws})
    [message] = [m for m in history["messages"] if m["id"] == ack["messageId"]]
    url = message["attachments"][0]["url"]
    status, headers, body = await live.request(None, "GET", url, server=live.second)
    assert status == 200 and body == image
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert headers["Content-Disposition"].startswith("inline")
    # the link is carol's: another workspace's member cannot even look the attachment up
    path = f"{API}/workspaces/{live.ws}/sessions/{session}/attachments/{uploaded['id']}/"
    status, _, body = await live.request("bob", "GET", path)
    assert status == 404 and b"not_a_member" in body
    token = url.rstrip("/").rsplit("/", 1)[1]
    status, _, body = await live.request(None, "GET", f"{API}/attachments/{token[:-2]}xx/")
    assert status == 403 and b"attachment_link_invalid" in body
    [(stored_name,)] = db_rows(live.first, "SELECT storage_name FROM chat_attachment WHERE public_id = ?", [uploaded["id"]])
    assert (live.store / stored_name).read_bytes() == image and uploaded["id"] in stored_name


async def test_hostile_sends_are_refused_with_codes_and_store_nothing(live, new):
    session = await shared_session(live)
    alice = await new("alice").connect(live.first.url, live.tokens["alice"], ["websocket"])
    await alice.join(live.ws, session)
    status, carols = await live.upload("carol", files.png(), "carol.png", session)
    assert status == 201, carols
    mark = alice.mark()
    ack = await alice.send(session, "not mine", attachments=[carols["id"]])
    assert_error(ack, "attachment_not_found", alice, "chat:send-message", mark)
    mark = alice.mark()
    ack = await alice.send(session, "eleven", attachments=[f"{n:032x}" for n in range(11)])
    assert_error(ack, "too_many_attachments", alice, "chat:send-message", mark)
    before = live.files()
    raw = (  # the NUL percent-encoded, as clients send what a header cannot carry (RFC 7578)
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="../../etc/passwd%00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + files.png() + b"\r\n--b--\r\n"
    )
    status, _, body = await live.request(
        "alice", "POST", f"{API}/workspaces/{live.ws}/sessions/{session}/attachments/",
        data=raw, headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (status, json.loads(body)["code"]) == (400, "attachment_name_invalid") and live.files() == before
    mark = alice.mark()
    ack = await alice.send(session, "traversal", attachments=["../../etc/passwd"])
    assert_error(ack, "invalid_payload", alice, "chat:send-message", mark)
    assert stored_messages(live.first, live.ws, session) == []


@pytest.mark.parametrize(
    "data, filename, declared, code",
    [
        (files.HTML, "page.html", "text/html", "attachment_type_not_allowed"),
        (files.SVG, "logo.svg", "image/svg+xml", "attachment_type_not_allowed"),
        (files.LIAR, "photo.png", "image/png", "attachment_type_not_allowed"),
    ],
)
async def test_hostile_uploads_are_refused(live, data, filename, declared, code):
    session = await shared_session(live)
    before = live.files()
    status, body = await live.upload("alice", data, filename, session, declared)
    assert (status, body["code"]) == (415, code)
    assert live.files() == before


async def post_raw(live: Live, path: str, *, chunked: bool, size: int) -> tuple[bytes, int]:
    """POST ``size`` bytes (declared, or chunked without a length); the raw response and the bytes sent.

    A plain socket: the server answers 413 and closes while the body still
    streams, which a regular client reports as a failed write.
    """
    host, port = live.first.url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    length = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}".encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {live.tokens['alice']}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b\r\n" + length + b"\r\n\r\n"
    )
    answer = bytearray()

    async def read() -> None:  # at once: a close with our bytes unread resets the connection, answer and all
        try:
            while chunk := await reader.read(65536):
                answer.extend(chunk)
        except (ConnectionError, OSError):
            pass

    reading = asyncio.create_task(read())
    chunk, sent = b"y" * 65536, 0
    try:
        for _ in range(size // len(chunk) + 1):
            if answer:
                break
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await writer.drain()
            sent += len(chunk)
    except (ConnectionError, OSError):
        pass  # the server stopped reading
    await asyncio.wait_for(reading, 10)
    writer.close()
    return bytes(answer), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_a_body_over_the_ceiling_is_refused_while_it_arrives(live, chunked):
    session = await shared_session(live)
    before = live.files()
    path = f"{API}/workspaces/{live.ws}/sessions/{session}/attachments/"
    answer, sent = await post_raw(live, path, chunked=chunked, size=64 * 1024 * 1024 if chunked else CEILING + 100_000)
    if chunked and not answer:
        # The server answered and closed while bytes were still arriving: the reset can overtake its answer
        # on the client's side.  Either way it stopped reading long before the 64 MB ended.
        assert sent < 8 * 1024 * 1024, sent
    else:
        assert answer.startswith(b"HTTP/1.1 413") and b"attachment_too_large" in answer, answer[:300]
    assert live.files() == before
