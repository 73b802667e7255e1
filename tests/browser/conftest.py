"""Browser tests: pytest-playwright driving Debian's Chromium against real daphne servers.

Playwright never downloads a browser here: it launches the system's
Chromium (``/usr/bin/chromium``, from ``apt-get install chromium``; another
path with ``CHAT_TEST_CHROMIUM``).  A missing Chromium or pytest-playwright
skips these tests locally and fails them in CI, like the other services.

- ``chat_server`` -- a daphne server (embedded backend, real chat app, not
  conformance mode) with the demo data: workspace ``demo``, users
  demo/demo (admin) and guest/guest, agent ``echo``.
  ``chat_server_factory(**env)`` starts one with extra settings.
  :meth:`ChatServer.stop` / :meth:`ChatServer.start_again` restart it on
  the same port with the same database.
- ``open_user(name, ...)`` -- a logged-in page in its own browser context
  (:class:`tests.browser.support.ChatPage`).  Pages of a failing test are
  screenshotted into ``test-artifacts/browser/failures/``.

Screenshots of the main states go to ``test-artifacts/browser/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import _RUNNING, PYTHON, REPO_ROOT, ServerFactory, ServerProcess, require_service

try:
    import pytest_playwright  # noqa: F401  (its fixtures: browser, browser_type_launch_args...)

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

CHROMIUM = os.environ.get("CHAT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium with Playwright (tests/browser)")


# --- the browser --------------------------------------------------------------------------


def _chromium_available() -> tuple[bool, str]:
    if not HAVE_PLAYWRIGHT:
        return False, "pytest-playwright is not installed (pip install pytest-playwright)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return False, f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return True, ""


if HAVE_PLAYWRIGHT:

    @pytest.fixture(scope="session")
    def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
        """pytest-playwright's launch arguments (--headed, --slowmo...), pointed at the system Chromium."""
        require_service("chromium", *_chromium_available())
        return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}

    # pytest-playwright's own `playwright`, `browser_type` and `browser` live for the whole session.
    # The sync API keeps an asyncio loop marked as running in the main thread while it lives, and
    # every async test that pytest-asyncio runs after that fails ("Runner.run() cannot be called
    # from a running event loop") -- the integration tests run after these.  So here they live for
    # one module; pytest-playwright's other fixtures (`page`, `context`, `new_context`...) use them.

    @pytest.fixture(scope="module")
    def playwright() -> Iterator[Any]:
        require_service("chromium", *_chromium_available())
        from playwright.sync_api import sync_playwright

        manager = sync_playwright().start()
        yield manager
        manager.stop()

    @pytest.fixture(scope="module")
    def browser_type(playwright: Any) -> Any:
        return playwright.chromium

    @pytest.fixture(scope="module")
    def browser(browser_type: Any, browser_type_launch_args: dict[str, Any]) -> Iterator[Any]:
        browser = browser_type.launch(**browser_type_launch_args)
        yield browser
        browser.close()

else:

    @pytest.fixture(scope="module")
    def browser() -> None:
        require_service("chromium", *_chromium_available())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --- the server -----------------------------------------------------------------------------


