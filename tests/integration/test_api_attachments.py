"""REST attachments in process: upload, refusals (each with its code, nothing stored), claiming by a message,
signed downloads and who may use them, housekeeping.  Live servers: ``test_attachments_live.py``."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signing import TimestampSigner
from django.utils import timezone

from chat.models import Attachment, ChatMessage, Membership, Workspace
from chat.services import attachment_links, attachments
from tests.integration import attachment_files as files
from tests.integration.api_support import API, committed, emitted, error_of, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
S = f"{API}/workspaces/acme/sessions/s"


@pytest.fixture
def store(settings, tmp_path: Path) -> Path:
    root = tmp_path / "attachments"
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.fixture
def session(world, store, emitted):
    session = world.session(world.a, "s", "alice")
    session.shared_with.add(world.users["carol"])
    return session


def content_of(response) -> bytes:
    """A streamed download's bytes (its iterator is asynchronous, as the ASGI server reads it)."""

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response])

    return async_to_sync(read)()


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def upload(world, who: str, data: bytes, filename: str = "f.bin", *, url: str = S, **fields):
    body = {"file": SimpleUploadedFile(filename, data, content_type=fields.pop("content_type", "image/png")), **fields}
    return world.client(who).post(f"{url}/attachments/", body, format="multipart")


def chat_config(monkeypatch, **changes) -> None:
    monkeypatch.setattr(settings, "CHAT", dataclasses.replace(settings.CHAT, **changes), raising=False)


def test_upload_sniffs_stores_under_its_id_and_answers_a_link(world, session, store):
    response = upload(world, "alice", files.png(640, 480), "holiday.png")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "holiday.png" and body["contentType"] == "image/png"
    assert (body["width"], body["height"], body["size"]) == (640, 480, len(files.png(640, 480)))
    row = Attachment.objects.get(public_id=body["id"])
    assert row.uploaded_by == world.users["alice"] and row.message is None and len(row.sha256) == 64
    [path] = stored_files(store)
    assert path.name == body["id"] and path.read_bytes() == files.png(640, 480)
    download = world.client(None).get(body["url"])
    assert download.status_code == 200
    assert content_of(download) == files.png(640, 480)
    assert download["Content-Type"] == "image/png" and download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert download["Content-Disposition"].startswith("inline")


@pytest.mark.parametrize(
    "data, name, expected",
    [
        (files.GIF, "a.gif", "image/gif"),
        (files.JPEG_HEAD, "a.jpg", "image/jpeg"),
        (files.PDF, "doc.pdf", "application/pdf"),
        (files.TEXT, "notes.txt", "text/plain"),
    ],
)
def test_other_types_are_sniffed_and_served_as_downloads(world, session, data, name, expected):
    response = upload(world, "alice", data, name, content_type="application/x-anything")
    assert response.status_code == 201, response.json()
    assert response.json()["contentType"] == expected
    download = world.client(None).get(response.json()["url"])
    disposition = download["Content-Disposition"]
    assert disposition.startswith("inline" if expected.startswith("image/") else "attachment"), disposition
    if expected == "image/jpeg":
        assert (response.json()["width"], response.json()["height"]) == (64, 32)


@pytest.mark.parametrize(
    "data, name, declared, sniffed",
    [
        (files.HTML, "page.html", "text/html", "text/html"),
        (files.SVG, "logo.svg", "image/svg+xml", "image/svg+xml"),
        (files.LIAR, "photo.png", "image/png", "text/html"),
        (files.BINARY, "tool.exe", "image/png", "application/octet-stream"),
    ],
)
def test_scriptable_and_unlisted_types_are_refused_and_nothing_is_stored(
    world, session, store, data, name, declared, sniffed
):
    body = error_of(upload(world, "alice", data, name, content_type=declared), 415, "attachment_type_not_allowed")
    assert body["contentType"] == sniffed
    assert not Attachment.objects.exists() and stored_files(store) == []


def test_a_workspace_listing_html_still_never_accepts_it(world, session, store):
    world.a.attachment_types = "text/html,image/svg+xml,image/png"
    world.a.save()
    error_of(upload(world, "alice", files.HTML, "x.html"), 415, "attachment_type_not_allowed")
    assert upload(world, "alice", files.png(), "ok.png").status_code == 201
    error_of(upload(world, "alice", files.PDF, "doc.pdf"), 415, "attachment_type_not_allowed")  # not on its list


def test_over_the_workspace_limit_is_refused_while_streaming(world, session, store):
    world.a.attachment_max_bytes = 1000
    world.a.save()
    body = error_of(upload(world, "alice", files.TEXT * 100, "big.txt"), 413, "attachment_too_large")
    assert body["maxBytes"] == 1000
    assert not Attachment.objects.exists() and stored_files(store) == []
    assert upload(world, "alice", files.TEXT, "small.txt").status_code == 201


def test_path_traversal_names_only_a_display_name(world, session, store):
    response = upload(world, "alice", files.png(), "../../etc/passwd")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "passwd"
    [path] = stored_files(store)
    assert path.parent.parent == store and path.name == response.json()["id"]


