#!/bin/sh
# Entry point of the chat server image (deploy/Dockerfile).
#
# CHAT_WORKER_ID must differ for every start of a worker process: a worker
# refreshes the presence rows tagged with its id, so a restarted worker that
# reused its predecessor's id would keep that one's sockets "online" forever.
# The default (<hostname>-<pid>) repeats in a container restarted in place
# (same hostname, same pid), so add the start time and a random suffix.
set -eu
if [ -z "${CHAT_WORKER_ID:-}" ]; then
    CHAT_WORKER_ID="$(hostname)-$(date +%s)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    export CHAT_WORKER_ID
fi
exec "$@"
