"""The deployment files of examples/deploy/ are read by their validators and run as they are written.

The Kubernetes manifests are checked against the Kubernetes JSON schemas that `kubernetes-validate`
bundles (strict: an unknown or misspelt field is an error), then across each other (selectors, port
names, the ConfigMap and Secret they name). The Dockerfile goes through hadolint and a reading of its
instructions; its COPY lines are replayed and its wheel built and installed, and the image's command runs
from that wheel with the image's ENV until its HEALTHCHECK command says healthy. Then the Deployment's
container is started as a process the way the kubelet would start it (its args and env, the ConfigMap laid
out as the kubelet lays it out, the probes sent as the kubelet sends them). Docker itself is not needed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from naftiko import load_capabilities
from naftiko.adapters.cli import parser as cli_parser
from tests.support import ROOT, NaftikoProcess, RecordingUpstream, Reply, free_port

DEPLOY = ROOT / "examples" / "deploy"
KUBE = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBE_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())  # the oldest still-common release, the newest
SECRET = "naftiko-secrets"


# --- the Kubernetes manifests ---------------------------------------------------------------------------


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every document of every manifest file, with its file name."""
    found = []
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), f"{path.name}: a document that is not a mapping"
            found.append((path.name, document))
    return found


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for _, d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container() -> dict[str, Any]:
    (only,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def pod_labels() -> dict[str, str]:
    return one("Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def expand(value: str, env: dict[str, str]) -> str:
    """`$(VAR)` in args as the kubelet expands it (`$$` escapes, unknown names are kept)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), value)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(version: str) -> None:
    found = manifests()
    assert {d["kind"] for _, d in found} >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    for name, document in found:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name}: {document['kind']} {document['metadata']['name']}: {path}: {exc.message}")


def test_the_schema_check_refuses_what_kubernetes_would() -> None:
    """The validator is not a formality: a misspelt field and a wrong type in the Deployment fail it."""
    version = KUBE_VERSIONS[-1]
    misspelt = copy.deepcopy(one("Deployment"))
    pod = misspelt["spec"]["template"]["spec"]["containers"][0]
    pod["livenesProbe"] = pod.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, version, strict=True)
    mistyped = copy.deepcopy(one("Deployment"))
    mistyped["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(mistyped, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_selectors_match_the_pods_and_ports_are_declared() -> None:
    deployment, labels = one("Deployment"), pod_labels()
    assert deployment["spec"]["replicas"] >= 2
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert selects(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
    declared = {port["name"]: port["containerPort"] for port in container()["ports"]}
    services = [d for _, d in manifests() if d["kind"] == "Service"]
    assert services
    for service in services:
        assert selects(service["spec"]["selector"], labels), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, f"{service['metadata']['name']}: {port['targetPort']}"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"]["port"] == "control", probe
    assert container()["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container()["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == declared["control"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_control_port_stays_out_of_the_balanced_service() -> None:
    """Scraping must reach every pod; through a balanced Service each scrape would reach one at random."""
    balanced = one("Service", "naftiko")
    assert {p["targetPort"] for p in balanced["spec"]["ports"]} == {"rest", "mcp"}
    headless = one("Service", "naftiko-control")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert [p["targetPort"] for p in headless["ports"]] == ["control"]


def test_the_pod_runs_locked_down() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"} and "memory" in resources["limits"]
    # The preStop pause and the server's own drain fit in the grace period.
    pause = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep" and int(pause[1]) + 10 <= pod["terminationGracePeriodSeconds"]


def test_the_user_of_the_image_is_the_user_of_the_pod() -> None:
    user = instructions_of("USER")[-1].value
    uid, _, gid = user.partition(":")
    pod = one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod.get("runAsGroup")) == (int(uid), int(gid) if gid else None)


def test_the_volumes_name_what_exists() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container()["volumeMounts"]}
    assert set(mounts) <= set(volumes)
    capabilities = volumes["capabilities"]["configMap"]
    assert capabilities["name"] == one("ConfigMap")["metadata"]["name"]
    assert "items" not in capabilities  # the whole folder, so every key of the ConfigMap is served
    assert "subPath" not in mounts["capabilities"]  # a subPath mount would never see an edit of the ConfigMap
    assert mounts["capabilities"]["readOnly"] is True
    assert mounts["capabilities"]["mountPath"] in [expand(a, {}) for a in container()["args"]]


def test_every_secret_key_is_one_the_readme_creates() -> None:
    """The Secret is not in the repository; the README's command must create every key the pods read."""
    refs = [e["valueFrom"]["secretKeyRef"] for e in container()["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert {ref["name"] for ref in refs} == {SECRET}
    wanted = {ref["key"] for ref in refs}
    readme = (DEPLOY / "README.md").read_text()
    command = re.search(rf"kubectl create secret generic {SECRET}(.*?)\n\s*```", readme, re.S)
    assert command, "the README shows how to create the Secret"
    created = set(re.findall(r"--from-literal=([A-Z_][A-Z0-9_]*)=", command[1]))
    assert created == wanted
    assert "NAFTIKO_SESSION_SECRET" in wanted  # replicas share the key that signs session ids


def configmap_folder(tmp_path: Path) -> Path:
    """The ConfigMap's files where the pod reads them, in the kubelet's layout (see `kubelet_update`)."""
    folder = tmp_path / "capabilities"
    folder.mkdir()
    data = one("ConfigMap")["data"]
    assert data, "the ConfigMap holds a capability file"
    kubelet_update(folder, data)
    return folder


def kubelet_update(folder: Path, data: dict[str, str]) -> None:
    """The ConfigMap's files written as the kubelet's atomic writer writes them: into a new timestamped
    folder, `..data` then pointed at it in one rename, each key a link through `..data`, the old folder
    removed. A reader never sees half an update; the files' own names never change."""
    old = os.readlink(folder / "..data") if (folder / "..data").is_symlink() else None
    stamped = folder / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9:09d}"
    stamped.mkdir()
    for key, text in data.items():
        (stamped / key).write_text(text)
    (folder / "..data_tmp").symlink_to(stamped.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for key in data:
        if not (folder / key).is_symlink():
            (folder / key).symlink_to(f"..data/{key}")
    if old is not None:
        shutil.rmtree(folder / old)


def test_the_configmap_holds_capabilities_that_load_where_the_pod_reads_them(tmp_path: Path) -> None:
    folder = configmap_folder(tmp_path)
    capabilities = load_capabilities([folder])
    assert len(capabilities) == len(one("ConfigMap")["data"])  # each file read once, not again through ..data
    ports = {e.namespace: e.port for c in capabilities for e in c.exposes}
    declared = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert sorted(ports.values()) == sorted(v for k, v in declared.items() if k != "control")
    env_names = {e["name"] for e in container()["env"]}
    for capability in capabilities:
        for consumes in capability.consumes:
            variable = "NAFTIKO_BASE_URI_" + consumes.namespace.upper().replace("-", "_")
            assert consumes.base_uri or variable in env_names, f"{consumes.namespace}: no base URI in the pod"


def test_the_container_args_are_flags_naftiko_serve_takes() -> None:
    args = [expand(a, {"POD_NAMESPACE": "default"}) for a in container()["args"]]
    assert instructions_of("ENTRYPOINT")[-1].exec_form() == ["naftiko"]
    parsed = cli_parser().parse_args(args)
    assert parsed.command == "serve" and parsed.host == "0.0.0.0"
    assert "naftiko.default.svc.cluster.local" in parsed.allow_host
    assert str(container_port("control")) == flag_value(args, "--control-port")


def container_port(name: str) -> int:
    return next(p["containerPort"] for p in container()["ports"] if p["name"] == name)


def flag_value(args: list[str], flag: str) -> str:
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


# --- the Dockerfile -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int
    stage: int  # the index of the FROM it follows

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, as Docker reads it; None for shell form."""
        try:
            parsed = json.loads(self.value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None


def read_dockerfile(text: str) -> list[Instruction]:
    """Instructions as Docker's parser splits them: comment lines dropped (inside continuations too),
    lines ending in a backslash joined to the next."""
    found: list[Instruction] = []
    pending, start, stage = "", 0, -1
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), value.strip(), start, stage))
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def instructions_of(keyword: str) -> list[Instruction]:
    return [i for i in read_dockerfile(DOCKERFILE.read_text()) if i.keyword == keyword]


def options(value: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` options of an instruction, and the rest."""
    found: dict[str, str] = {}
    while value.startswith("--"):
        option, _, value = value.partition(" ")
        name, _, setting = option[2:].partition("=")
        found[name] = setting
        value = value.lstrip()
    return found, value


def hadolint() -> str:
    found = Path(sysconfig.get_path("scripts")) / "hadolint"
    return str(found) if found.exists() else shutil.which("hadolint") or "hadolint"


def lint(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [hadolint(), "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_hadolint_finds_nothing() -> None:
    assert lint(DOCKERFILE) == []


def test_hadolint_is_not_a_formality(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text().replace('CMD ["serve",', "CMD serve").replace("USER 10001:10001", "USER root")
    broken.write_text(text)
    codes = {finding["code"] for finding in lint(broken)}
    assert {"DL3002", "DL3025"} <= codes  # the last USER is root; CMD in shell form


def test_the_dockerfile_reads_as_intended() -> None:
    every = read_dockerfile(DOCKERFILE.read_text())
    final = max(i.stage for i in every)
    bases = [i.value for i in every if i.keyword == "FROM"]
    default_base = next(i.value for i in every if i.keyword == "ARG" and i.value.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[12](\.\d+)?-slim(-\w+)?", default_base), default_base
    assert all(b.split(" ")[0] == "${PYTHON_IMAGE}" for b in bases) and len(bases) == 2
    last = [i for i in every if i.stage == final]
    keywords = [i.keyword for i in last]
    user = [i for i in last if i.keyword == "USER"]
    assert user and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user[-1].value), "a numeric user that is not root"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT") and keywords.index("USER") < keywords.index("CMD")
    env = image_env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    labels = dict(p.split("=", 1) for i in last if i.keyword == "LABEL" for p in shlex.split(i.value))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    for keyword in ("ENTRYPOINT", "CMD"):
        assert instructions_of(keyword)[-1].exec_form(), f"{keyword} in exec form, so SIGTERM reaches naftiko"


def image_env() -> dict[str, str]:
    """The ENV of the final stage (`KEY=VALUE` pairs, as this Dockerfile writes them)."""
    every = read_dockerfile(DOCKERFILE.read_text())
    final = max(i.stage for i in every)
    pairs = [p for i in every if i.stage == final and i.keyword == "ENV" for p in shlex.split(i.value)]
    assert all("=" in p for p in pairs)
    return dict(p.split("=", 1) for p in pairs)


def image_command() -> list[str]:
    command = instructions_of("CMD")[-1].exec_form()
    assert command is not None
    return command


def test_the_image_command_serves_the_copied_folder_on_every_interface() -> None:
    parsed = cli_parser().parse_args(image_command())
    copied = [i for i in instructions_of("COPY") if "from" not in options(i.value)[0]]
    destinations = {shlex.split(options(i.value)[1])[-1].rstrip("/") for i in copied}
    assert parsed.command == "serve" and parsed.host == "0.0.0.0"
    assert [p.rstrip("/") for p in parsed.paths] == ["/capabilities"] and "/capabilities" in destinations
    # The control port comes from NAFTIKO_CONTROL_PORT alone, the variable the HEALTHCHECK reads.
    assert parsed.control_port is None and image_env()["NAFTIKO_CONTROL_PORT"].isdigit()


def healthcheck() -> list[str]:
    (check,) = instructions_of("HEALTHCHECK")
    _, rest = options(check.value)
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    parsed = json.loads(command)
    assert isinstance(parsed, list), "HEALTHCHECK CMD in exec form"
    assert parsed[:2] == ["python", "-c"] and "/health/live" in parsed[2] and "NAFTIKO_CONTROL_PORT" in parsed[2]
    return parsed


def run_healthcheck(control_port: int) -> int:
    """The image's HEALTHCHECK command, with this interpreter, against a control port."""
    env = {**os.environ, "NAFTIKO_CONTROL_PORT": str(control_port)}
    done = subprocess.run([sys.executable, *healthcheck()[1:]], env=env, capture_output=True, timeout=10)
    return done.returncode


def test_exposed_ports_cover_the_copied_capabilities_and_the_control_port() -> None:
    exposed = {int(p.split("/")[0]) for i in instructions_of("EXPOSE") for p in i.value.split()}
    ports = {e.port for c in load_capabilities([ROOT / "capabilities"]) for e in c.exposes if e.port}
    assert ports | {int(image_env()["NAFTIKO_CONTROL_PORT"])} == exposed


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """Dockerfile.dockerignore as rules, in order: (excluded?, pattern); the last rule that matches decides."""
    rules = []
    for raw in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((not negated, re.compile(regex)))
    return rules


def sent_to_docker(path: str) -> bool:
    """Whether a path of the repository goes into the build context: a rule matching the path or a
    folder above it applies, as in Docker."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for excludes, pattern in dockerignore():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            excluded = excludes
    return not excluded


def test_the_build_context_is_what_the_image_is_built_from() -> None:
    assert sent_to_docker("engine/spec/model.py") and sent_to_docker("pyproject.toml")
    assert not sent_to_docker(".venv/bin/python") and not sent_to_docker("tests/support.py")
    assert not sent_to_docker("engine/__pycache__/errors.cpython-312.pyc")
    for copy_ in instructions_of("COPY"):
        flags, rest = options(copy_.value)
        if "from" in flags:
            continue
        *sources, _ = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile:{copy_.line}: COPY {source}: not in the repository"
            assert sent_to_docker(source), f"Dockerfile:{copy_.line}: COPY {source}: left out by the .dockerignore"


def replay_copies(stage: int, into: Path) -> None:
    """A stage's COPY lines (those from the build context) into a folder, as Docker copies: a folder's
    contents into the destination, a file into it."""
    for copy_ in instructions_of("COPY"):
        flags, rest = options(copy_.value)
        if copy_.stage != stage or "from" in flags:
            continue
        *sources, destination = shlex.split(rest)
        where = into / destination.lstrip("/")
        for name in sources:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, where, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            elif destination.endswith("/"):
                where.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, where / Path(name).name)
            else:
                shutil.copy(ROOT / name, where)


def pip(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's file system, as far as naftiko goes: the builder's COPY lines replayed into an empty
    folder and `pip wheel .` run there, the wheel installed on its own (the other dependencies are this
    environment's), and the final stage's COPY lines replayed beside it. Returns that root."""
    root = tmp_path_factory.mktemp("image")
    source, wheels = root / "src", root / "wheels"
    replay_copies(0, source)
    pip("wheel", "--no-deps", "-w", str(wheels), ".", cwd=source)
    pip("install", "--no-deps", "--target", str(root / "site"), *map(str, wheels.glob("*.whl")), cwd=root)
    replay_copies(max(i.stage for i in read_dockerfile(DOCKERFILE.read_text())), root)
    return root


def test_the_builder_stage_has_all_the_wheel_needs(image: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert [w.name.split("-")[1] for w in (image / "wheels").glob("naftiko-*.whl")] == [version]
    assert sorted(p.name for p in (image / "capabilities").iterdir()) == sorted(
        p.name for p in (ROOT / "capabilities").iterdir()
    )


def test_the_image_command_serves_and_its_healthcheck_follows_the_control_port(
    image: Path, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    """CMD and ENV as the image runs them, with naftiko from the wheel the builder made (not this source
    tree) and the copied folder (its ports moved to free ones, since other tests run at once): healthy once
    it serves, and the HEALTHCHECK finds the port NAFTIKO_CONTROL_PORT names."""
    control = free_port()
    capabilities = load_capabilities([image / "capabilities"])
    env = {
        **os.environ,
        **image_env(),
        "PYTHONPATH": str(image / "site"),
        "NAFTIKO_CONTROL_PORT": str(control),
        "POSTHOG_API_KEY": "phx_image_key",
    }
    for capability in capabilities:
        for consumes in capability.consumes:
            env["NAFTIKO_BASE_URI_" + consumes.namespace.upper().replace("-", "_")] = upstream.url
    served = [e.namespace for c in capabilities for e in c.exposes]
    command = [str(image / "capabilities") if a == "/capabilities" else a for a in image_command()]
    where = subprocess.run(
        [sys.executable, "-c", "import naftiko; print(naftiko.__file__)"],
        cwd=image / "capabilities",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert where.stdout.strip() == str(image / "site" / "naftiko" / "__init__.py")
    process = subprocess.Popen(
        [sys.executable, "-m", "naftiko", *command, *(f"--port={ns}={free_port()}" for ns in served)],
        cwd=image / "capabilities",  # the image's WORKDIR
        env=env,
        stderr=(log := (tmp_path / "stderr").open("w")),
    )
    try:
        deadline = time.monotonic() + 15
        while run_healthcheck(control) != 0:
            assert process.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline, "no healthy control port in 15 s"
            time.sleep(0.1)
        ready = kubelet_get(control, "/health/ready").json()
        assert ready["status"] == "UP" and {a["namespace"] for a in ready["adapters"]} >= set(served)
        assert run_healthcheck(free_port()) == 1  # nothing listens there: unhealthy, not a crash of the check
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # what `docker stop` sends to PID 1
        process.wait(timeout=10)
        log.close()
    assert process.returncode == 0, (tmp_path / "stderr").read_text()


def wait_ready(port: int, process: NaftikoProcess) -> int:
    """Poll /health/ready as a readiness probe does, until it answers 200 (at most 10 s)."""
    deadline = time.monotonic() + 10
    while (status := kubelet_get(port, "/health/ready").status_code) != 200:
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)
    return status


# --- the Deployment's container, run as the kubelet runs it ----------------------------------------------


def pod_environment(upstream: str) -> dict[str, str]:
    """The container's env as the kubelet builds it: the image's ENV, then the Deployment's values, the
    downward API and the Secret's keys."""
    env = {**image_env(), "POD_NAMESPACE": "default"}
    for entry in container()["env"]:
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = f"test-secret-{entry['valueFrom']['secretKeyRef']['key'].lower()}"
        elif entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
            env[entry["name"]] = "default"
    for name in env:
        if name.startswith("NAFTIKO_BASE_URI_"):
            env[name] = upstream  # the upstream of the manifest is a placeholder address
    return env


def kubelet_get(port: int, path: str, address: str = "127.0.0.1") -> httpx.Response:
    """An httpGet probe: the kubelet sends the pod's IP and port as Host."""
    return httpx.get(f"http://{address}:{port}{path}", headers={"Host": f"10.244.0.7:{port}"}, timeout=5)


@dataclass
class Pod:
    """One replica of the Deployment, as a process: the container's args (`$(VAR)` expanded, the ConfigMap's
    mount path pointing at `folder`, every port moved to a free one) and env, with the Secret's values given."""

    process: NaftikoProcess
    env: dict[str, str]
    ports: dict[str, int]  # by the container port's name
    namespaces: dict[str, str]  # container port name -> the exposes namespace listening there

    @classmethod
    def start(cls, folder: Path, upstream: str, secrets: dict[str, str] | None = None) -> Pod:
        env = pod_environment(upstream)
        env.update(secrets or {})
        args = [expand(a, env) for a in container()["args"]]
        assert args[0] == "serve"
        mount = next(m["mountPath"] for m in container()["volumeMounts"] if m["name"] == "capabilities")
        ports = {p["name"]: free_port() for p in container()["ports"]}
        by_port = {e.port: e.namespace for c in load_capabilities([folder]) for e in c.exposes}
        namespaces = {p["name"]: by_port[p["containerPort"]] for p in container()["ports"] if p["name"] != "control"}
        moved = [a.replace(mount, str(folder)) for a in args[1:]]
        moved = [re.sub(r"^--control-port=\d+$", f"--control-port={ports['control']}", a) for a in moved]
        overrides = [f"--port={namespace}={ports[name]}" for name, namespace in namespaces.items()]
        process = NaftikoProcess([*moved, *overrides], env=env)
        try:
            process.wait_for(*namespaces.values())
            wait_ready(ports["control"], process)
        except BaseException:
            process.stop()
            raise
        return cls(process, env, ports, namespaces)


def test_the_pod_serves_probes_and_calls_as_written(tmp_path: Path, upstream: RecordingUpstream) -> None:
    pod = Pod.start(configmap_folder(tmp_path), upstream.url)
    process, env, ports = pod.process, pod.env, pod.ports
    try:
        control = ports["control"]
        annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == container_port("control")
        # Bound to every interface, as --host=0.0.0.0 says: 127.0.0.2 reaches it (a 127.0.0.1 bind would refuse).
        live = kubelet_get(control, "/health/live", address="127.0.0.2")
        assert live.status_code == 200 and live.json() == {"status": "UP"}
        ready = kubelet_get(control, "/health/ready")
        assert ready.json()["status"] == "UP"
        adapters = {a["namespace"]: a["port"] for a in ready.json()["adapters"] if a["type"] != "control"}
        assert adapters == {namespace: ports[name] for name, namespace in pod.namespaces.items()}

        # The image's HEALTHCHECK command, pointed at this port, says healthy.
        assert run_healthcheck(control) == 0

        # A call through the Service's name reaches the upstream with the token from the Secret.
        upstream.reply("GET", "/tickets", Reply(json=[{"id": "T-1", "title": "Printer on fire"}]))
        rest = httpx.get(
            f"http://127.0.0.1:{ports['rest']}/v1/tickets",
            params={"status": "open"},
            headers={"Host": "naftiko.default.svc.cluster.local:8080"},
        )
        assert rest.status_code == 200 and rest.json() == [{"id": "T-1", "title": "Printer on fire"}]
        assert upstream.last.headers["authorization"] == f"Bearer {env['TICKETS_API_TOKEN']}"
        assert upstream.last.query == "status=open"

        # MCP answers the Host names of the Service and refuses others (DNS-rebinding protection).
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get-ticket", "arguments": {"id": "T-1"}},
        }
        upstream.reply("GET", "/tickets/T-1", Reply(json={"id": "T-1", "title": "Printer on fire"}))
        mcp = f"http://127.0.0.1:{ports['mcp']}/mcp"
        accept = {"Accept": "application/json, text/event-stream"}
        for host in ("naftiko:8081", "naftiko.default", "naftiko.default.svc:8081", "localhost:8081"):
            answer = httpx.post(mcp, json=call, headers={**accept, "Host": host})
            assert answer.status_code == 200, host
            assert answer.json()["result"]["structuredContent"] == {"id": "T-1", "title": "Printer on fire"}
        assert httpx.post(mcp, json=call, headers={**accept, "Host": "naftiko.other.svc"}).status_code == 421

        # What a Prometheus that discovers pods by their annotations scrapes.
        scraped = kubelet_get(control, annotations["prometheus.io/path"])
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        samples = [s for family in text_string_to_metric_families(scraped.text) for s in family.samples]
        calls = {
            (s.labels["naftiko_namespace"], s.labels["naftiko_operation_id"]): s.value
            for s in samples
            if s.name == "naftiko_request_total"
        }
        assert calls == {("tickets-rest", "GET /v1/tickets"): 1, ("tickets-mcp", "get-ticket"): 4}
        upstream_calls = sum(s.value for s in samples if s.name == "naftiko_http_client_total")
        assert upstream_calls == len(upstream.requests) == 5

        # SIGTERM, as the kubelet sends it after preStop: a clean exit well within the grace period.
        spec = one("Deployment")["spec"]["template"]["spec"]
        started = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=spec["terminationGracePeriodSeconds"]) == 0
        assert time.monotonic() - started < 5
        # Nothing answers now, and the HEALTHCHECK command says so.
        assert run_healthcheck(control) == 1
    finally:
        process.stop()


LEGACY = "2025-06-18"  # a handshake-era protocol version: its session id must survive a change of replica


def mcp_post(pod: Pod, message: dict[str, Any], session: str | None = None) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", "Host": "naftiko.default.svc:8081"}
    if session is not None:
        headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY}
    return httpx.post(f"http://127.0.0.1:{pod.ports['mcp']}/mcp", json=message, headers=headers, timeout=10)


def open_session(pod: Pod) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    answer = mcp_post(pod, init)
    assert answer.status_code == 200 and answer.json()["result"]["protocolVersion"] == LEGACY
    session = answer.headers["mcp-session-id"]
    assert mcp_post(pod, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session).status_code == 202
    return session


def test_replicas_sharing_the_secret_accept_each_others_sessions(tmp_path: Path, upstream: RecordingUpstream) -> None:
    """Two replicas of the Deployment, as the Service balances calls over them: a session opened on one is
    served by the other when both read one NAFTIKO_SESSION_SECRET from the Secret, and not otherwise."""
    folder = configmap_folder(tmp_path)
    shared = {"NAFTIKO_SESSION_SECRET": "one secret of the naftiko-secrets Secret, 32+ bytes"}
    other = {"NAFTIKO_SESSION_SECRET": "the secret of another Deployment, 32+ bytes long"}
    pods = [Pod.start(folder, upstream.url, shared), Pod.start(folder, upstream.url, shared)]
    stranger = Pod.start(folder, upstream.url, other)
    try:
        upstream.reply("GET", "/tickets/T-2", Reply(json={"id": "T-2", "title": "Door stuck"}))
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get-ticket", "arguments": {"id": "T-2"}},
        }
        session = open_session(pods[0])
        for turn in range(4):  # alternating, as a round-robin balancer sends them
            answer = mcp_post(pods[turn % 2], {**call, "id": turn + 1}, session)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["structuredContent"] == {"id": "T-2", "title": "Door stuck"}
        assert mcp_post(stranger, call, session).status_code == 404  # signed with another key: unknown there
    finally:
        for pod in (*pods, stranger):
            pod.process.stop()


def test_a_configmap_edit_is_served_without_a_restart(tmp_path: Path, upstream: RecordingUpstream) -> None:
    """`--reload` in the pod: an edit of the ConfigMap, written as the kubelet writes it, is served by the
    same process; a broken edit is logged with its position and the last good files keep serving."""
    assert "--reload" in container()["args"]
    folder = configmap_folder(tmp_path)
    pod = Pod.start(folder, upstream.url)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

    def tools() -> list[str]:
        return [tool["name"] for tool in mcp_post(pod, listing).json()["result"]["tools"]]

    def eventually(check: Any, what: str) -> None:
        deadline = time.monotonic() + 15
        while not check():
            assert time.monotonic() < deadline, f"{what}:\n" + "\n".join(pod.process.log)
            time.sleep(0.1)

    try:
        ((key, text),) = one("ConfigMap")["data"].items()
        assert "list-all-tickets" not in tools()
        added = "    tools:\n        - name: list-all-tickets\n          description: Every ticket.\n"
        edited = text.replace("    tools:\n", added + "          call: tickets.list-tickets\n", 1)
        assert edited != text
        kubelet_update(folder, {key: edited})
        eventually(lambda: "list-all-tickets" in tools(), "the edited file is not served")
        assert pod.process.proc.poll() is None  # the same process, not a restart

        kubelet_update(folder, {key: edited.replace("call: tickets.get-ticket", "call: tickets.nope", 1)})
        position = re.compile(rf"{re.escape(key)}:\d+:\d+: .*tickets\.nope")
        eventually(lambda: any(position.search(line) for line in pod.process.log), "no positioned error logged")
        assert "list-all-tickets" in tools() and kubelet_get(pod.ports["control"], "/health/ready").status_code == 200
    finally:
        pod.process.stop()


def test_a_pod_with_a_broken_capability_file_never_gets_ready(tmp_path: Path) -> None:
    """A bad ConfigMap edit: the container exits with the file's position, so the rollout stops there."""
    folder = configmap_folder(tmp_path)
    (key,) = one("ConfigMap")["data"]
    stamped = folder / "..data"
    (stamped / key).write_text((stamped / key).read_text().replace("call: tickets.get-ticket", "call: tickets.nope", 1))
    env = {**os.environ, **pod_environment("http://127.0.0.1:9")}
    args = [a.replace("/capabilities", str(folder)) for a in (expand(a, env) for a in container()["args"])]
    done = subprocess.run(
        [sys.executable, "-m", "naftiko", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert re.search(rf"{re.escape(key)}:\d+:\d+: .*tickets\.nope", done.stderr), done.stderr
