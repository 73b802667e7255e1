/**
 * A message's body in the DOM: text as text, markdown as the server's HTML.
 *
 * Text is text (docs/protocol.md, "Message content"):
 *   - `contentType: "text"` -- `content` goes into a text node, as typed
 *     (line breaks kept by CSS).  `<img src=x onerror=…>` shows as exactly
 *     those characters.  Nothing is linked or formatted here.
 *   - `contentType: "markdown"` -- the server's `html` (rendered once by its
 *     one renderer, security/render.py, through an allow-list) is shown.  It
 *     is parsed in an inert <template> (nothing in it loads or runs while
 *     parsed) and its nodes are adopted; the page's Content-Security-Policy
 *     (`script-src 'self'`) stands behind that.  Each code block gets a Copy
 *     button that copies the block's exact text.
 *   - A reply still streaming (its chunks, no `html` yet), or markdown whose
 *     `html` is missing: shown as text, which is never unsafe; the stored
 *     reply's `html` replaces it when `chat:message-received` brings it.
 *
 * No markup is ever rendered here: this file never turns characters into
 * elements, it only shows text or adopts the server's HTML.
 */

const COPIED_MS = 1_500;

/** Whether `item` is shown from the server's HTML. */
export function showsHtml(item) {
  return item.contentType === "markdown" && typeof item.html === "string" && item.state !== "streaming";
}

function codeBlock(doc, pre) {
  const wrapper = doc.createElement("div");
  wrapper.className = "code-block";
  const language = pre.querySelector("code")?.className.match(/^language-(\S+)$/)?.[1];
  const bar = doc.createElement("div");
  bar.className = "code-block__bar";
  const label = doc.createElement("span");
  label.className = "code-block__language";
  label.textContent = language ?? "code";
  const button = doc.createElement("button");
  button.type = "button";
  button.className = "code-block__copy";
  button.dataset.action = "copy-code";
  button.textContent = "Copy";
  button.setAttribute("aria-label", language ? `Copy ${language} code` : "Copy code");
  bar.append(label, button);
  pre.replaceWith(wrapper);
  wrapper.append(bar, pre);
  pre.tabIndex = 0; // long lines scroll sideways: keyboard users can scroll too
}

/**
 * Fill `body` with the message.
 * @param {HTMLElement} body
 * @param {{content: string, contentType: string, html?: string|null, state?: string}} item
 */
export function renderBody(body, item) {
  const doc = body.ownerDocument;
  if (showsHtml(item)) {
    body.className = "msg__body msg__body--html";
    const template = doc.createElement("template");
    template.innerHTML = item.html;
    const fragment = doc.importNode(template.content, true);
    for (const pre of fragment.querySelectorAll("pre")) codeBlock(doc, pre);
    body.replaceChildren(fragment);
    return;
  }
  body.className = "msg__body msg__body--text";
  body.replaceChildren(doc.createTextNode(String(item.content ?? "")));
}

/** Copy the code of the block around `button` (a Copy button of renderBody), exactly as shown. */
export async function copyCode(button) {
  const code = button.closest(".code-block")?.querySelector("pre");
  if (!code) return false;
  const text = code.textContent;
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    copied = copyWithSelection(button.ownerDocument, text);
  }
  button.textContent = copied ? "Copied" : "Copy failed";
  clearTimeout(button._reset);
  button._reset = setTimeout(() => {
    button.textContent = "Copy";
  }, COPIED_MS);
  return copied;
}

function copyWithSelection(doc, text) {
  // Where the Clipboard API is refused (an iframe without clipboard-write, an old browser).
  const area = doc.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  doc.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = doc.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** What a screen reader announcement reads for a message: the text a reader sees. */
export function plainText(message, doc = globalThis.document) {
  if (message.contentType === "markdown" && typeof message.html === "string") {
    const template = doc.createElement("template");
    template.innerHTML = message.html;
    return template.content.textContent.replace(/\s+/g, " ").trim();
  }
  return String(message.content ?? "");
}