@pytest.mark.parametrize("name", ["../../etc/passwd\x00.png", "evil\u202egnp.exe", "a\nb.png", "x" * 256])
def test_control_characters_in_the_display_name_are_refused(world, session, store, name):
    error_of(upload(world, "alice", files.png(), "f.png", name=name), 400, "attachment_name_invalid")
    assert not Attachment.objects.exists() and stored_files(store) == []


def test_pending_uploads_are_capped_per_user(world, session, store, monkeypatch):
    chat_config(monkeypatch, attachments_pending_max=2)
    for _ in range(2):
        assert upload(world, "alice", files.png(), "p.png").status_code == 201
    error_of(upload(world, "alice", files.png(), "p.png"), 429, "attachments_pending_limit")
    assert Attachment.objects.count() == 2 and len(stored_files(store)) == 2
    assert upload(world, "carol", files.png(), "p.png").status_code == 201  # per user


def test_uploads_are_rate_limited(world, session, monkeypatch):
    chat_config(monkeypatch, upload_rate_limit=2)
    from chat.services import screening

    screening.limiter.cache_clear()
    assert [upload(world, "alice", files.png(), "p.png").status_code for _ in range(2)] == [201, 201]
    error_of(upload(world, "alice", files.png(), "p.png"), 429, "rate_limited")


def test_only_members_with_access_upload(world, session, store):
    error_of(upload(world, "bob", files.png()), 404, "not_a_member")
    error_of(upload(world, "bob", files.png(), url=f"{API}/workspaces/beta/sessions/s"), 404, "session_not_found")
    world.session(world.a, "private", "mod")
    error_of(upload(world, "alice", files.png(), url=f"{API}/workspaces/acme/sessions/private"), 404, "session_not_found")
    assert stored_files(store) == []


def post(world, who: str, key: str, ids: list[str]):
    body = {"id": key, "content": f"see attached ({key})", "attachments": ids}  # distinct: repeats are spam
    return world.client(who).post(f"{S}/messages/", body, format="json")


def test_a_message_claims_uploads_and_every_shape_carries_them(world, session, emitted, committed):
    first = upload(world, "alice", files.png(8, 6), "one.png").json()
    second = upload(world, "alice", files.PDF, "two.pdf").json()
    response = post(world, "alice", "m1", [first["id"], second["id"]])
    assert response.status_code == 201, response.json()
    sent = response.json()["attachments"]
    assert [a["id"] for a in sent] == [first["id"], second["id"]] and all(a["url"] for a in sent)
    message = ChatMessage.objects.get(key="m1")
    assert set(Attachment.objects.filter(message=message).values_list("public_id", flat=True)) == {
        first["id"],
        second["id"],
    }
    [(_, broadcast)] = emitted.events("chat:message-received")
    assert [a["id"] for a in broadcast["attachments"]] == [first["id"], second["id"]]
    assert all(a["url"] is None for a in broadcast["attachments"])  # one payload for everyone: nobody's link
    history = world.client("carol").get(f"{S}/messages/").json()["results"]
    [carols] = [m for m in history if m["id"] == "m1"]
    assert [a["name"] for a in carols["attachments"]] == ["one.png", "two.pdf"]
    assert world.client(None).get(carols["attachments"][0]["url"]).status_code == 200
    detail = world.client("carol").get(f"{S}/attachments/{first['id']}/")
    assert detail.status_code == 200 and detail.json()["url"]
    again = post(world, "alice", "m1", [first["id"], second["id"]])  # a resend: the original
    assert again.status_code == 200 and again.json()["duplicate"] is True and len(again.json()["attachments"]) == 2


def test_claims_that_are_refused_store_nothing(world, session, monkeypatch):
    mine = upload(world, "alice", files.png(), "mine.png").json()["id"]
    carols = upload(world, "carol", files.png(), "carols.png").json()["id"]
    world.session(world.a, "other", "alice")
    elsewhere = upload(world, "alice", files.png(), url=f"{API}/workspaces/acme/sessions/other").json()["id"]
    error_of(post(world, "alice", "m1", [mine, carols]), 404, "attachment_not_found")
    error_of(post(world, "alice", "m2", [elsewhere]), 404, "attachment_not_found")
    error_of(post(world, "alice", "m3", ["0" * 32]), 404, "attachment_not_found")
    error_of(post(world, "alice", "m4", ["../../etc/passwd"]), 400, "invalid_payload")
    chat_config(monkeypatch, attachments_per_message=10)
    error_of(post(world, "alice", "m5", [f"{n:032x}" for n in range(11)]), 400, "too_many_attachments")
    assert not ChatMessage.objects.exists()
    assert Attachment.objects.filter(message__isnull=False).count() == 0
    assert post(world, "alice", "m6", [mine]).status_code == 201
    error_of(post(world, "alice", "m7", [mine]), 409, "attachment_in_use")
    assert list(ChatMessage.objects.values_list("key", flat=True)) == ["m6"]


