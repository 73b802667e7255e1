"""A real nginx on loopback in front of several workers, configured from ``deploy/nginx/chat.conf``."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import REPO_ROOT, free_port, require_service

DEPLOYED_SITE = REPO_ROOT / "deploy" / "nginx" / "chat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    def __init__(self, workdir: Path, upstream_ports: list[int]) -> None:
        require_service("nginx", Path(NGINX).exists(), "install Debian's nginx-light")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = DEPLOYED_SITE.read_text()
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstream_ports)
        site = re.sub(r"(upstream chat_workers \{\n)(?:    server [^\n]+\n)+", lambda m: m.group(1) + servers, site)
        site = site.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        for name in ("logs", "tmp"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        (workdir / "site.conf").write_text(site)
        (workdir / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/logs/access.log;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    include {workdir}/site.conf;
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Nginx":
        self.process = subprocess.Popen(
            [NGINX, "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not start:\n{(self.workdir / 'logs' / 'error.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
