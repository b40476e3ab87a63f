"""deploy/: the Kubernetes manifests and compose.yaml against their schemas and against the CLI, and
what can be checked of the Dockerfile without building it (no container engine runs here).

Every flag a container passes must parse with the real `artifact-gateway` parser, every
ARTIFACT_GATEWAY_* / MLFLOW_* variable must be a setting, and the settings each container ends up
with must load and mean the mode it is meant to run in.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.app import create_app, default_artifact_root
from gateway.cli import build_parser
from gateway.http.access import ROUTE_ACCESS_KEY, Access
from gateway.http.meta_api import mode_name
from gateway.server import open_destination
from gateway.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from tests.conftest import s3_client
from tests.gateway_process import RunningGateway
from tests.storage_servers import S3Server, free_ports

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate bundles
IMAGE = "artifact-gateway"
# Variables a container may set that are not the gateway's settings: the storage SDKs' own.
FOREIGN_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


# -- the CLI and the settings, as a deployment sees them ---------------------------------------------


def setting_variables() -> set[str]:
    names = {f"{ENV_PREFIX}CONFIG"}
    for field in Settings.model_fields.values():
        names |= {str(alias) for alias in field.validation_alias.choices}  # type: ignore[union-attr]
    return names


def subcommand_flags(command: str) -> set[str]:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    parser = subparsers.choices[command]  # type: ignore[index]
    return {option for action in parser._actions for option in action.option_strings}


def check_command_line(args: list[str]) -> dict[str, Any]:
    """`args` after the image's `artifact-gateway` entrypoint: known subcommand and flags, parsed."""
    flags = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
    assert args and args[0] in {"serve", "migrate"}, f"{args}: not a command the image should run"
    assert flags <= subcommand_flags(args[0]), f"unknown flags {flags - subcommand_flags(args[0])}"
    return vars(build_parser().parse_args(args))


def check_variables(env: dict[str, str]) -> None:
    ours = {name for name in env if name.startswith((ENV_PREFIX, "MLFLOW_"))}
    assert ours <= setting_variables(), f"not settings: {ours - setting_variables()}"
    assert set(env) - ours <= FOREIGN_ENV, f"unexpected variables {set(env) - ours - FOREIGN_ENV}"


