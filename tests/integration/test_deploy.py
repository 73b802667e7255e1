"""The files in ``deploy/``: what can be checked without Docker or a systemd host.

- ``docker-compose.yml`` and ``prometheus.yml`` parse, and name the same app
  services as ``nginx/chat.compose.conf``;
- every variable they set is one the server reads and the documentation lists;
- ``nginx/chat.compose.conf`` is ``nginx/chat.conf`` but for its upstream
  servers, and ``nginx -t`` accepts both (compose host names mapped to
  127.0.0.1);
- ``systemd-analyze verify`` accepts the units (when it is installed);
- the systemd unit and the image run uvicorn with the flags the tests run it
  with (``tests/conftest.py``: ``UVICORN_OPTIONS``);
- the image installs, migrates and serves with the commands
  ``docs/deployment.md`` gives (its *Install* block, line for line; the
  production command), and so do the systemd units
  (``tests/integration/test_packaging.py`` runs those commands).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, UVICORN_OPTIONS
from tests.integration import deployment_docs as documented
from tests.integration.nginx import NGINX, Nginx

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SYSTEMD = DEPLOY / "systemd"
UPSTREAM_SERVER = re.compile(r"^    server ([^;\s]+);$", re.MULTILINE)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def app_services() -> list[str]:
    services = compose()["services"]
    return sorted(name for name, service in services.items() if _is_app(service))


def _is_app(service: dict) -> bool:
    return service.get("image") == "chatserver:latest" and "command" not in service


def test_compose_services_and_images():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "nginx", "prometheus"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    apps = app_services()
    assert len(apps) >= 2, "several worker processes behind nginx"
    for name in apps:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "ports" not in services[name], "workers are reached through nginx only"
    assert services["migrate"]["command"] == documented.migrate_command()
    assert "./nginx/chat.compose.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]


def test_nginx_prometheus_and_allowed_hosts_name_every_app_service():
    apps = app_services()
    expected = [f"{name}:8000" for name in apps]
    upstreams = UPSTREAM_SERVER.findall((DEPLOY / "nginx" / "chat.compose.conf").read_text())
    assert sorted(upstreams) == expected
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    chat_job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "chat")
    assert sorted(t for group in chat_job["static_configs"] for t in group["targets"]) == expected
    # Prometheus sends Host: appN:8000 and the health check Host: localhost; Django checks both.
    hosts = compose()["services"][apps[0]]["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert set(apps) | {"localhost"} <= set(hosts)


def test_every_variable_set_in_deploy_is_read_and_documented():
    env_file = (SYSTEMD / "chat.env.example").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", env_file, re.MULTILINE))
    names |= set(compose()["x-app-environment"])
    sources = "".join(
        (REPO_ROOT / path).read_text() for path in ("chatsite/config.py", "monitoring/conf.py", "chatsite/settings.py")
    )
    docs = (REPO_ROOT / "README.md").read_text() + (REPO_ROOT / "docs" / "monitoring.md").read_text()
    for name in sorted(names):
        assert f'"{name}"' in sources, f"{name} is set in deploy/ but the server does not read it"
        assert f"`{name}`" in docs, f"{name} is set in deploy/ but README.md / docs/monitoring.md do not list it"


def test_compose_nginx_conf_is_chat_conf_but_for_its_upstreams():
    def body(path: Path) -> str:
        lines = path.read_text().splitlines()
        while lines and lines[0].startswith("#") and "compose" in path.name:
            lines.pop(0)  # the compose file's own header, up to chat.conf's
            if lines and lines[0] == "#":
                lines.pop(0)
                break
        return UPSTREAM_SERVER.sub("    server UPSTREAM;", "\n".join(lines))

    assert body(DEPLOY / "nginx" / "chat.compose.conf") == body(DEPLOY / "nginx" / "chat.conf")


@pytest.mark.parametrize("site", ["chat.conf", "chat.compose.conf"])
def test_nginx_accepts_the_site(tmp_path, site):
    proxy = Nginx(tmp_path, [8001])  # writes nginx.conf including site.conf
    text = (DEPLOY / "nginx" / site).read_text()
    # A stub hosts mapping: nginx resolves upstream names when it loads the file.
    text = re.sub(r"server app\d+:", "server 127.0.0.1:", text).replace("listen 80;", f"listen 127.0.0.1:{proxy.port};")
    (tmp_path / "site.conf").write_text(text)
    done = subprocess.run(
        [NGINX, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in ("chat@.service", "chat-migrate.service", "chat.target"):
        text = (SYSTEMD / unit).read_text()
        # Point the paths of a /srv/chat installation at this checkout, so the
        # executables and directories exist.
        text = text.replace("/etc/chat/chat.env", str(SYSTEMD / "chat.env.example"))
        (tmp_path / unit).write_text(text.replace("/srv/chat", str(REPO_ROOT)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", "chat@8001.service", "chat-migrate.service", "chat.target"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def _pairs(command: list[str]) -> dict[str, str]:
    return {flag: value for flag, value in zip(command, command[1:]) if flag.startswith("--")}


@pytest.mark.parametrize("where", ["systemd", "docker"])
def test_production_runs_uvicorn_with_the_flags_the_tests_use(where):
    command = documented.unit_exec_start("chat@.service") if where == "systemd" else documented.dockerfile_cmd()
    assert command[0].endswith("uvicorn") and command[1] == "chatsite.asgi:application"
    tested = _pairs(UVICORN_OPTIONS)
    tested.pop("--timeout-graceful-shutdown")  # shorter in tests, so they stop quickly
    deployed = _pairs(command)
    assert {flag: deployed.get(flag) for flag in tested} == tested


# --- the documented commands are the ones deploy/ runs -------------------------------------------


def test_the_image_installs_with_the_documented_commands():
    """deploy/Dockerfile's RUN steps are docs/deployment.md's *Install* block, but for the image's user."""
    runs = [run for run in documented.dockerfile_runs() if not run.startswith("groupadd ")]
    assert runs == documented.install_commands()


