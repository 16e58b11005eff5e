"""The production deployment files (deploy/Dockerfile, deploy/compose/, deploy/k8s/) say what a
deploying team relies on: a pinned, hash-checked, non-root image; a compose stack whose Kafka
really replicates, whose services wait for each other and recover, whose secrets stay out of
git; Kubernetes manifests whose selectors, ports and probes line up. No Docker engine or
cluster runs here, so the files are checked as data, plus with the real promtool and amtool
(and kustomize through kubectl when it is installed)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import ioc
from ioc.api.gateway import SCHEMAS_DIR
from ioc.broker import faust_settings
from ioc.config import DEFAULT_ALERT_RULES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_DIR = DEPLOY / "compose"
K8S_DIR = DEPLOY / "k8s"
RUNTIME_REQS = ROOT / "requirements/runtime.txt"
LOCK = ROOT / "requirements/lock.txt"
DEFAULTS = Settings()

# Names compose.yaml reads for itself (service count, image tag); no ioc process reads them.
COMPOSE_ONLY = {"IOC_WORKERS", "IOC_IMAGE"}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY")
# Alertmanager fields that would hold a secret inline; each has a *_file twin.
AM_SECRET_KEYS = {
    "smtp_auth_password",
    "smtp_auth_secret",
    "auth_password",
    "auth_secret",
    "password",
    "credentials",
    "bearer_token",
    "api_key",
    "api_secret",
    "service_key",
    "routing_key",
    "bot_token",
    "token",
}


# --- helpers ----------------------------------------------------------------------------------


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$\$")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        if op in (":-", "-"):
            return arg
        raise AssertionError(f"compose would refuse to start: ${{{name}}} is unset ({arg})")

    return _VAR.sub(one, value)


def _walk_interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk_interpolate(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _walk_interpolate(v, env) for k, v in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@cache
def env_example() -> dict[str, str]:
    return read_env_file(COMPOSE_DIR / ".env.example")


@cache
def compose_raw_text() -> str:
    return (COMPOSE_DIR / "compose.yaml").read_text()


@cache
def compose() -> dict[str, Any]:
    """compose.yaml as `docker compose config` would see it with .env = .env.example."""
    raw = yaml.safe_load(compose_raw_text())
    doc: dict[str, Any] = _walk_interpolate(raw, env_example())
    return doc


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def ioc_services() -> dict[str, dict[str, Any]]:
    """The services running the IOC image (the ones compose builds)."""
    return {name: s for name, s in services().items() if "build" in s}


def is_one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def command(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def kafka_services() -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in services().items() if str(s.get("image", "")).startswith("apache/kafka")
    }


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """What the container's environment holds: env_file first, `environment` over it."""
    env: dict[str, str] = {}
    files = service.get("env_file", [])
    for name in [files] if isinstance(files, str) else files:
        assert name == ".env", f"env_file {name!r}: the stack's one secret file is .env"
        env.update(env_example())
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of `environment`"
    env.update({k: str(v) for k, v in environment.items()})
    return env


