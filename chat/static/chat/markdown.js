/**
 * Message text to DOM nodes, safely: a small markdown subset, never HTML.
 *
 * Every piece of a message ends up in a text node (`textContent`); the only
 * elements created are the fixed ones below, and the only attribute taken
 * from a message is a link's `href`, which must parse as an absolute
 * http(s) or mailto URL.  Nothing is ever assigned to `innerHTML`, so a
 * message such as `<img src=x onerror=alert(1)>` shows as exactly that text.
 *
 * The subset (both content types):
 *   ```fenced code blocks```      -> <pre><code>
 *   `inline code`                 -> <code>
 *   **bold**  __bold__            -> <strong>
 *   *italic*  _italic_            -> <em>
 *   [text](https://example.com)   -> <a>
 *   https://example.com           -> <a> (bare URLs are linked)
 *   blank line                    -> new paragraph; single newline -> <br>
 *
 * `markdown` content is stored by the server with `<` written as `&lt;`
 * (see security/content.py), so for it the basic character references
 * are decoded -- into text, which is safe.  `text` content is shown as is.
 */

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const MAX_INLINE_DEPTH = 4;
const ENTITY = /&(?:#(\d{1,7})|#x([0-9a-fA-F]{1,6})|(lt|gt|amp|quot|apos|nbsp));/g;
const NAMED = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'", nbsp: "\u00a0" };
// An inline token: code, a link, bold, italic, or a bare URL -- the earliest match wins.  Spans
// are bounded so that hostile input (thousands of unmatched markers) stays linear in practice.
const INLINE = new RegExp(
  [
    "(`{1,3})([^`]|[^`][\\s\\S]{0,500}?[^`])\\1(?!`)", // 1,2: `code`
    "\\[([^\\[\\]\\n]{1,500})\\]\\(([^()\\s]{1,2000})\\)", // 3,4: [text](url)
    "\\*\\*(?=\\S)([\\s\\S]{0,500}?\\S)\\*\\*", // 5: **bold**
    "__(?=\\S)([\\s\\S]{0,500}?\\S)__(?![A-Za-z0-9])", // 6: __bold__
    "\\*(?=[^\\s*])([^*]{0,500}?[^\\s*])\\*", // 7: *italic*
    "(?<![A-Za-z0-9])_(?=[^\\s_])([^_]{0,500}?[^\\s_])_(?![A-Za-z0-9])", // 8: _italic_
    "\\b((?:https?://|mailto:)[^\\s<>\"]{0,2000}[^\\s<>\".,;:!?)\\]}'])", // 9: bare URL
  ].join("|"),
);

/** Decode the basic character references (only for `markdown` content). */
export function decodeEntities(text) {
  return text.replace(ENTITY, (whole, dec, hex, name) => {
    if (name) return NAMED[name];
    const code = dec ? Number(dec) : parseInt(hex, 16);
    if (!Number.isFinite(code) || code <= 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return whole;
    return String.fromCodePoint(code);
  });
}

/** The URL if it is an absolute http(s) or mailto URL, else null. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function link(doc, href, label) {
  const a = doc.createElement("a");
  a.href = href;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  a.append(label);
  return a;
}

/** Inline formatting of one paragraph's text into `parent`. */
function renderInline(doc, parent, text, decode, depth = 0) {
  const plain = (value) => {
    const lines = (decode ? decodeEntities(value) : value).split("\n");
    lines.forEach((line, i) => {
      if (i > 0) parent.append(doc.createElement("br"));
      if (line) parent.append(doc.createTextNode(line));
    });
  };
  if (depth >= MAX_INLINE_DEPTH) {
    plain(text);
    return;
  }
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      plain(rest);
      break;
    }
    if (match.index > 0) plain(rest.slice(0, match.index));
    const [whole, , code, linkText, linkUrl, bold1, bold2, em1, em2, bare] = match;
    if (code !== undefined) {
      const el = doc.createElement("code");
      el.textContent = decode ? decodeEntities(code) : code;
      parent.append(el);
    } else if (linkText !== undefined) {
      const href = safeUrl(decode ? decodeEntities(linkUrl) : linkUrl);
      if (href) {
        const a = link(doc, href, "");
        renderInline(doc, a, linkText, decode, depth + 1);
        parent.append(a);
      } else {
        plain(whole);
      }
    } else if (bold1 !== undefined || bold2 !== undefined) {
      const el = doc.createElement("strong");
      renderInline(doc, el, bold1 ?? bold2, decode, depth + 1);
      parent.append(el);
    } else if (em1 !== undefined || em2 !== undefined) {
      const el = doc.createElement("em");
      renderInline(doc, el, em1 ?? em2, decode, depth + 1);
      parent.append(el);
    } else if (bare !== undefined) {
      const target = decode ? decodeEntities(bare) : bare;
      const href = safeUrl(target);
      parent.append(href ? link(doc, href, target) : doc.createTextNode(target));
    }
    rest = rest.slice(match.index + whole.length);
  }
}

/**
 * Render `content` into a DocumentFragment.
 * @param {string} content
 * @param {"text"|"markdown"} [contentType]
 * @param {Document} [doc]
 */
export function renderMessage(content, contentType = "text", doc = globalThis.document) {
  const fragment = doc.createDocumentFragment();
  const decode = contentType === "markdown";
  const text = String(content ?? "").replace(/\r\n?/g, "\n");
  // Fenced code blocks first: their content is never formatted.
  const parts = text.split(/^```[^\n`]*\n([\s\S]*?)(?:\n```[ \t]*$|(?![\s\S])\n?)/m);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const pre = doc.createElement("pre");
      const code = doc.createElement("code");
      code.textContent = decode ? decodeEntities(part) : part;
      pre.append(code);
      fragment.append(pre);
      return;
    }
    for (const paragraph of part.split(/\n{2,}/)) {
      const trimmed = paragraph.replace(/^\n+|\n+$/g, "");
      if (!trimmed) continue;
      const p = doc.createElement("p");
      renderInline(doc, p, trimmed, decode);
      fragment.append(p);
    }
  });
  return fragment;
}

/** The plain text a screen reader announcement should read for a message. */
export function plainText(content, contentType = "text") {
  const text = String(content ?? "");
  return contentType === "markdown" ? decodeEntities(text) : text;
}