def test_systemd_and_compose_migrate_with_the_documented_command():
    migrate = documented.migrate_command()
    unit = documented.unit_exec_start("chat-migrate.service")
    assert unit[0] == documented.SYSTEMD_VENV_BIN + migrate[0] and unit[1:] == migrate[1:]
    assert documented.compose()["services"]["migrate"]["command"] == migrate


def _without_address(command: list[str]) -> list[str]:
    """The command less ``--host``/``--port`` and their values (each deployment has its own)."""
    kept, skip = [], False
    for arg in command:
        if skip:
            skip = False
        elif arg in ("--host", "--port"):
            skip = True
        else:
            kept.append(arg)
    return kept


def test_systemd_and_the_image_run_the_documented_production_command():
    production = _without_address(documented.production_command())
    unit = _without_address(documented.unit_exec_start("chat@.service"))
    assert unit == [documented.SYSTEMD_VENV_BIN + production[0], *production[1:]]
    # The image adds only what its network needs: forwarded headers, from the proxies FORWARDED_ALLOW_IPS names.
    image = _without_address(documented.dockerfile_cmd())
    assert image == [*production, "--proxy-headers"]


def test_the_docker_image_trusts_any_x_forwarded_for():
    """Issue #17: the image ran with ``--forwarded-allow-ips *``; now only the proxy the deployment names."""
    dockerfile = documented.DOCKERFILE.read_text()
    assert "--forwarded-allow-ips" not in " ".join(documented.dockerfile_cmd())
    assert re.search(r"^ENV FORWARDED_ALLOW_IPS=127\.0\.0\.1$", dockerfile, re.MULTILINE), "loopback only by default"
    config = compose()
    (trusted,) = {config["services"][app]["environment"]["FORWARDED_ALLOW_IPS"] for app in app_services()}
    assert "*" not in trusted
    nginx = config["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == nginx, "the apps trust nginx's forwarded headers, and only nginx's"
    (subnet,) = (entry["subnet"] for entry in config["networks"]["default"]["ipam"]["config"])
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(subnet)