def effective_settings(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings `artifact-gateway <args>` would run with in a container whose environment is `env`."""
    parsed = check_command_line(args)
    check_variables(env)
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith((ENV_PREFIX, "MLFLOW_")):
                patch.delenv(name)
        for name, value in {**image_env(), **env}.items():  # the container's variables beat the image's
            patch.setenv(name, value)
        command = parsed.pop("command")
        parsed.pop("config", None)
        overrides = parsed if command == "serve" else {"backend_store_uri": parsed["backend_store_uri"]}
        try:
            return load_settings(overrides)
        except SettingsError as exc:
            raise AssertionError(f"artifact-gateway {shlex.join(args)} would not start: {exc}") from None


def public_routes(settings: Settings, tmp_path: Path) -> set[str]:
    """GET paths served without a credential in this mode (the storage swapped for a local directory)."""
    local = settings.model_copy(update={"artifacts_destination": str(tmp_path / "routes")})
    app = create_app(local, open_destination(local), b"k" * 32)
    return {
        route.resource.canonical
        for route, access in app[ROUTE_ACCESS_KEY].items()
        if route.method == "GET" and access is Access.PUBLIC and route.resource is not None
    }


# -- Kubernetes -------------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


def manifests() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    return doc


def workloads() -> list[dict[str, Any]]:
    return of_kind("Deployment") + of_kind("Job")


def gateway_containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return [c for c in containers if c["image"].split(":")[0].rsplit("/", 1)[-1] == IMAGE]


def secret_values() -> dict[tuple[str, str], str]:
    return {
        (secret["metadata"]["name"], key): value
        for secret in of_kind("Secret")
        for key, value in {**secret.get("stringData", {}), **secret.get("data", {})}.items()
    }


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's variables, those from the Secret with the Secret's (placeholder) values."""
    secrets = secret_values()
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["secretRef"]["name"]
        env |= {key: value for (secret, key), value in secrets.items() if secret == name}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def container_command(container: dict[str, Any]) -> list[str]:
    """The arguments after the image's entrypoint (which a container must not replace)."""
    assert "command" not in container, "keep the image's artifact-gateway entrypoint"
    return list(container.get("args", dockerfile_instruction("CMD")))


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def deployment_for(selector: dict[str, str]) -> dict[str, Any]:
    (deployment,) = [d for d in of_kind("Deployment") if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
    return deployment


def tier(settings: Settings) -> str:
    return mode_name(settings)


def test_every_manifest_passes_the_kubernetes_schema() -> None:
    checked = 0
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc}") from None
            checked += 1
    kinds = {doc["kind"] for doc in manifests()}
    assert {
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "Job",
    } <= kinds
    assert checked == len(manifests())


def test_kustomization_applies_every_manifest_with_one_image() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [path.name for path in manifest_files()]
    (image,) = kustomization["images"]
    assert image["name"] == IMAGE
    for workload in workloads():
        assert [c["image"] for c in gateway_containers(workload)] == [IMAGE], workload["metadata"]["name"]


def test_both_tiers_run_with_valid_flags_settings_and_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiers: dict[str, Settings] = {}
    for deployment in of_kind("Deployment"):
        (container,) = gateway_containers(deployment)
        args = container_command(container)
        assert args[0] == "serve"
        settings = effective_settings(args, container_env(container), monkeypatch)
        tiers[tier(settings)] = settings
        if not settings.artifacts_only:
            default_artifact_root(settings)  # no-proxy needs one, and it must be usable
        assert settings.backend_store_uri.startswith("postgresql://"), "replicas share one PostgreSQL"
        assert settings.host == "0.0.0.0", "reachable from the Service"
        assert [port["containerPort"] for port in container["ports"]] == [settings.port]
        routes = public_routes(settings, tmp_path)
        probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["path"] == "/health"
        assert probes["startupProbe"]["path"] == "/health"
        assert probes["readinessProbe"]["path"] == "/health/ready"
        for probe in probes.values():
            assert probe["path"] in routes, f"{probe['path']} is not a public route in {tier(settings)} mode"
            assert probe["port"] in {port["name"] for port in container["ports"]}
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], "the HPA scales on requests"
        assert resources["limits"]["memory"]
    assert set(tiers) == {"no-proxy", "artifacts-only"}
    artifacts, tracking = tiers["artifacts-only"], tiers["no-proxy"]
    assert tracking.default_artifact_root is not None
    assert tracking.default_artifact_root.startswith("mlflow-artifacts://"), "clients reach the artifacts tier"
    assert artifacts.artifacts_destination.startswith(("s3://", "wasbs://")), "replicas share one bucket"
    assert artifacts.signing_key, "replicas must share the part URL signing key"
    assert artifacts.public_url is not None and artifacts.public_url.startswith("https://")


def test_every_artifact_replica_gets_the_same_signing_key_from_the_secret() -> None:
    sources = set()
    for deployment in of_kind("Deployment"):
        (container,) = gateway_containers(deployment)
        if "--artifacts-only" not in container_command(container):
            continue
        (item,) = [item for item in container["env"] if item["name"] == "ARTIFACT_GATEWAY_SIGNING_KEY"]
        ref = item["valueFrom"]["secretKeyRef"]
        sources.add((ref["name"], ref["key"]))
    assert len(sources) == 1


def test_secret_references_resolve_to_the_secret_in_the_manifests() -> None:
    secrets = secret_values()
    assert secrets, "a Secret holds the database and storage credentials"
    for workload in workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for item in container.get("env", []):
                if "valueFrom" in item:
                    ref = item["valueFrom"]["secretKeyRef"]
                    assert (ref["name"], ref["key"]) in secrets, f"{workload['metadata']['name']}: {ref}"
            for source in container.get("envFrom", []):
                assert any(name == source["secretRef"]["name"] for name, _ in secrets)
    keys = {key for _, key in secrets}
    assert {"backend-store-uri", "signing-key", "aws-access-key-id", "aws-secret-access-key"} <= keys
    # No credential is written into a manifest outside the Secret.
    for workload in workloads():
        for container in gateway_containers(workload):
            literal = {item["name"] for item in container.get("env", []) if "value" in item}
            assert not literal & {
                "ARTIFACT_GATEWAY_BACKEND_STORE_URI",
                "ARTIFACT_GATEWAY_SIGNING_KEY",
                "AWS_SECRET_ACCESS_KEY",
            }


