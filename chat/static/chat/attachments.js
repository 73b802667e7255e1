/**
 * Attachments in the chat UI: uploading a file with progress, and showing a message's files.
 *
 * Uploads go to `POST …/sessions/{s}/attachments/` (multipart) through
 * XMLHttpRequest, whose upload progress events fetch() does not give.  A
 * message's files come with `url: null` when they arrived live (one payload
 * for every member): their download link is asked for once, per user, with
 * `GET …/attachments/{id}/`.  Raster images are shown inline, everything
 * else as a link; names are always text.
 */

const RASTER = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/** An upload's refusal, with the server's code (`attachment_too_large`, `attachment_type_not_allowed`...). */
export class UploadError extends Error {
  constructor(status, body) {
    super(body?.error || `Upload failed (${status || "network"}).`);
    this.code = body?.code || (status ? "internal" : "network");
    this.status = status;
  }
}

/**
 * Upload `file`; resolves with the attachment (`{id, name, contentType, size, width, height, url}`).
 * @param {string} url the session's attachments endpoint
 * @param {File} file
 * @param {{headers?: Record<string, string>, onProgress?: (fraction: number) => void}} [options]
 */
export function uploadFile(url, file, { headers = {}, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.withCredentials = true;
    request.responseType = "json";
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status === 201) resolve(request.response);
      else reject(new UploadError(request.status, request.response));
    });
    request.addEventListener("error", () => reject(new UploadError(0, null)));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

/** Fresh download links, asked for once per attachment (they last a few minutes: asked again after). */
export class AttachmentLinks {
  /** @param {(id: string) => Promise<{url: string}>} fetchOne the REST lookup of one attachment */
  constructor(fetchOne, ttlMs = 240_000) {
    this.fetchOne = fetchOne;
    this.ttlMs = ttlMs;
    this.links = new Map();
  }

  /** The attachment's own link if it has one, else a fresh one for this user. */
  async urlFor(attachment) {
    if (attachment.url) return attachment.url;
    const known = this.links.get(attachment.id);
    if (known && Date.now() - known.at < this.ttlMs) return known.url;
    const promise = this.fetchOne(attachment.id).then((body) => body.url);
    this.links.set(attachment.id, { url: promise, at: Date.now() });
    try {
      return await promise;
    } catch (error) {
      this.links.delete(attachment.id);
      throw error;
    }
  }
}

function sizeLabel(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * Show a message's attachments in `container`: images inline, other files as links.
 * @param {HTMLElement} container
 * @param {Array<object>} attachments
 * @param {AttachmentLinks | null} links
 */
export function renderAttachments(container, attachments, links) {
  const list = document.createElement("ul");
  list.className = "msg__attachments";
  for (const attachment of attachments) {
    const entry = document.createElement("li");
    entry.className = "msg__attachment";
    entry.dataset.attachmentId = attachment.id;
    const image = RASTER.has(attachment.contentType);
    const link = document.createElement("a");
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    if (image) {
      const img = document.createElement("img");
      img.className = "msg__image";
      img.alt = attachment.name;
      if (attachment.width && attachment.height) {
        img.width = Math.min(attachment.width, 320);
        img.height = Math.round((img.width * attachment.height) / attachment.width);
      }
      link.append(img);
    } else {
      link.textContent = `${attachment.name} (${sizeLabel(attachment.size)})`;
      link.className = "msg__file";
    }
    entry.append(link);
    list.append(entry);
    if (links) {
      links
        .urlFor(attachment)
        .then((url) => {
          link.href = url;
          if (image) link.querySelector("img").src = url;
        })
        .catch(() => entry.classList.add("msg__attachment--unavailable"));
    }
  }
  container.append(list);
}
