/**
 * Attachments in <RealTimeChat>: a message's files (raster images inline, everything else
 * as a download link; names are always text) and the composer's uploads (a file picker,
 * progress while a file uploads, the uploaded files to send with the next message).
 *
 * Links: a file of a history page carries its own short-lived signed `url`; one received
 * live carries `url: null` (one broadcast for every member), and its link is asked for
 * through the client's REST lookup (`session.attachmentUrl`), once per attachment and
 * session for a few minutes.  An image whose link has expired by the time it loads asks
 * for a fresh one once.  Nothing here talks to the server except through @chatserver/client.
 */

import { absolute, type ChatAttachment, type ChatSession } from "@chatserver/client";
import { useEffect, useState } from "react";

const RASTER = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** Signed links last a few minutes: a fetched one is reused for less than that. */
const LINK_TTL_MS = 240_000;
/** Shown at most this wide (height scaled to match), as in the widget. */
const IMAGE_MAX_WIDTH = 320;

const links = new WeakMap<ChatSession, Map<string, { url: Promise<string>; at: number }>>();

/** A fresh link for an attachment received without one: asked for once per session for LINK_TTL_MS. */
function fetchLink(session: ChatSession, attachment: ChatAttachment, force = false): Promise<string> {
  let known = links.get(session);
  if (!known) links.set(session, (known = new Map()));
  const held = known.get(attachment.id);
  if (held && !force && Date.now() - held.at < LINK_TTL_MS) return held.url;
  const url = force
    ? session.client.attachmentLink(session.workspaceId, session.sessionId, attachment.id)
    : session.attachmentUrl({ ...attachment, url: null });
  const entry = { url, at: Date.now() };
  known.set(attachment.id, entry);
  url.catch(() => known.get(attachment.id) === entry && known.delete(attachment.id));
  return url;
}

type Link = { url: string | null; failed: boolean };

/**
 * The link to show for `attachment`: its own (made absolute), else one fetched.  `retry` asks
 * for a fresh one (a failed lookup, an expired link); `expired` does so once, for an image that
 * would not load.
 */
function useAttachmentLink(session: ChatSession | null, attachment: ChatAttachment): Link & { retry: () => void; expired: () => void } {
  const own = attachment.url ? (session ? absolute(session.client.options.url ?? "", attachment.url) : attachment.url) : null;
  const [attempt, setAttempt] = useState(0);
  const [fetched, setFetched] = useState<Link & { key: string }>({ key: "", url: null, failed: false });
  const key = `${attachment.id}:${attempt}`;
  const fetching = !own || attempt > 0;
  useEffect(() => {
    if (!fetching || !session) return;
    let live = true;
    fetchLink(session, attachment, attempt > 0).then(
      (url) => live && setFetched({ key, url, failed: false }),
      () => live && setFetched({ key, url: null, failed: true }),
    );
    return () => {
      live = false;
    };
  }, [session, key, fetching]); // eslint-disable-line react-hooks/exhaustive-deps -- `key` names the attachment and attempt
  const retry = () => setAttempt((n) => n + 1);
  const expired = () => setAttempt((n) => (n === 0 ? 1 : n));
  if (!fetching) return { url: own, failed: false, retry, expired };
  return fetched.key === key ? { url: fetched.url, failed: fetched.failed, retry, expired } : { url: null, failed: false, retry, expired };
}

function sizeLabel(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function AttachmentEntry({ session, attachment }: { session: ChatSession | null; attachment: ChatAttachment }) {
  const { url, failed, retry, expired } = useAttachmentLink(session, attachment);
  const image = RASTER.has(attachment.contentType);
  const size = sizeLabel(attachment.size);
  let body;
  if (failed) {
    body = (
      <span className="rtc-attachment__unavailable">
        {attachment.name} ({size}) is not available.{" "}
        <button type="button" className="rtc__link" onClick={retry} aria-label={`Try loading ${attachment.name} again`}>
          Retry
        </button>
      </span>
    );
  } else if (!url) {
    body = (
      <span className="rtc-attachment__pending" aria-busy="true">
        {attachment.name} ({size})…
      </span>
    );
  } else if (image) {
    const width = attachment.width && attachment.height ? Math.min(attachment.width, IMAGE_MAX_WIDTH) : undefined;
    const height = width && attachment.width && attachment.height ? Math.round((width * attachment.height) / attachment.width) : undefined;
    body = (
      <a href={url} target="_blank" rel="noopener noreferrer" className="rtc-attachment__image-link">
        <img className="rtc-attachment__image" src={url} alt={attachment.name} width={width} height={height} onError={expired} />
      </a>
    );
  } else {
    body = (
      <a href={url} target="_blank" rel="noopener noreferrer" download={attachment.name} className="rtc-attachment__file">
        {attachment.name} ({size})
      </a>
    );
  }
  return (
    <li className="rtc-attachment" data-attachment-id={attachment.id} data-kind={image ? "image" : "file"}>
      {body}
    </li>
  );
}

/** A message's files. */
export function Attachments({ session, attachments }: { session: ChatSession | null; attachments: readonly ChatAttachment[] }) {
  if (!attachments.length) return null;
  return (
    <ul className="rtc-attachments" aria-label="Attachments">
      {attachments.map((attachment) => (
        <AttachmentEntry key={attachment.id} session={session} attachment={attachment} />
      ))}
    </ul>
  );
}

/** A file of the composer: uploading (`progress` 0..1, null before the first report), uploaded, or refused. */
export interface Upload {
  key: number;
  name: string;
  progress: number | null;
  attachment: ChatAttachment | null;
  error: string | null;
}

/** The composer's files and what they are doing. */
export function UploadList({ uploads, onRemove }: { uploads: readonly Upload[]; onRemove: (key: number) => void }) {
  if (!uploads.length) return null;
  return (
    <ul className="rtc-uploads" aria-label="Files to send">
      {uploads.map((upload) => {
        const state = upload.error ? "failed" : upload.attachment ? "ready" : "uploading";
        const percent = upload.progress === null ? null : Math.round(upload.progress * 100);
        return (
          <li key={upload.key} className="rtc-upload" data-state={state}>
            <span className="rtc-upload__name">{upload.name}</span>
            {state === "uploading" && (
              <>
                <progress
                  className="rtc-upload__progress"
                  max={1}
                  value={upload.progress ?? undefined}
                  aria-label={`Uploading ${upload.name}`}
                />
                <span className="rtc-upload__percent">{percent === null ? "Uploading…" : `${percent}%`}</span>
              </>
            )}
            {state === "failed" && (
              <span className="rtc-upload__error" role="alert">
                {upload.error}
              </span>
            )}
            {state !== "uploading" && (
              <button type="button" className="rtc__link" aria-label={`Remove ${upload.name}`} onClick={() => onRemove(upload.key)}>
                Remove
              </button>
            )}
          </li>
        );
      })}
    </ul>
  );
}