def test_a_job_runs_the_migrations_once(monkeypatch: pytest.MonkeyPatch) -> None:
    (job,) = of_kind("Job")
    (container,) = gateway_containers(job)
    assert container_command(container) == ["migrate"]
    settings = effective_settings(["migrate"], container_env(container), monkeypatch)
    (deployment_store,) = {
        effective_settings(container_command(c), container_env(c), monkeypatch).backend_store_uri
        for d in of_kind("Deployment")
        for c in gateway_containers(d)
    }
    assert settings.backend_store_uri == deployment_store, "the Job migrates the database the tiers use"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"]["backoffLimit"] >= 1


def test_services_ingress_pdb_and_hpa_fit_the_deployments() -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for service in services.values():
        deployment = deployment_for(service["spec"]["selector"])
        (container,) = gateway_containers(deployment)
        port_names = {port["name"] for port in container["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert {deployment_for(s["spec"]["selector"])["metadata"]["name"] for s in services.values()} == set(deployments)
    for deployment in deployments.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches(deployment["spec"]["selector"]["matchLabels"], labels)
        (pdb,) = [p for p in of_kind("PodDisruptionBudget") if matches(p["spec"]["selector"]["matchLabels"], labels)]
        (hpa,) = [
            h
            for h in of_kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        ]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert hpa["spec"]["minReplicas"] >= 2, "several replicas of each tier"
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        # The HPA owns the replica count (a replicas field would reset it on every apply).
        assert "replicas" not in deployment["spec"]
        budget = pdb["spec"]
        assert budget.get("maxUnavailable", 0) >= 1 or budget["minAvailable"] < hpa["spec"]["minReplicas"]
        spec = deployment["spec"]["template"]["spec"]
        (container,) = gateway_containers(deployment)
        grace = spec["terminationGracePeriodSeconds"]
        drain = next(
            float(item["value"])
            for item in container["env"]
            if item["name"] == "ARTIFACT_GATEWAY_SHUTDOWN_TIMEOUT_SECONDS"
        )
        assert grace > drain + 5, "Kubernetes must not kill a pod still draining its requests"
    (ingress,) = of_kind("Ingress")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] in services
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


def test_ingress_lets_multi_gib_uploads_stream_through() -> None:
    (ingress,) = of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"  # no size limit
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"  # no spooling to disk
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 600


def test_ingress_hosts_are_the_addresses_the_tiers_hand_out(monkeypatch: pytest.MonkeyPatch) -> None:
    (ingress,) = of_kind("Ingress")
    host_of = {
        rule["host"]: deployment_for(
            named("Service", rule["http"]["paths"][0]["backend"]["service"]["name"])["spec"]["selector"]
        )
        for rule in ingress["spec"]["rules"]
    }
    settings_of = {}
    for host, deployment in host_of.items():
        (container,) = gateway_containers(deployment)
        settings_of[host] = effective_settings(container_command(container), container_env(container), monkeypatch)
    (artifacts_host,) = [host for host, s in settings_of.items() if s.artifacts_only]
    (tracking,) = [s for s in settings_of.values() if not s.serve_artifacts]
    assert tracking.default_artifact_root == f"mlflow-artifacts://{artifacts_host}/"
    assert settings_of[artifacts_host].public_url == f"https://{artifacts_host}"
    tls_hosts = {host for entry in ingress["spec"]["tls"] for host in entry["hosts"]}
    assert set(host_of) <= tls_hosts


def test_every_tier_allows_the_host_names_its_clients_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Host a tier does not allow is refused (DNS rebinding defence): the Ingress host and the
    Service's in-cluster names must be allowed, other names not."""
    from gateway.http.hosts import AllowedHosts

    (ingress,) = of_kind("Ingress")
    for rule in ingress["spec"]["rules"]:
        service = rule["http"]["paths"][0]["backend"]["service"]["name"]
        (container,) = gateway_containers(deployment_for(named("Service", service)["spec"]["selector"]))
        settings = effective_settings(container_command(container), container_env(container), monkeypatch)
        allowed = AllowedHosts(settings.allowed_hosts, settings.public_url)
        namespace = "mlflow"
        for host in (
            rule["host"],
            f"{rule['host']}:443",
            service,
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local:80",
            "10.244.1.7:5000",
        ):
            assert allowed.allows(host), (service, host)
        for host in ("attacker.example", f"{service}.attacker.example", f"{rule['host']}.attacker.example"):
            assert not allowed.allows(host), (service, host)


def test_pods_run_as_the_images_unprivileged_user() -> None:
    uid = int(dockerfile_instruction("USER")[0].split(":")[0])
    for workload in workloads():
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid
        assert spec["automountServiceAccountToken"] is False
        for container in gateway_containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            if context["readOnlyRootFilesystem"] and workload["kind"] == "Deployment":
                mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
                volumes = {volume["name"]: volume for volume in spec["volumes"]}
                assert "emptyDir" in volumes[mounts["/tmp"]], "the metrics directory needs a writable /tmp"


# -- compose.yaml -----------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}`, from `values`."""

    def one(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"] or ""
        if name in values:
            return values[name]
        assert "?" not in op, f"${{{name}}} is required"
        return match["arg"] if "-" in op else ""

    return INTERPOLATION.sub(one, text)


def compose(values: dict[str, str] | None = None) -> dict[str, Any]:
    defaults = {
        "POSTGRES_PASSWORD": "pg-secret",
        "S3_SECRET_KEY": "s3-secret",
        "ARTIFACT_GATEWAY_SIGNING_KEY": "k" * 64,
    }
    document: dict[str, Any] = yaml.safe_load(
        interpolate((DEPLOY / "compose.yaml").read_text(), {**defaults, **(values or {})})
    )
    return document


def gateway_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in document["services"].items()
        if service.get("image", "").split(":")[0] == IMAGE and "entrypoint" not in service
    }


def test_compose_passes_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_requires_the_secrets_to_be_set() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for name in ("POSTGRES_PASSWORD", "S3_SECRET_KEY", "ARTIFACT_GATEWAY_SIGNING_KEY"):
        with pytest.raises(AssertionError, match="is required"):
            interpolate(
                text,
                {
                    key: "x"
                    for key in ("POSTGRES_PASSWORD", "S3_SECRET_KEY", "ARTIFACT_GATEWAY_SIGNING_KEY")
                    if key != name
                },
            )


def test_compose_services_run_valid_commands_in_the_intended_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    document = compose()
    services = gateway_services(document)
    modes = {}
    for name, service in services.items():
        args = service.get("command", dockerfile_instruction("CMD"))
        env = {key: str(value) for key, value in service.get("environment", {}).items()}
        settings = effective_settings(args, env, monkeypatch)
        if args[0] == "migrate":
            modes[name] = "migrate"
            continue
        modes[name] = tier(settings)
        if not settings.artifacts_only:
            default_artifact_root(settings)
        uses_db = not settings.artifacts_only or settings.auth
        depends = service.get("depends_on", {})
        if uses_db:
            assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
            assert settings.backend_store_uri.startswith("postgresql://"), name
        if settings.serve_artifacts:
            assert depends["bucket"] == {"condition": "service_completed_successfully"}, name
            assert settings.artifacts_destination.startswith("s3://"), name
            assert settings.signing_key == "k" * 64, f"{name}: every artifact server shares the signing key"
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), "without --auth, publish on the loopback only"
            assert published.endswith(f":{settings.port}")
    assert sorted(modes.values()) == ["artifacts-only", "migrate", "no-proxy", "proxied"]
    assert {name: tuple(s.get("profiles", ())) for name, s in services.items() if modes[name] != "migrate"} == {
        "gateway": ("proxied",),
        "artifacts": ("split",),
        "tracking": ("split",),
    }
    # The split's tracking tier sends clients to the artifacts tier where compose publishes it.
    tracking = compose({"ARTIFACTS_HOST": "gw.example:5001"})["services"]["tracking"]["environment"]
    assert tracking["ARTIFACT_GATEWAY_DEFAULT_ARTIFACT_ROOT"] == "mlflow-artifacts://gw.example:5001/"
    published = document["services"]["artifacts"]["ports"][0].rsplit(":", 2)[1]
    assert compose()["services"]["tracking"]["environment"]["ARTIFACT_GATEWAY_DEFAULT_ARTIFACT_ROOT"] == (
        f"mlflow-artifacts://localhost:{published}/"
    )
    # ... and the artifacts tier accepts that name as the Host of their requests.
    from gateway.http.hosts import AllowedHosts

    for hosts, artifacts_host in (
        (None, f"localhost:{published}"),
        ({"ARTIFACTS_HOST": "gw.example:5001"}, "gw.example:5001"),
    ):
        artifacts_env = compose(hosts)["services"]["artifacts"]["environment"]
        assert AllowedHosts(artifacts_env["ARTIFACT_GATEWAY_ALLOWED_HOSTS"]).allows(artifacts_host)