def test_pending_uploads_are_the_uploaders_alone(world, session):
    mine = upload(world, "alice", files.png(), "mine.png").json()["id"]
    error_of(world.client("carol").get(f"{S}/attachments/{mine}/"), 404, "attachment_not_found")
    error_of(world.client("bob").get(f"{S}/attachments/{mine}/"), 404, "not_a_member")
    error_of(world.client("alice").get(f"{S}/attachments/not-an-id/"), 404, "attachment_not_found")
    # a link made for carol is refused as well: the attachment is not hers to see
    error_of(world.client(None).get(attachment_links.download_url(mine, world.users["carol"].pk)), 404, "attachment_not_found")


def test_links_bind_the_user_and_expire(world, session, monkeypatch):
    body = upload(world, "alice", files.png(), "mine.png").json()
    post(world, "alice", "m1", [body["id"]])
    url = world.client("carol").get(f"{S}/attachments/{body['id']}/").json()["url"]
    assert world.client(None).get(url).status_code == 200
    # for a member of another workspace: the same answer as for nothing at all
    bobs = attachment_links.download_url(body["id"], world.users["bob"].pk)
    nothing = attachment_links.download_url("f" * 32, world.users["carol"].pk)
    assert error_of(world.client(None).get(bobs), 404, "attachment_not_found") == error_of(
        world.client(None).get(nothing), 404, "attachment_not_found"
    )
    token = url.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    error_of(world.client(None).get(f"{API}/attachments/{forged}/"), 403, "attachment_link_invalid")
    other_salt = TimestampSigner(salt="something-else").sign_object({"a": body["id"], "u": world.users["carol"].pk})
    error_of(world.client(None).get(f"{API}/attachments/{other_salt}/"), 403, "attachment_link_invalid")
    chat_config(monkeypatch, attachment_url_ttl_s=1)
    real_time = time.time
    monkeypatch.setattr("time.time", lambda: real_time() + 5)
    error_of(world.client(None).get(url), 403, "attachment_link_expired")


def test_losing_access_kills_the_link(world, session):
    body = upload(world, "alice", files.png(), "mine.png").json()
    post(world, "alice", "m1", [body["id"]])
    url = world.client("carol").get(f"{S}/attachments/{body['id']}/").json()["url"]
    session.shared_with.remove(world.users["carol"])
    error_of(world.client(None).get(url), 404, "attachment_not_found")


def test_housekeeping_purges_stale_uploads_and_deleted_messages_attachments(world, session, store):
    stale = upload(world, "alice", files.png(), "stale.png").json()["id"]
    kept = upload(world, "alice", files.png(), "kept.png").json()["id"]
    sent = upload(world, "alice", files.png(), "sent.png").json()["id"]
    post(world, "alice", "m1", [sent])
    Attachment.objects.filter(public_id=stale).update(created_at=timezone.now() - timedelta(days=2))
    assert attachments.purge() == 1
    assert set(Attachment.objects.values_list("public_id", flat=True)) == {kept, sent}
    ChatMessage.objects.filter(key="m1").update(deleted_at=timezone.now() - timedelta(minutes=1))
    assert attachments.purge() == 0  # still within the workspace's edit window (15 minutes by default)
    Workspace.objects.filter(pk=session.workspace_id).update(edit_window_s=3600)
    ChatMessage.objects.filter(key="m1").update(deleted_at=timezone.now() - timedelta(minutes=20))
    assert attachments.purge() == 0  # ... which this workspace made an hour
    ChatMessage.objects.filter(key="m1").update(deleted_at=timezone.now() - timedelta(hours=2))
    assert attachments.purge() == 1
    assert list(Attachment.objects.values_list("public_id", flat=True)) == [kept]
    assert [path.name for path in stored_files(store)] == [kept]


def test_membership_is_checked_at_download_time(world, session):
    body = upload(world, "alice", files.png(), "mine.png").json()
    Membership.objects.filter(user=world.users["alice"]).delete()
    error_of(world.client(None).get(body["url"]), 404, "attachment_not_found")


def test_the_admin_lists_attachments_scoped_and_deletes_their_files(world, session, store):
    from django.test import Client

    mine = upload(world, "alice", files.png(), "acme-photo.png").json()["id"]
    world.session(world.b, "bs", "bob")
    upload(world, "bob", files.png(), "beta-secret.png", url=f"{API}/workspaces/beta/sessions/bs")
    moderator = world.users["mod"]
    moderator.is_staff = True
    moderator.save()
    client = Client()
    client.force_login(moderator)
    listing = client.get("/admin/chat/attachment/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "acme-photo.png" in html and "beta-secret.png" not in html
    theirs = Attachment.objects.get(name="beta-secret.png")
    assert client.get(f"/admin/chat/attachment/{theirs.pk}/change/").status_code in (302, 403, 404)
    ours = Attachment.objects.get(public_id=mine)
    response = client.post(f"/admin/chat/attachment/{ours.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Attachment.objects.filter(public_id=mine).exists()
    assert [path.name for path in stored_files(store)] == [theirs.public_id]