def volume_sources(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        out.append((source, target))
    return out


@cache
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def k8s(kind: str) -> list[dict[str, Any]]:
    return [d for f, d in k8s_documents() if d.get("kind") == kind and f != "secret.example.yaml"]


def k8s_one(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in k8s(kind) if d["metadata"]["name"] == name]
    return doc


def configmap_data() -> dict[str, str]:
    data: dict[str, str] = k8s_one("ConfigMap", "ioc-config")["data"]
    return data


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for doc in k8s(kind):
            yield f"{kind}/{doc['metadata']['name']}", doc["spec"]["template"]


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return out


def docker_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instr in dockerfile_instructions():
        if instr[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instr)
    return stages


def docker_global_args() -> dict[str, str]:
    args = {}
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
    return args


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def runtime_stage() -> list[tuple[str, str]]:
    return docker_stages()[-1]


def image_uid() -> int:
    [user] = [rest for word, rest in runtime_stage() if word == "USER"]
    return int(user.split(":")[0])


def pins(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Package → (version, hashes) of a `uv pip compile --generate-hashes` file."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", line)
        if m:
            name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            out[name] = (m.group(2), frozenset(re.findall(r"--hash=(sha256:[0-9a-f]+)", line)))
    return out


def read_by_the_stack(name: str) -> bool:
    """Whether a variable is read by the package's settings, the committed rule files or the
    Grafana login command (the readers of IOC_* variables)."""
    sources = [ROOT / "ioc/config.py", ROOT / "ioc/cli_grafana.py"]
    sources += sorted((ROOT / "deploy/alert-rules").glob("*.yaml"))
    return any(re.search(rf"\b{name}\b", p.read_text()) for p in sources)


def _tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        pytest.fail(f"{name} is missing: run `make alertmanager` (Debian's Prometheus tools)")
    return tool


# --- the image --------------------------------------------------------------------------------


def test_the_image_is_built_in_two_stages_from_one_pinned_python() -> None:
    stages = docker_stages()
    assert len(stages) >= 2
    froms = [stage[0][1] for stage in stages]
    assert re.search(r"\bAS builder$", froms[0], re.IGNORECASE), froms[0]
    args = docker_global_args()
    bases = {interpolate(f.split()[0], args) for f in froms}
    # One base for both stages: the venv built in the first runs in the last.
    assert len(bases) == 1, bases
    [base] = bases
    image, _, tag = base.partition(":")
    assert image == "python" and re.match(r"3\.\d+(\.\d+)?-slim", tag), base
    # The image's Python is the one the lock files were resolved for.
    python = re.match(r"3\.\d+", tag)
    assert python and f"--python-version {python.group(0)}" in RUNTIME_REQS.read_text()
    copied = " ".join(rest for word, rest in stages[-1] if word == "COPY")
    assert "--from=builder /opt/venv" in copied


def test_the_image_runs_ioc_as_a_fixed_non_root_user() -> None:
    stage = runtime_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert len(users) == 1 and re.fullmatch(r"\d+(:\d+)?", users[0]), users
    assert image_uid() != 0
    [entrypoint] = [rest for word, rest in stage if word == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["ioc"]
    [cmd] = [rest for word, rest in stage if word == "CMD"]
    assert json.loads(cmd) == ["worker"]
    env = stage_env(stage)
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    # The state directory exists and belongs to the user (a tmpfs or emptyDir goes on top).
    state = env["IOC_STATE_DIR"]
    assert any(
        word == "RUN" and f"-o {image_uid()}" in rest and state in rest for word, rest in stage
    ), f"nothing creates {state} owned by {image_uid()}"


def test_the_image_installs_only_the_hash_pinned_runtime_dependencies() -> None:
    runs = [rest for word, rest in docker_stages()[0] if word == "RUN"]
    assert any(
        "pip install" in r and "--require-hashes" in r and "-r requirements/runtime.txt" in r
        for r in runs
    ), runs
    # The package itself adds nothing the lock did not pin.
    package = [r for r in runs if re.search(r"pip install .*--no-deps \.$", r)]
    assert package, runs


def test_the_runtime_lock_is_the_tested_lock_without_the_dev_tools() -> None:
    runtime, lock = pins(RUNTIME_REQS), pins(LOCK)
    assert runtime, "requirements/runtime.txt pins nothing"
    for name, (version, hashes) in runtime.items():
        assert name in lock, f"{name} is in the image but not in the tested lock"
        assert lock[name][0] == version, f"{name}: image {version}, CI {lock[name][0]}"
        assert hashes and hashes == lock[name][1], f"{name}: hashes differ from lock.txt"
    for dev in ("pytest", "mypy", "ruff", "hypothesis"):
        assert dev not in runtime
    # Every direct dependency of the package, at its exact pin.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = re.split(r"(?:\[[^\]]*\])?==", requirement)
        assert runtime[re.sub(r"[-_.]+", "-", name).lower()][0] == version, requirement


def test_the_image_carries_the_files_the_installed_package_reads() -> None:
    stage = runtime_stage()
    env = stage_env(stage)
    copies = {
        rest.split()[-2]: rest.split()[-1]
        for word, rest in stage
        if word == "COPY" and not rest.startswith("--from")
    }
    # Alert rules: the default path is computed beside the package, which an installed
    # package does not have; the image names the copied directory instead.
    assert DEFAULT_ALERT_RULES == ROOT / "deploy/alert-rules"
    assert copies["deploy/alert-rules/"].rstrip("/") == env["IOC_ALERT_RULES"]
    assert "grafana/" in copies
    # Schemas: the gateway serves them from a directory found relative to its package, which
    # once installed is site-packages/ioc: the image links that place to the copied files.
    schemas_dest = copies["schemas/*.json"].rstrip("/")
    beside = SCHEMAS_DIR.relative_to(Path(ioc.__file__).resolve().parent.parent)
    base_tag = interpolate(docker_stages()[-1][0][1].split()[0], docker_global_args())
    python = re.search(r":(3\.\d+)", base_tag)
    assert python, base_tag
    link = f"ln -s {schemas_dest} /opt/venv/lib/python{python.group(1)}/site-packages/{beside}"
    assert any(word == "RUN" and rest.endswith(link) for word, rest in stage), link
    assert (ROOT / "schemas/gateway.openapi.json").is_file()


def test_the_image_exposes_the_ports_the_processes_listen_on() -> None:
    [exposed] = [rest.split() for word, rest in runtime_stage() if word == "EXPOSE"]
    wanted = {
        str(DEFAULTS.metrics_port),
        str(DEFAULTS.alert_api_port),
        str(DEFAULTS.gateway_port),
        f"{DEFAULTS.syslog_udp_port}/udp",
        f"{DEFAULTS.syslog_tcp_port}/tcp",
    }
    assert wanted <= set(exposed), exposed
    assert stage_env(runtime_stage())["IOC_GATEWAY_HOST"] == "0.0.0.0"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            ignored = not negate
    return ignored


def test_the_build_context_holds_what_the_image_copies_and_nothing_private() -> None:
    assert not (ROOT / ".dockerignore").exists(), "the top-level layout is fixed"
    ignore = DEPLOY / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    sources = [
        src
        for word, rest in dockerfile_instructions()
        if word == "COPY" and not rest.startswith("--from")
        for src in rest.split()[:-1]
    ]
    for src in sources:
        for path in sorted(ROOT.glob(src.rstrip("/"))):
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            kept = [f for f in files if "__pycache__" not in f.parts]
            assert kept, src
            for f in kept:
                rel = f.relative_to(ROOT).as_posix()
                assert not _ignored(rel, patterns), f"{rel} is copied but ignored"
    for private in (
        ".venv/bin/python",
        ".git/config",
        "deploy/compose/.env",
        "deploy/compose/secrets/alertmanager_smtp_password",
        "tests/conftest.py",
        "ioc/__pycache__/config.cpython-311.pyc",
    ):
        assert _ignored(private, patterns), f"{private} would be sent to the builder"


# --- compose: what runs -----------------------------------------------------------------------


def test_kafka_is_three_kraft_brokers_that_keep_every_write_on_two() -> None:
    brokers = kafka_services()
    assert len(brokers) == 3
    envs = {name: s["environment"] for name, s in brokers.items()}
    ids = {str(e["KAFKA_NODE_ID"]) for e in envs.values()}
    assert len(ids) == 3
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs.values()}
    assert len(voters) == 1, "every broker must name the same controller quorum"
    quorum = {v.split("@")[0]: v.split("@")[1] for v in voters.pop().split(",")}
    assert set(quorum) == ids
    cluster_ids = {e["CLUSTER_ID"] for e in envs.values()}
    assert len(cluster_ids) == 1 and len(cluster_ids.pop()) == 22
    for name, e in envs.items():
        assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert "ZOOKEEPER_CONNECT" not in " ".join(e)
        host = quorum[str(e["KAFKA_NODE_ID"])].split(":")[0]
        assert host == name == brokers[name].get("hostname", name)
        assert e["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert str(e["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3"
        assert str(e["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"
        assert str(e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
        assert str(e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == "3"
        assert str(e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == "2"
        assert str(e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
        mounts = dict((t, s) for s, t in volume_sources(brokers[name]))
        assert e["KAFKA_LOG_DIRS"] in mounts, "broker data must be on a volume"
    data = [
        dict((t, s) for s, t in volume_sources(s))["/var/lib/kafka/data"] for s in brokers.values()
    ]
    assert len(set(data)) == 3, "each broker needs its own volume"


def test_the_stack_has_every_service_a_deployment_needs() -> None:
    svc = services()
    images = {name: str(s.get("image", "")) for name, s in svc.items()}
    for needed in ("timescale/timescaledb:", "grafana/", "prom/prometheus:", "prom/alertmanager:"):
        assert any(i.startswith(needed) for i in images.values()), needed
    roles: dict[str, list[str]] = {}
    for name, s in ioc_services().items():
        roles.setdefault(command(s)[0], []).append(name)
    assert len(roles["gateway"]) == 2
    assert len(roles["worker"]) == 1
    [worker] = roles["worker"]
    assert int(svc[worker]["deploy"]["replicas"]) >= 2
    for job in ("migrate", "topics"):
        [name] = roles[job]
        assert is_one_shot(svc[name]), f"{name} runs once and exits"


def test_every_image_is_pinned_to_a_version() -> None:
    for name, s in services().items():
        image = str(s["image"])
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
    [db] = [s for s in services().values() if "timescaledb" in s["image"]]
    assert re.search(r":2\.\d+\.\d+-pg15$", db["image"]), db["image"]


def test_every_service_recovers_and_is_bounded() -> None:
    for name, s in services().items():
        limits = s.get("deploy", {}).get("resources", {}).get("limits", {})
        assert "cpus" in limits and "memory" in limits, f"{name}: no cpu/memory limit"
        assert s.get("logging", {}).get("options", {}).get("max-size"), f"{name}: logs unbounded"
        if is_one_shot(s):
            continue
        assert s.get("restart") == "unless-stopped", name
        check = s.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name}: no health check"


def test_health_checks_ask_the_endpoints_the_processes_serve() -> None:
    gateway_routes = re.findall(r'add_get\("(/[a-z]+)"', (ROOT / "ioc/api/gateway.py").read_text())
    for name, s in ioc_services().items():
        if is_one_shot(s):
            continue
        test = " ".join(s["healthcheck"]["test"])
        role = command(s)[0]
        if role == "gateway":
            assert (
                f"127.0.0.1:{DEFAULTS.gateway_port}/readyz" in test and "/readyz" in gateway_routes
            )
        else:
            assert f"127.0.0.1:{DEFAULTS.metrics_port}/metrics" in test, name
        assert "curl" not in test and "wget" not in test, "the python-slim image has neither"


def test_workers_and_gateways_start_after_the_migrations_and_topics() -> None:
    svc = services()
    for name, s in ioc_services().items():
        if is_one_shot(s):
            continue
        deps = s["depends_on"]
        for job in ("migrate", "topics"):
            assert deps[job]["condition"] == "service_completed_successfully", (name, job)
    for name, s in svc.items():
        for dep, spec in s.get("depends_on", {}).items():
            target = svc[dep]
            if spec["condition"] == "service_healthy":
                assert target.get("healthcheck"), f"{name} waits on {dep}, which has no check"
            if spec["condition"] == "service_completed_successfully":
                assert is_one_shot(target), f"{name} waits for {dep} to exit"
    assert svc["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert set(svc["topics"]["depends_on"]) == set(kafka_services())


def test_the_ioc_services_run_the_one_image_built_from_the_dockerfile() -> None:
    built = ioc_services()
    assert len(built) >= 5
    assert len({s["image"] for s in built.values()}) == 1
    for name, s in built.items():
        context = (COMPOSE_DIR / s["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / s["build"]["dockerfile"]).resolve() == DOCKERFILE, name
        assert s.get("read_only") is True, f"{name}: writable root filesystem"
        scratch = set(s.get("tmpfs", []))
        assert {"/tmp", stage_env(runtime_stage())["IOC_STATE_DIR"]} <= scratch, name


def test_published_ports_do_not_collide() -> None:
    seen: dict[tuple[str, str], str] = {}
    for name, s in services().items():
        for port in s.get("ports", []):
            *host, _container = str(port).split(":")
            proto = str(port).rpartition("/")[2] if "/" in str(port) else "tcp"
            key = (":".join(host), proto)
            assert key not in seen, f"{name} and {seen[key]} both publish {key}"
            seen[key] = name
    for name, s in services().items():
        if s.get("deploy", {}).get("replicas", 1) not in (1, "1"):
            assert not s.get("ports"), f"{name}: replicas cannot share a published port"


# --- compose: secrets and settings ------------------------------------------------------------


def test_no_secret_is_written_in_compose_yaml() -> None:
    for number, line in enumerate(compose_raw_text().splitlines(), 1):
        code = line.split(" #")[0]
        m = re.match(r"\s*-?\s*([A-Z0-9_]+)\s*[:=]\s*(.+)", code)
        if m and SECRETISH.search(m.group(1)):
            assert m.group(2).strip().startswith("${"), f"line {number}: {line.strip()}"
        # A URL's password, if any, must be a ${...} reference too.
        code = re.sub(r"\$\{[^}]*\}", "{VAR}", code)
        for url in re.findall(r"\w+://[^\s\"']+", code):
            password = urlsplit(url).password
            assert password in (None, "{VAR}"), f"line {number}: {url}"


def test_secrets_live_in_the_git_ignored_env_file_and_example_lists_them() -> None:
    for path in ("deploy/compose/.env", "deploy/compose/secrets/alertmanager_smtp_password"):
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path])
        assert ignored.returncode == 0, f"{path} is not git-ignored"
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "deploy/compose/.env.example"]
    )
    assert tracked.returncode == 1, ".env.example must be committed"
    # Every variable compose needs without a default is in the example, with a value.
    required = {
        m.group(1)
        for m in _VAR.finditer(compose_raw_text())
        if m.group(1) and m.group(2) in (None, ":?", "?")
    }
    example = env_example()
    assert required, "nothing read from .env?"
    for name in required:
        assert example.get(name), f"{name} is required by compose.yaml but not in .env.example"
    for name, value in example.items():
        if SECRETISH.search(name):
            assert value in ("", "change-me"), f"{name}: the example holds a real-looking value"
    # The ioc services take the whole file (any IOC_* setting can be added there); the other
    # services get only their own secrets, interpolated from it.
    raw = yaml.safe_load(compose_raw_text())["services"]
    for name, s in raw.items():
        if name in ioc_services():
            assert s.get("env_file") in (".env", [".env"]), name
        for key, value in s.get("environment", {}).items():
            if SECRETISH.search(key):
                assert str(value).startswith("${"), f"{name}.{key} is not read from .env"


def test_compose_secret_files_are_in_the_ignored_directory() -> None:
    for name, spec in compose()["secrets"].items():
        path = (COMPOSE_DIR / spec["file"]).resolve()
        assert path.parent == COMPOSE_DIR / "secrets", name


def test_the_ioc_environment_is_a_production_configuration() -> None:
    brokers = kafka_services()
    db = services()["timescaledb"]["environment"]
    for name, s in ioc_services().items():
        env = service_env(s)
        settings = Settings.from_env(env)
        assert not settings.embedded_broker and settings.broker_flavor == "kafka", name
        assert settings.topic_replication == 3
        assert faust_settings(settings)["topic_replication_factor"] == 3  # Faust's own topics
        assert settings.partitions == 12
        hosts = [hp.split(":") for hp in settings.kafka_bootstrap.split(",")]
        assert {h for h, _ in hosts} == set(brokers) and {p for _, p in hosts} == {"9092"}
        url = urlsplit(settings.database_url)
        assert (url.hostname, url.port) == ("timescaledb", 5432)
        assert url.username == db["POSTGRES_USER"] and url.path == "/" + db["POSTGRES_DB"]
        assert url.password == db["POSTGRES_PASSWORD"]
        assert settings.gateway_host == "0.0.0.0"
        am = urlsplit(env["IOC_ALERTMANAGER_URL"])
        assert am.hostname in services() and am.port == 9093
    [worker] = [s for s in ioc_services().values() if command(s) == ["worker"]]
    assert int(worker["deploy"]["replicas"]) <= Settings.from_env(service_env(worker)).partitions


def test_every_ioc_variable_the_stack_sets_is_read_by_the_code() -> None:
    names = set(env_example())
    for s in ioc_services().values():
        names |= set(s.get("environment", {}))
    names |= set(configmap_data())
    secret = [d for f, d in k8s_documents() if f == "secret.example.yaml"]
    names |= {k for d in secret for k in d["stringData"]}
    unread = {
        n
        for n in names
        if n.startswith("IOC_") and n not in COMPOSE_ONLY and not read_by_the_stack(n)
    }
    assert not unread, f"set but read by nothing: {sorted(unread)}"


def test_named_volumes_and_bind_mounts_exist() -> None:
    declared = set(compose()["volumes"])
    named_by: dict[str, list[str]] = {}
    for name, s in services().items():
        for source, _target in volume_sources(s):
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} is not in the repo"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                named_by.setdefault(name, []).append(source)
    for needs_data in ("timescaledb", "prometheus", "alertmanager", "grafana", *kafka_services()):
        assert named_by.get(needs_data), f"{needs_data} keeps its data in the container"


def test_grafana_is_provisioned_from_the_repository() -> None:
    grafana = services()["grafana"]
    mounts = {t: (COMPOSE_DIR / s).resolve() for s, t in volume_sources(grafana)}
    prov = ROOT / "grafana/provisioning"
    assert mounts["/etc/grafana/provisioning/datasources"] == prov / "datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == prov / "dashboards"
    dashboards = mounts["/var/lib/grafana/dashboards/ioc"]
    assert dashboards == ROOT / "grafana/dashboards"
    # Each dashboard provider reads a folder that the mount fills with dashboards.
    for path in (prov / "dashboards").glob("*.yaml"):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            folder = Path(provider["options"]["path"]).relative_to(
                "/var/lib/grafana/dashboards/ioc"
            )
            assert list((dashboards / folder).glob("*.json")), provider["name"]
    # Every ${VAR} the provisioning files read is in Grafana's environment.
    wanted = set()
    for path in prov.rglob("*.yaml"):
        text = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        wanted |= set(re.findall(r"\$\{(\w+)\}", text))
    env = grafana["environment"]
    assert wanted and wanted <= set(env), wanted - set(env)
    db_host, _, db_port = env["IOC_GRAFANA_DB_HOST"].partition(":")
    assert db_host in services() and db_port == "5432"
    assert urlsplit(env["IOC_PROMETHEUS_URL"]).hostname in services()
    # The login Grafana uses is the one the grafana-reader job creates.
    [reader] = [s for s in ioc_services().values() if command(s)[:2] == ["grafana", "reader"]]
    assert command(reader)[2] == env["IOC_GRAFANA_DB_USER"]


# --- Prometheus ------------------------------------------------------------------------------


def _prometheus() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    return doc


def test_promtool_accepts_the_config_with_the_mounted_rules(tmp_path: Path) -> None:
    """The rule paths are the container's; lay the mounted files out the same way here."""
    service = services()["prometheus"]
    mounts = {t: (COMPOSE_DIR / s).resolve() for s, t in volume_sources(service)}
    config_in_container = next(
        a.split("=", 1)[1] for a in service["command"] if a.startswith("--config.file=")
    )
    assert mounts[config_in_container] == COMPOSE_DIR / "prometheus.yml"
    text = (COMPOSE_DIR / "prometheus.yml").read_text()
    rule_files = _prometheus()["rule_files"]
    rule_count = 0
    for pattern in rule_files:
        directory = str(Path(pattern).parent)
        assert directory in mounts, f"{pattern}: nothing is mounted at {directory}"
        local = tmp_path / directory.strip("/")
        shutil.copytree(mounts[directory], local)
        rule_count += len(list(local.glob(Path(pattern).name)))
        text = text.replace(pattern, str(local / Path(pattern).name))
    assert rule_count, "the mounted rules directory holds no rule file"
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    out = subprocess.run(
        [_tool("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {rule_count} rule files found" in out.stdout + out.stderr


def test_prometheus_scrapes_every_worker_and_gateway_under_the_rules_job_names() -> None:
    jobs = {j["job_name"]: j for j in _prometheus()["scrape_configs"]}
    worker = jobs["ioc-worker"]
    [sd] = worker["dns_sd_configs"]
    [worker_service] = [n for n, s in ioc_services().items() if command(s) == ["worker"]]
    assert sd["names"] == [worker_service] and sd["type"] == "A"
    assert sd["port"] == DEFAULTS.metrics_port
    gateways = {n for n, s in ioc_services().items() if command(s) == ["gateway"]}
    [static] = jobs["ioc-gateway"]["static_configs"]
    assert set(static["targets"]) == {f"{g}:{DEFAULTS.gateway_port}" for g in gateways}
    for job in ("ioc-worker", "ioc-gateway"):
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
    # The job names the pipeline rules select on all exist.
    rules_dir = DEPLOY / "prometheus/rules"
    used = set()
    for path in rules_dir.glob("*.yml"):
        used |= set(re.findall(r'job="([^"]+)"', path.read_text()))
    assert used <= set(jobs), used - set(jobs)
    [am] = _prometheus()["alerting"]["alertmanagers"][0]["static_configs"]
    assert am["targets"] == ["alertmanager:9093"] and "alertmanager" in services()


# --- Alertmanager ----------------------------------------------------------------------------


AM_CONFIG = COMPOSE_DIR / "alertmanager.yml"


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("amtool"), *args], capture_output=True, text=True)


def test_amtool_accepts_the_alertmanager_config() -> None:
    out = _amtool("check-config", str(AM_CONFIG))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["team=security", "severity=critical"], "security"),
        (["team=security", "alertname=port-scan", "source=wazuh", "severity=high"], "security"),
        (["team=operations", "alertname=service-down", "site=so-ttt"], "operators"),
        (["team=operations", "component=pipeline", "alertname=IocWorkerDown"], "operators"),
        (["alertname=Watchdog"], "default"),
        ([], "default"),
    ],
)
def test_alerts_reach_their_team(labels: list[str], receiver: str) -> None:
    out = _amtool(
        "config", "routes", "test", f"--config.file={AM_CONFIG}",
        f"--verify.receivers={receiver}", *labels,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_team_the_ioc_rules_name_has_its_own_route() -> None:
    teams = set()
    for path in (ROOT / "deploy/alert-rules").glob("*.yaml"):
        for rule in (yaml.safe_load(path.read_text()) or {}).get("rules", []):
            if "team" in rule.get("labels", {}):
                teams.add(rule["labels"]["team"])
    assert teams == {"security", "operations"}
    for team in teams:
        out = _amtool("config", "routes", "test", f"--config.file={AM_CONFIG}", f"team={team}")
        assert out.returncode == 0 and out.stdout.strip() not in ("", "default"), team


def test_alertmanager_reads_its_secrets_from_mounted_files() -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    mounted = {f"/run/secrets/{name}" for name in services()["alertmanager"]["secrets"]}
    files = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in AM_SECRET_KEYS, f"{key} holds a secret inline: use {key}_file"
                if key.endswith("_file"):
                    files.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    assert files and files <= mounted, files - mounted
    # The critical level of an alert mutes its lower levels.
    assert any(
        'severity="critical"' in r["source_matchers"]
        and "warning" in " ".join(r["target_matchers"])
        and "alertname" in r["equal"]
        for r in config["inhibit_rules"]
    )


# --- Kubernetes -------------------------------------------------------------------------------


def test_every_manifest_parses_and_lives_in_the_ioc_namespace() -> None:
    assert k8s_documents()
    for file, doc in k8s_documents():
        if file == "kustomization.yaml":
            continue
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), file
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "ioc", file
    assert k8s_one("Namespace", "ioc")


def test_the_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    present = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == present - {"secret.example.yaml"}
    assert len(kustomization["resources"]) == len(set(kustomization["resources"]))
    images = {c["image"] for _, t in pod_templates() for c in t["spec"]["containers"]}
    assert {i.split(":")[0] for i in images} == {i["name"] for i in kustomization["images"]}


def test_kustomize_renders_the_manifests_with_the_registry_image() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (kustomize) is not installed")
    out = subprocess.run([kubectl, "kustomize", str(K8S_DIR)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert "Secret" not in {d["kind"] for d in docs}
    [image] = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["images"]
    rendered = set(re.findall(r"image: (\S+)", out.stdout))
    assert rendered == {f"{image['newName']}:{image['newTag']}"}


def test_every_container_is_bounded_probed_and_runs_as_the_image_user() -> None:
    state_dir = configmap_data()["IOC_STATE_DIR"]
    assert state_dir == stage_env(runtime_stage())["IOC_STATE_DIR"]
    for where, template in pod_templates():
        spec = template["spec"]
        pod_security = spec.get("securityContext", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            name = f"{where}/{c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"].get(kind, {})), (name, kind)
            security = {**pod_security, **c.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, name
            assert security.get("runAsUser") == image_uid(), name
            assert security.get("readOnlyRootFilesystem") is True, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities", {}).get("drop") == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for path in (state_dir, "/tmp"):
                assert "emptyDir" in volumes[mounts[path]], f"{name}: {path} is not writable"
            if where.startswith("Job/"):
                continue
            ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
            for probe in ("livenessProbe", "readinessProbe"):
                port = c[probe]["httpGet"]["port"]
                assert port in ports or port in ports.values(), (name, probe, port)


def test_the_probes_ask_endpoints_the_processes_serve() -> None:
    gateway_routes = set(
        re.findall(r'add_get\("(/[a-z]+)"', (ROOT / "ioc/api/gateway.py").read_text())
    )
    expected = {
        "worker": ({"/metrics"}, {"metrics": DEFAULTS.metrics_port}),
        "gateway": (gateway_routes, {"http": DEFAULTS.gateway_port}),
    }
    for deployment in k8s("Deployment"):
        [c] = deployment["spec"]["template"]["spec"]["containers"]
        routes, ports = expected[c["args"][0]]
        container_ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            assert get["path"] in routes, (c["name"], probe, get["path"])
            assert container_ports[get["port"]] == ports[get["port"]]
    gateway = k8s_one("Deployment", "ioc-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    protocols = {(p["containerPort"], p["protocol"]) for p in gateway["ports"]}
    assert {(DEFAULTS.syslog_udp_port, "UDP"), (DEFAULTS.syslog_tcp_port, "TCP")} <= protocols


def test_disruption_budgets_select_running_pods() -> None:
    deployments = {d["metadata"]["name"]: d for d in k8s("Deployment")}
    pdbs = k8s("PodDisruptionBudget")
    assert len(pdbs) == 2
    covered = set()
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        [target] = [
            n
            for n, d in deployments.items()
            if matches(selector, d["spec"]["template"]["metadata"]["labels"])
        ]
        covered.add(target)
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] == 1
        else:
            replicas = deployments[target]["spec"].get("replicas", 1)
            assert 1 <= spec["minAvailable"] < replicas, "a drain could never proceed"
    assert covered == set(deployments)


def test_services_select_pods_and_target_their_ports() -> None:
    templates = [t for _, t in pod_templates()]
    for service in k8s("Service"):
        selector = service["spec"]["selector"]
        pods = [t for t in templates if matches(selector, t["metadata"]["labels"])]
        assert pods, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            for pod in pods:
                container_ports = [p for c in pod["spec"]["containers"] for p in c["ports"]]
                assert any(
                    port["targetPort"] in (p.get("name"), p["containerPort"])
                    and port.get("protocol", "TCP") == p.get("protocol", "TCP")
                    for p in container_ports
                ), (service["metadata"]["name"], port)
    syslog = k8s_one("Service", "ioc-gateway-syslog")["spec"]
    assert syslog["type"] == "LoadBalancer"
    # The gateway's syslog allow-list needs the sender's own address.
    assert syslog["externalTrafficPolicy"] == "Local"
    assert {p["protocol"] for p in syslog["ports"]} == {"UDP", "TCP"}


def test_workers_never_outnumber_the_partitions() -> None:
    partitions = int(configmap_data()["IOC_PARTITIONS"])
    worker = k8s_one("Deployment", "ioc-worker")
    [hpa] = k8s("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ioc-worker",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    assert worker["spec"].get("replicas", hpa["spec"]["minReplicas"]) <= partitions
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    gateway = k8s_one("Deployment", "ioc-gateway")
    assert gateway["spec"]["replicas"] == 2


def _routed(path: str, rule: Mapping[str, Any]) -> bool:
    """Whether an Ingress rule sends `path` on (Kubernetes' Exact and Prefix matching)."""
    for p in rule["http"]["paths"]:
        if p["pathType"] == "Exact" and path == p["path"]:
            return True
        prefix = p["path"].rstrip("/").split("/")
        if p["pathType"] == "Prefix" and path.split("/")[: len(prefix)] == prefix:
            return True
    return False


def test_the_ingress_publishes_the_push_api_and_nothing_internal_over_tls() -> None:
    [ingress] = k8s("Ingress")
    [rule] = ingress["spec"]["rules"]
    [tls] = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    gateway = k8s_one("Deployment", "ioc-gateway")["spec"]["template"]
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        service = k8s_one("Service", backend["name"])
        assert matches(service["spec"]["selector"], gateway["metadata"]["labels"])
        [port] = [
            p
            for p in service["spec"]["ports"]
            if p["name"] == backend["port"].get("name")
            or p["port"] == backend["port"].get("number")
        ]
        assert port["protocol"] == "TCP" and port["targetPort"] == "http"
    for public in ("/v1/events/security", "/openapi.json", "/schemas/gateway.openapi.json"):
        assert _routed(public, rule), public
    for internal in ("/metrics", "/healthz", "/readyz"):
        assert not _routed(internal, rule), f"{internal} would be public"


def test_the_secret_template_holds_placeholders_only() -> None:
    [secret] = [d for f, d in k8s_documents() if f == "secret.example.yaml"]
    assert secret["kind"] == "Secret" and "data" not in secret
    for key, value in secret["stringData"].items():
        url = urlsplit(value) if "://" in value else None
        if url is not None:
            assert url.password in (None, "change-me"), key
            assert url.hostname and (url.hostname.endswith(".invalid") or url.password), key
        else:
            assert value in ("", "change-me") or value.endswith(".invalid"), key
    for key in configmap_data():
        assert not SECRETISH.search(key) and key != "IOC_DATABASE_URL", f"{key} is a secret"


def test_the_kubernetes_settings_parse_like_the_compose_ones() -> None:
    [secret] = [d for f, d in k8s_documents() if f == "secret.example.yaml"]
    settings = Settings.from_env({**configmap_data(), **secret["stringData"]})
    assert not settings.embedded_broker and settings.broker_flavor == "kafka"
    assert settings.topic_replication == 3
    assert faust_settings(settings)["topic_replication_factor"] == 3
    [worker] = [s for s in ioc_services().values() if command(s) == ["worker"]]
    assert settings.partitions == Settings.from_env(service_env(worker)).partitions
    assert settings.alert_rules == (Path(stage_env(runtime_stage())["IOC_ALERT_RULES"]),)


# --- the guides -------------------------------------------------------------------------------


@pytest.mark.parametrize("guide", ["compose/README.md", "k8s/README.md"])
def test_the_guides_name_files_that_exist(guide: str) -> None:
    path = DEPLOY / guide
    text = path.read_text()
    links = re.findall(r"\]\(([^)#:]+)\)", text)
    quoted = re.findall(r"`((?:deploy|grafana|docs)/[\w./-]+)`", text)
    assert links or quoted
    for link in links:
        target = (path.parent / link).resolve()
        # docs/operations.md is being written alongside; everything else must exist.
        if target != ROOT / "docs/operations.md":
            assert target.exists(), f"{guide}: {link}"
    for rel in quoted:
        assert (ROOT / rel).exists(), f"{guide}: {rel}"
