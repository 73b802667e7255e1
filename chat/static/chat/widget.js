/*
 * Chat widget loader, for other sites.  Served at /widget.js; see docs/widget.md.
 *
 *   <script src="https://chat.example.com/widget.js" async
 *           data-workspace="demo" data-session="support-42"
 *           data-token="sock_..." data-token-callback="getChatToken"></script>
 *
 * It puts the chat in an iframe from the chat server (/embed/), either
 * behind a launcher button (default) or inline (data-mode="inline").  The
 * iframe asks this page for a one-time socket token for each connection
 * (postMessage); the first comes from data-token, later ones (reconnects)
 * from the global function named by data-token-callback, which returns a
 * token or a promise of one.  Tokens are only ever posted to the chat
 * server's origin.
 *
 * A classic script on purpose (no module, no build): it runs on pages we do
 * not control, and touches nothing there but its own elements.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) return;
  var data = script.dataset;
  var server = (data.server || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var serverOrigin = new URL(server, location.href).origin;
  var title = data.title || "Chat";
  var mode = data.mode === "inline" ? "inline" : "launcher";

  function fail(message) {
    if (window.console) console.error("[chat widget] " + message);
  }

  if (!data.workspace) {
    fail("data-workspace is required.");
    return;
  }

  /** Without data-session, each visitor keeps one conversation per workspace (localStorage). */
  function visitorSession() {
    var key = "chat-widget:" + serverOrigin + ":" + data.workspace;
    var id = null;
    try {
      id = localStorage.getItem(key);
    } catch (e) {}
    if (!id || !/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
      var bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      id = "visitor-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try {
        localStorage.setItem(key, id);
      } catch (e) {}
    }
    return id;
  }

  var query = new URLSearchParams({ workspace: data.workspace, session: data.session || visitorSession(), title: title });
  if (data.agent) query.set("agent", data.agent);
  if (data.theme) query.set("theme", data.theme);

  var iframe = document.createElement("iframe");
  iframe.src = server + "/embed/?" + query.toString();
  iframe.title = title;
  // The Copy button of code blocks writes to the clipboard from inside the frame.
  iframe.allow = "clipboard-write";
  Object.assign(iframe.style, { border: "0", width: "100%", height: "100%", display: "block", colorScheme: "normal" });

  // --- tokens ---------------------------------------------------------------------------------

  var firstToken = data.token || null;

  function getToken() {
    if (firstToken) {
      var token = firstToken;
      firstToken = null;
      return Promise.resolve(token);
    }
    var callback = data.tokenCallback ? window[data.tokenCallback] : null;
    if (typeof callback !== "function") {
      return Promise.reject(new Error("No token left: give data-token-callback so the widget can reconnect."));
    }
    return Promise.resolve().then(function () {
      return callback({ workspace: data.workspace, session: query.get("session") });
    });
  }

  function tell(message) {
    message.source = "chat-widget-host";
    if (iframe.contentWindow) iframe.contentWindow.postMessage(message, serverOrigin);
  }

  // --- the launcher -----------------------------------------------------------------------------

  var isOpen = mode === "inline";
  var launcher = null;
  var badge = null;
  var panel = null;
  var unread = 0;

  function renderLauncher() {
    if (!launcher) return;
    launcher.setAttribute("aria-expanded", String(isOpen));
    var label = isOpen ? "Close chat" : "Open chat";
    if (unread && !isOpen) label += " (" + unread + " new)";
    launcher.setAttribute("aria-label", label);
    launcher.textContent = isOpen ? "\u2715" : "\uD83D\uDCAC";
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.style.display = unread && !isOpen ? "block" : "none";
    launcher.append(badge);
    panel.style.display = isOpen ? "block" : "none";
  }

  function setOpen(open, focus) {
    if (mode !== "launcher") return;
    isOpen = open;
    if (open) unread = 0;
    renderLauncher();
    tell({ type: "visibility", open: open });
    if (open && focus !== false) {
      iframe.focus();
      tell({ type: "focus" });
    } else if (!open && focus !== false) {
      launcher.focus();
    }
  }

  function mountLauncher() {
    var host = document.createElement("div");
    host.setAttribute("data-chat-widget", "");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var narrow = window.matchMedia("(max-width: 480px)");

    panel = document.createElement("div");
    panel.id = "chat-widget-panel";
    panel.setAttribute("role", "region");
    panel.setAttribute("aria-label", title);
    Object.assign(panel.style, {
      position: "fixed", zIndex: "2147483000", background: "#fff", overflow: "hidden",
      boxShadow: "0 12px 40px rgba(15, 23, 42, 0.28)", display: "none",
    });
    function place() {
      if (narrow.matches) {
        Object.assign(panel.style, { top: "0", left: "0", right: "0", bottom: "84px", width: "auto", height: "auto", borderRadius: "0 0 16px 16px" });
      } else {
        Object.assign(panel.style, {
          top: "auto", left: "auto", right: "20px", bottom: "92px",
          width: "min(400px, calc(100vw - 40px))", height: "min(640px, calc(100vh - 120px))", borderRadius: "16px",
        });
      }
    }
    place();
    if (narrow.addEventListener) narrow.addEventListener("change", place);
    panel.append(iframe);

    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.setAttribute("aria-controls", panel.id);
    Object.assign(launcher.style, {
      position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483001", width: "60px", height: "60px",
      borderRadius: "50%", border: "0", background: "#1d4ed8", color: "#fff", fontSize: "26px", lineHeight: "60px",
      cursor: "pointer", boxShadow: "0 6px 20px rgba(15, 23, 42, 0.3)", padding: "0",
    });
    launcher.addEventListener("focus", function () { launcher.style.outline = "3px solid #f59e0b"; launcher.style.outlineOffset = "3px"; });
    launcher.addEventListener("blur", function () { launcher.style.outline = "none"; });
    launcher.addEventListener("click", function () { setOpen(!isOpen); });

    badge = document.createElement("span");
    badge.setAttribute("aria-hidden", "true");
    Object.assign(badge.style, {
      position: "absolute", top: "-4px", right: "-4px", minWidth: "22px", height: "22px", padding: "0 6px",
      borderRadius: "11px", background: "#b91c1c", color: "#fff", font: "700 12px/22px system-ui, sans-serif",
      boxSizing: "border-box", display: "none",
    });

    root.append(panel, launcher);
    document.body.append(host);
    renderLauncher();
    if (data.open === "true") setOpen(true, false);
  }

  function mountInline() {
    var target = data.target ? document.querySelector(data.target) : null;
    var box = document.createElement("div");
    box.setAttribute("data-chat-widget", "");
    Object.assign(box.style, {
      height: data.height || "560px", width: "100%", borderRadius: "12px", overflow: "hidden",
      border: "1px solid #cbd5e1", boxSizing: "border-box",
    });
    box.append(iframe);
    if (target) target.append(box);
    else script.after(box);
  }

  // --- messages from the iframe -------------------------------------------------------------------

  window.addEventListener("message", function (event) {
    if (event.source !== iframe.contentWindow || event.origin !== serverOrigin) return;
    var message = event.data;
    if (!message || message.source !== "chat-widget") return;
    if (message.type === "token-request") {
      getToken().then(
        function (token) { tell({ type: "token", requestId: message.requestId, token: String(token || "") }); },
        function (error) { tell({ type: "token", requestId: message.requestId, error: String((error && error.message) || error) }); }
      );
    } else if (message.type === "ready") {
      tell({ type: "visibility", open: isOpen });
    } else if (message.type === "unread") {
      unread = isOpen ? 0 : Math.max(0, Number(message.count) || 0);
      renderLauncher();
    } else if (message.type === "escape" && mode === "launcher" && isOpen) {
      setOpen(false);
    }
  });

  function start() {
    if (mode === "inline") mountInline();
    else mountLauncher();
  }

  var api = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!isOpen); },
    iframe: iframe,
  };
  script.chatWidget = api;
  window.ChatWidget = api;

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
