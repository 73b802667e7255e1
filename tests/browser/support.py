"""What the browser tests do on a page, in the words of the UI (a small page object), and the checks they share."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.browser.conftest import ARTIFACTS, AXE_SCRIPT

DEFAULT_TIMEOUT_MS = 30_000

#: Every message on screen, as the DOM shows it.
MESSAGES_JS = """() => [...document.querySelectorAll('[data-message-list] > li')].map(li => ({
  id: li.dataset.id,
  seq: li.dataset.seq ? Number(li.dataset.seq) : null,
  state: li.dataset.state,
  sender: li.dataset.senderType,
  author: li.querySelector('.msg__author')?.textContent ?? '',
  text: li.querySelector('.msg__body')?.innerText ?? '',
}))"""

#: Records every state and text a message element goes through (for "pending, then sent", streaming).
RECORDER_JS = """() => {
  if (window.__recorder) return;
  const seen = window.__recorder = [];
  const typing = document.querySelector('[data-typing-text]');
  const snap = () => {
    for (const li of document.querySelectorAll('[data-message-list] > li')) {
      const entry = { id: li.dataset.id, state: li.dataset.state, sender: li.dataset.senderType,
                      text: li.querySelector('.msg__body')?.textContent ?? '', typing: typing?.textContent ?? '',
                      t: performance.now() };
      const last = seen.findLast(e => e.id === entry.id);
      if (!last || last.state !== entry.state || last.text !== entry.text || last.typing !== entry.typing) seen.push(entry);
    }
  };
  new MutationObserver(snap).observe(document.querySelector('[data-chat-panel]'),
    { subtree: true, childList: true, characterData: true, attributes: true });
  snap();
}"""


def shot(page: Any, name: str) -> str:
    """Save a screenshot of a main state as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return str(path)


class ChatPage:
    def __init__(self, page: Any, server: Any, username: str) -> None:
        self.page = page
        self.server = server
        self.username = username
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.accept_dialogs = False

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        if self.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    # --- navigation ---

    def login(self, password: str) -> None:
        self.page.goto(f"{self.server.url}/login/")
        self.page.fill("#id_username", self.username)
        self.page.fill("#id_password", password)
        self.page.click("form.login__card button[type=submit]")
        self.page.wait_for_url(f"{self.server.url}/")
        self.wait_connected()

    def wait_connected(self) -> None:
        self.page.wait_for_function("() => window.chatApp?.connection?.connected === true")

    def open_session(self, session_id: str, workspace: str = "demo") -> None:
        self.page.goto(f"{self.server.url}/?workspace={workspace}&session={session_id}")
        self.wait_joined()

    def wait_joined(self) -> None:
        self.page.wait_for_function(
            "() => { const r = window.chatApp?.room; return r && r.status === 'joined' && r.initialLoaded; }"
        )

    def start_conversation(self, agent: str | None = "echo") -> str:
        """Start a new conversation from the sidebar; returns its session id."""
        self.page.select_option("[data-new-chat-agent]", agent or "")
        self.page.click("[data-new-chat] button[type=submit]")
        self.wait_joined()
        return self.session_id

    @property
    def session_id(self) -> str:
        return self.page.evaluate("() => window.chatApp.room.sessionId")

    # --- chatting ---

    def send(self, text: str) -> None:
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")

    def messages(self) -> list[dict[str, Any]]:
        return self.page.evaluate(MESSAGES_JS)

    def message(self, text: str) -> Any:
        """The locator of the message whose body is exactly ``text``."""
        return self.page.locator("[data-message-list] > li").filter(
            has=self.page.locator(".msg__body", has_text=re.compile(rf"^{re.escape(text)}$"))
        )

    def wait_message(self, text: str, state: str | None = None, timeout: float = DEFAULT_TIMEOUT_MS) -> dict[str, Any]:
        """Wait until a message with body ``text`` is shown (in ``state``, if given); returns it."""
        self.page.wait_for_function(
            """([text, state]) => [...document.querySelectorAll('[data-message-list] > li')].some(li =>
                 (li.querySelector('.msg__body')?.innerText ?? '') === text && (!state || li.dataset.state === state))""",
            arg=[text, state],
            timeout=timeout,
        )
        return next(m for m in self.messages() if m["text"] == text and (state is None or m["state"] == state))

    def record(self) -> None:
        self.page.evaluate(RECORDER_JS)

    def recorded(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.__recorder ?? []")

    def typing_text(self) -> str:
        return self.page.inner_text("[data-typing-text]")

    def presence(self) -> dict[str, str]:
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('[data-presence-list] > li')]"
            ".map(li => [li.dataset.user, li.dataset.status]))"
        )

    def announcements(self) -> str:
        return self.page.evaluate("() => document.querySelector('[data-announcer]').textContent")

    def banner_state(self) -> str:
        return self.page.get_attribute("[data-connection-banner]", "data-state") or ""


def check_accessibility(target: Any, name: str) -> list[dict[str, Any]]:
    """Run axe-core (from node_modules) in a page or frame; save its report; return serious/critical violations.

    axe is evaluated through the DevTools protocol, which the pages' Content-Security-Policy
    does not apply to, so the pages are checked exactly as served.
    """
    if not target.evaluate("() => typeof window.axe === 'object'"):
        target.evaluate(AXE_SCRIPT.read_text() + "\n;undefined")
    results = target.evaluate(
        """async () => await axe.run(document, {
             runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
             resultTypes: ['violations'],
           })"""
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    violations = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [{"target": n["target"], "summary": n.get("failureSummary", "")} for n in v["nodes"]],
        }
        for v in results["violations"]
    ]
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=2))
    return [v for v in violations if v["impact"] in ("serious", "critical")]
