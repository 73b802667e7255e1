"""nginx in front of several workers, configured from the shipped site (``deploy/nginx/chat.conf``).

Part of the benchmark (``bench/run.py``).  The site file is used as it
ships: only its ``upstream`` servers (the workers' ports) and its ``listen``
line (a free port on 127.0.0.1) are replaced, and it is included in a
minimal ``nginx.conf`` that keeps every file in a work directory.  One
nginx worker process, as a small host would run it; its CPU is measured
with the server's (``procstat.tree_cpu``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "chat.conf"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


class Nginx:
    def __init__(self, workdir: Path, port: int, upstream_ports: list[int]) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is needed for the multi-worker layouts (Debian: apt-get install nginx-light)")
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        site = SITE.read_text()
        servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstream_ports)
        site, count = re.subn(
            r"(upstream chat_workers \{\n)(?:    server [^\n]+\n)+", lambda m: m.group(1) + servers, site
        )
        if count != 1 or "listen 80;" not in site:
            raise RuntimeError(f"{SITE} no longer has the upstream block or the listen line the bench replaces")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        for name in ("logs", "tmp"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
        (workdir / "site.conf").write_text(site)
        # worker_connections: each client holds one connection in and one to a worker.
        (workdir / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
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

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, preexec_fn=None) -> Nginx:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not start:\n{(self.workdir / 'logs' / 'error.log').read_text()[-2000:]}")

    def error_lines(self) -> list[str]:
        path = self.workdir / "logs" / "error.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
