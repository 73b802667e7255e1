"""The wheel's build: setuptools as ``pyproject.toml`` declares it, plus the official Socket.IO client.

The chat page and the widget load ``/static/vendor/socket.io.min.js``
(``chat/web.py``).  A checkout serves it straight from ``node_modules``
(``npm ci``); a wheel carries a copy in ``chat/vendor/socket.io-client/``,
taken here from that same ``node_modules`` -- so the wheel is built after
``npm ci --omit=dev``, as ``docs/deployment.md`` ("Install") and
``deploy/Dockerfile`` do.  Everything else is in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CLIENT = Path(__file__).resolve().parent / "node_modules" / "socket.io-client"
#: What the web front serves (chat/web.py SOCKETIO_FILES), its version (package.json) and its licence.
CLIENT_FILES = ("package.json", "LICENSE", "dist/socket.io.min.js", "dist/socket.io.min.js.map")


class BuildPyWithClient(build_py):
    """``build_py``, then the client's files into the build's ``chat/vendor/socket.io-client/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install runs from the checkout, which has node_modules
            return
        missing = [name for name in CLIENT_FILES if not (CLIENT / name).is_file()]
        if missing:
            raise SystemExit(
                f"node_modules/socket.io-client lacks {', '.join(missing)}: "
                "run `npm ci --omit=dev` before building the wheel (docs/deployment.md, Install)."
            )
        target = Path(self.build_lib) / "chat" / "vendor" / "socket.io-client"
        for name in CLIENT_FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CLIENT / name, target / name)


setup(cmdclass={"build_py": BuildPyWithClient})
