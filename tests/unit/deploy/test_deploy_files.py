"""deploy/ checked offline: Kubernetes manifests against the API schemas kubernetes-validate ships,
the compose file against the vendored Compose Specification schema, the Dockerfile for the basics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
KUBERNETES_VERSION = "1.31.0"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_objects() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def test_there_are_manifests() -> None:
    assert {path.name for path in MANIFESTS} >= {"api.yaml", "worker.yaml", "edge.yaml", "migrate-job.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifests_match_the_kubernetes_schemas(path: Path) -> None:
    for document in documents(path):
        # strict: unknown fields (typos) fail too.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_typo_is_caught() -> None:
    deployment = next(doc for doc in all_objects() if doc["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in all_objects() if doc["kind"] == kind}


def test_a_deployment_per_role_with_probes_and_requests() -> None:
    deployments = by_kind("Deployment")
    assert set(deployments) == {"pixport-api", "pixport-worker", "pixport-edge"}
    roles = {}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        roles[name] = container["args"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "livenessProbe" in container
    assert roles == {"pixport-api": ["serve"], "pixport-worker": ["work"], "pixport-edge": ["edge"]}
    api = deployments["pixport-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["grpc"]["port"] == 50051 and api["livenessProbe"]["grpc"]["port"] == 50051
    edge = deployments["pixport-edge"]["spec"]["template"]["spec"]["containers"][0]
    assert edge["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_migrate_job_pdbs_hpa_and_services() -> None:
    assert by_kind("Job")["pixport-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert set(by_kind("PodDisruptionBudget")) == {"pixport-api", "pixport-worker", "pixport-edge"}
    hpa = by_kind("HorizontalPodAutoscaler")["pixport-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "pixport-worker"
    services = by_kind("Service")
    assert services["pixport-api-pods"]["spec"]["clusterIP"] == "None"  # the edge sees every pod
    config = by_kind("ConfigMap")["pixport"]["data"]
    assert config["PIXPORT_API_ADDRESSES"] == "pixport-api-pods:50051"


def test_every_env_reference_exists() -> None:
    configmaps, names = set(by_kind("ConfigMap")), set()
    for doc in all_objects():
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for source in container.get("envFrom", []):
                    names.add(source.get("configMapRef", {}).get("name"))
    assert names - {None} <= configmaps


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_matches_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text()))
    validator.validate(compose())
    broken = compose()
    broken["services"]["edge"]["restart_policy"] = "always"  # not a service field
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_compose_starts_a_whole_cluster() -> None:
    services = compose()["services"]
    commands = {name: service.get("command") for name, service in services.items()}
    assert [name for name, command in commands.items() if command == ["serve"]] == ["api-1", "api-2"]
    assert [name for name, command in commands.items() if command == ["work"]] == ["worker-1", "worker-2"]
    assert commands["migrate"] == ["migrate"] and commands["edge"] == ["edge"]
    assert {"postgres", "minio"} <= set(services)
    assert services["edge"]["environment"]["PIXPORT_API_ADDRESSES"] == "api-1:50051,api-2:50051"
    assert services["api-1"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["api-1"]["environment"]["PIXPORT_BLOB_URL"].startswith("s3://")


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_basics() -> None:
    instructions = dockerfile()
    bases = [rest.split()[0] for word, rest in instructions if word == "FROM"]
    assert len(bases) >= 2  # multi-stage
    for base in bases:  # pinned: a digest or an exact version tag, never latest
        assert "@sha256:" in base or re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base), base
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    assert any(word == "USER" for word, _ in instructions[last_from:])  # the runtime stage's user
    assert any(word == "HEALTHCHECK" and "CMD" in rest for word, rest in instructions)
    assert any(word == "ENTRYPOINT" and "pixport" in rest for word, rest in instructions)
