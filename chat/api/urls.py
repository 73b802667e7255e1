"""Routes of ``/api/v1/``.

Sessions are addressed by their client id within their workspace, messages
by theirs within their session, users by username, so every URL names its
workspace first.  ``metrics/`` and ``health/`` are the monitoring
endpoints; any other path under ``/api/v1/`` that matches no route is a
JSON 404, like every other error here.
"""

from django.urls import path, re_path

from security.api_views import SocketTokenView

from . import attachments, feedback, messages, monitoring, presence, reactions, security_events, sessions, workspaces
from .views import not_found

W = "workspaces/<str:workspace>"
S = f"{W}/sessions/<str:session>"

urlpatterns = [
    path("auth/socket-token", SocketTokenView.as_view(), name="socket-token"),
    # workspaces and members
    path("workspaces/", workspaces.WorkspaceList.as_view(), name="workspace-list"),
    path(f"{W}/", workspaces.WorkspaceDetail.as_view(), name="workspace-detail"),
    path(f"{W}/members/", workspaces.MemberList.as_view(), name="member-list"),
    path(f"{W}/members/<str:username>/", workspaces.MemberDetail.as_view(), name="member-detail"),
    path(f"{W}/members/<str:username>/mute/", workspaces.MemberMute.as_view(), name="member-mute"),
    path(f"{W}/members/<str:username>/unmute/", workspaces.MemberUnmute.as_view(), name="member-unmute"),
    path(f"{W}/bans/", workspaces.BanList.as_view(), name="ban-list"),
    path(f"{W}/bans/<str:username>/", workspaces.BanDetail.as_view(), name="ban-detail"),
    # sessions
    path(f"{W}/sessions/", sessions.SessionList.as_view(), name="session-list"),
    path(f"{S}/", sessions.SessionDetail.as_view(), name="session-detail"),
    path(f"{S}/close/", sessions.SessionClose.as_view(), name="session-close"),
    path(f"{S}/share/", sessions.SessionShare.as_view(), name="session-share"),
    path(f"{S}/share/<str:username>/", sessions.SessionUnshare.as_view(), name="session-unshare"),
    path(f"{S}/presence/", sessions.SessionPresence.as_view(), name="session-presence"),
    path(f"{S}/read/", reactions.SessionRead.as_view(), name="session-read"),
    # messages
    path(f"{S}/messages/", messages.MessageList.as_view(), name="message-list"),
    path(f"{S}/messages/<str:message>/", messages.MessageDetail.as_view(), name="message-detail"),
    path(f"{S}/messages/<str:message>/versions/", messages.MessageVersions.as_view(), name="message-versions"),
    path(f"{S}/messages/<str:message>/reactions/<str:emoji>/", reactions.MessageReaction.as_view(), name="reaction"),
    path(f"{S}/messages/<str:message>/hide/", messages.MessageHide.as_view(), name="message-hide"),
    path(f"{S}/messages/<str:message>/unhide/", messages.MessageUnhide.as_view(), name="message-unhide"),
    path(f"{W}/messages/", messages.MessageSearch.as_view(), name="message-search"),
    # attachments: uploads to a session, and downloads by signed link (no credentials: the link is one)
    path(f"{S}/attachments/", attachments.AttachmentUpload.as_view(), name="attachment-list"),
    path(f"{S}/attachments/<str:attachment>/", attachments.AttachmentDetail.as_view(), name="attachment-detail"),
    path("attachments/<str:token>/", attachments.AttachmentDownload.as_view(), name="attachment-download"),
    # presence and security
    path(f"{W}/presence/", presence.WorkspacePresence.as_view(), name="workspace-presence"),
    path(f"{W}/security-events/", security_events.SecurityEventList.as_view(), name="security-event-list"),
    path(f"{W}/feedback/", feedback.FeedbackList.as_view(), name="feedback-list"),
    # monitoring (staff or the ops token)
    path("metrics/", monitoring.MetricsAPIView.as_view(), name="monitoring-metrics"),
    path("health/", monitoring.HealthAPIView.as_view(), name="monitoring-health"),
    # last: a JSON 404 for the rest of /api/v1/
    re_path(r"", not_found, name="api-not-found"),
]