def test_compose_storage_credentials_agree() -> None:
    document = compose()
    identities = json.loads(document["configs"]["s3-identities"]["content"])["identities"]
    (credential,) = [c for identity in identities for c in identity["credentials"]]
    for name, service in gateway_services(document).items():
        env = service["environment"]
        if "ARTIFACT_GATEWAY_ARTIFACTS_DESTINATION" in env:
            assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
                credential["accessKey"],
                credential["secretKey"],
            ), name
    postgres = document["services"]["postgres"]["environment"]
    uri = document["services"]["migrate"]["environment"]["ARTIFACT_GATEWAY_BACKEND_STORE_URI"]
    assert (
        uri
        == f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
    )


def test_compose_bucket_service_creates_the_bucket_once(s3_server: S3Server) -> None:
    """Run the one-shot `bucket` service's program against the test suite's S3 server, twice."""
    service = compose()["services"]["bucket"]
    bucket = f"compose-{uuid.uuid4().hex[:12]}"
    env = {
        **service["environment"],
        "ARTIFACT_GATEWAY_ARTIFACTS_DESTINATION": f"s3://{bucket}/artifacts",
        "ARTIFACT_GATEWAY_S3_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    argv = [sys.executable if part == "python" else part for part in service["entrypoint"]] + service["command"]
    client = s3_client(s3_server)
    try:
        for _ in range(2):  # a second `up` finds the bucket there
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            assert f"bucket {bucket} is ready" in result.stdout
        client.head_bucket(Bucket=bucket)
    finally:
        client.delete_bucket(Bucket=bucket)


# -- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def image_env() -> dict[str, str]:
    """The ENV of the final stage."""
    return dict(item.split("=", 1) for item in dockerfile_instruction("ENV"))


def dockerfile_instruction(name: str, stage: int = -1) -> list[str]:
    """The last `name` instruction of a stage, in exec form (a JSON array) or split like a shell."""
    (*_, arguments) = [args for instruction, args in dockerfile_stages()[stage] if instruction == name]
    if arguments.startswith("["):
        return list(json.loads(arguments))
    return shlex.split(arguments)


def test_dockerfile_base_is_pinned_and_the_final_stage_builds_nothing() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build in one stage, copy the result into the final one"
    pinned = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")
    bases = [stage[0][1].split()[0] for stage in stages]
    for base in bases:
        assert pinned.match(base), f"{base}: pin an exact Python release (and ideally a digest)"
    assert len(set(bases)) == 1, "the venv is built against the interpreter it runs on"
    builder = stages[0]
    assert stages[0][0][1].split()[-1] == "builder"
    builder_runs = " ".join(args for instruction, args in builder if instruction == "RUN")
    assert "requirements/runtime.txt" in builder_runs, "install the pinned runtime dependencies"
    assert "--only-binary=:all:" in builder_runs, "wheels only: no compiler needed anywhere"
    final = stages[-1]
    runs = " ".join(args for instruction, args in final if instruction == "RUN")
    for tool in ("apt-get", "apt ", "apk ", "pip ", "pip3", "gcc", "cc ", "make", "build-essential", "curl", "wget"):
        assert tool not in runs, f"the final stage runs {tool.strip()}"
    copies = [args for instruction, args in final if instruction == "COPY"]
    assert copies and all(copy.startswith("--from=builder ") for copy in copies), "the final stage only copies"


def test_dockerfile_runs_the_cli_as_a_numeric_non_root_user() -> None:
    (user,) = dockerfile_instruction("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric UID lets Kubernetes check runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    final_runs = " ".join(args for instruction, args in dockerfile_stages()[-1] if instruction == "RUN")
    assert f"--uid {uid}" in final_runs and f"--gid {gid}" in final_runs
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert dockerfile_instruction("ENTRYPOINT") == [IMAGE] and IMAGE in scripts
    assert scripts[IMAGE] == "gateway.cli:main"
    assert check_command_line(dockerfile_instruction("CMD"))["command"] == "serve"
    (exposed,) = dockerfile_instruction("EXPOSE")
    assert int(exposed) == Settings().port
    env = image_env()
    assert env["ARTIFACT_GATEWAY_HOST"] == "0.0.0.0", "listen beyond the container; still overridable"
    check_variables({name: value for name, value in env.items() if name.startswith(ENV_PREFIX)})


def dockerignore_pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` within a path segment, `**/` any directories."""
    pieces = []
    for segment in glob.strip("/").split("/"):
        if segment == "**":
            pieces.append("(?:[^/]+/)*")
            continue
        pieces.append("".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment) + "/")
    return re.compile("".join(pieces)[:-1])


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides; `!` re-includes."""
    allowed = True
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        regex = dockerignore_pattern(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            allowed = pattern.startswith("!")
    return allowed


def test_dockerfile_copies_files_that_exist_and_pass_the_dockerignore() -> None:
    sources = []
    for stage in dockerfile_stages():
        for instruction, arguments in stage:
            if instruction == "COPY" and not arguments.startswith("--from="):
                sources += shlex.split(arguments)[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        files = (
            [source]
            if (ROOT / source).is_file()
            else [str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts]
        )
        for file in files:
            assert dockerignore_allows(file), f"{file} is copied but .dockerignore leaves it out"
    for private in (
        ".venv/bin/python",
        "mlruns.db",
        "tests/conftest.py",
        ".git/HEAD",
        "gateway/__pycache__/cli.cpython-311.pyc",
    ):
        assert not dockerignore_allows(private), f"{private} would be sent to the builder"


def healthcheck_argv() -> list[str]:
    final = dockerfile_stages()[-1]
    (arguments,) = [args for instruction, args in final if instruction == "HEALTHCHECK"]
    command = json.loads(arguments[arguments.index("CMD ") + 4 :])
    return [sys.executable if part == "python" else part for part in command]


def test_healthcheck_passes_against_a_running_gateway_and_fails_without_one(gateway: RunningGateway) -> None:
    argv = healthcheck_argv()
    assert any("/health" in part for part in argv)
    base_env = {"PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        argv, env={**base_env, "ARTIFACT_GATEWAY_PORT": str(gateway.port)}, capture_output=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr
    mlflow_name = subprocess.run(
        argv, env={**base_env, "MLFLOW_PORT": str(gateway.port)}, capture_output=True, timeout=30
    )
    assert mlflow_name.returncode == 0, mlflow_name.stderr
    (closed,) = free_ports(1)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", closed)) != 0
    down = subprocess.run(argv, env={**base_env, "ARTIFACT_GATEWAY_PORT": str(closed)}, capture_output=True, timeout=30)
    assert down.returncode != 0