class ChatServer:
    """A daphne server with the demo data, and what tests do to it from the outside."""

    def __init__(self, process: ServerProcess, factory: ServerFactory) -> None:
        self.process = process
        self.factory = factory
        self._api_tokens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.process.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def create_user(self, username: str, password: str, role: str = "member", workspace: str = "demo") -> None:
        self.manage("chat_token", username, "--workspace", workspace, "--role", role, "--create")
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            f"u = get_user_model().objects.get(username={username!r})\n"
            f"u.set_password({password!r}); u.save()\n"
        )

    def api_token(self, username: str) -> str:
        if username not in self._api_tokens:
            self._api_tokens[username] = self.manage("chat_token", username, "--name", "browser-tests").strip()
        return self._api_tokens[username]

    def rest(self, method: str, path: str, *, user: str, body: Any = None) -> tuple[int, Any]:
        """A REST call as ``user`` (with an API token); returns (status, JSON body)."""
        request = urllib.request.Request(
            f"{self.url}/api/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.api_token(user)}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def socket_token(self, user: str) -> str:
        status, body = self.rest("POST", "auth/socket-token", user=user)
        assert status == 201, (status, body)
        return body["token"]

    def seed_messages(self, session_id: str, count: int, user: str = "demo", workspace: str = "demo") -> None:
        """``count`` messages stored directly through the service (fast, no rate limits)."""
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            "from chat.models import ChatSession, Workspace\n"
            "from chat.services.messages import Sender, store_message\n"
            f"user = get_user_model().objects.get(username={user!r})\n"
            f"ws = Workspace.objects.get(slug={workspace!r})\n"
            f"session, _ = ChatSession.objects.get_or_create(workspace=ws, key={session_id!r}, "
            "defaults={'created_by': user, 'title': 'Long history'})\n"
            f"for i in range(1, {count} + 1):\n"
            "    store_message(session.pk, Sender.for_user(user), f'seed-{i}', f'History message {i}', 'text', {})\n"
        )

    # --- restarts: same port, same database ---

    def stop(self) -> None:
        self.process.stop()
        if self.process in _RUNNING:
            _RUNNING.remove(self.process)

    def start_again(self, timeout: float = 20.0) -> None:
        """A new server process on the same port, with the same environment (so the same database)."""
        old = self.process
        new = ServerProcess(old.command, old.env, old.port, old.log_path)
        self.factory.servers.append(new)
        deadline = time.monotonic() + timeout
        while True:
            try:
                new.start()
                break
            except RuntimeError:
                if "Address already in use" in new.log_text() and time.monotonic() < deadline:
                    time.sleep(0.3)
                    continue
                raise
        _RUNNING.append(new)
        self.process = new


@pytest.fixture
def chat_server_factory(server_factory: ServerFactory, embedded_backend: Any) -> Callable[..., ChatServer]:
    """``chat_server_factory(**env)`` -> a started :class:`ChatServer` with the demo data."""

    def start(**env: str) -> ChatServer:
        server = ChatServer(server_factory(embedded_backend, conformance=False, **env), server_factory)
        server.manage("setup_demo")
        return server

    return start


@pytest.fixture
def chat_server(chat_server_factory: Callable[..., ChatServer]) -> ChatServer:
    return chat_server_factory()


# --- pages ---------------------------------------------------------------------------------


@pytest.fixture
def open_user(browser: Any, chat_server: ChatServer, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``open_user("demo", password=None, server=None, **context_options)`` -> a logged-in ChatPage."""
    from tests.browser.support import ChatPage

    contexts: list[Any] = []
    pages: list[ChatPage] = []

    def open_page(
        username: str,
        password: str | None = None,
        *,
        server: ChatServer | None = None,
        chat_options: dict[str, Any] | None = None,
        **context_options: Any,
    ) -> ChatPage:
        context_options.setdefault("viewport", {"width": 1200, "height": 800})
        context = browser.new_context(**context_options)
        contexts.append(context)
        if chat_options:
            context.add_init_script(f"window.__chatOptions = {json.dumps(chat_options)};")
        page = ChatPage(context.new_page(), server or chat_server, username)
        pages.append(page)
        if password is not False:
            page.login(password or username)
        return page

    yield open_page
    report = getattr(request.node, "rep_call", None)
    script_errors = [f"{page.username}: {error}" for page in pages for error in page.errors]
    if report is not None and report.failed:
        failures = ARTIFACTS / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(pages):
            try:
                page.page.screenshot(path=str(failures / f"{request.node.name}-{index}-{page.username}.png"))
            except Exception:  # a closed page: nothing to show
                pass
    for context in contexts:
        context.close()
    if script_errors and report is not None and report.passed:
        pytest.fail("uncaught errors in the pages' scripts:\n" + "\n".join(script_errors), pytrace=False)


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """A bare browser context (no login), closed at teardown."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1200, "height": 800})
        context = browser.new_context(**options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
