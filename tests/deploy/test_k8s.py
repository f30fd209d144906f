"""deploy/k8s renders with `kubectl kustomize` (offline) for every overlay, and every object validates: Kubernetes'
own kinds against kubernetes-validate's bundled schemas (strict: unknown fields refused), KEDA's against the schemas in
deploy/k8s/schemas. Then the properties a deployment relies on are checked on the rendered objects."""

from __future__ import annotations

import json
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.scale, pytest.mark.kubectl]
K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())
KUBERNETES_VERSION = "1.32.0"


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def _by(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_overlays_are_the_documented_ones():
    assert OVERLAYS == ["cpu", "gpu", "rabbitmq"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay):
    objects = render(overlay)
    assert len(objects) >= 15
    for obj in objects:
        group = obj["apiVersion"].split("/")[0]
        if group == "keda.sh":
            schema_file = K8S / "schemas" / f"keda.sh_{obj['apiVersion'].split('/')[1]}_{obj['kind'].lower()}.json"
            jsonschema.validate(obj, json.loads(schema_file.read_text()))
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_wire_up_as_the_service_needs(overlay):
    objects = render(overlay)
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == {
        "moderation-web", "moderation-fetch-worker", "moderation-detect-worker", "moderation-trainer", "moderation-beat"
    }  # fmt: skip
    for name, deployment in deployments.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            sources = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert sources == {"moderation-config", "moderation-secrets"}, name
            assert container["image"].startswith("registry.example.com/ai-moderation:"), name
    web = deployments["moderation-web"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        web["livenessProbe"]["httpGet"]["path"] == "/healthz" and web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    )
    beat = deployments["moderation-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate", "exactly one scheduler, even mid-rollout"
    assert _by(objects, "HorizontalPodAutoscaler", "moderation-web")["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    migrate = _by(objects, "Job", "moderation-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"][-2:] == ["migrate", "--noinput"]
    budgets = {
        o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for o in objects
        if o["kind"] == "PodDisruptionBudget"
    }
    assert budgets == {"moderation-web", "moderation-fetch-worker", "moderation-detect-worker"}
    scaled = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["triggers"] for o in objects if o["kind"] == "ScaledObject"
    }
    assert set(scaled) == {"moderation-fetch-worker", "moderation-detect-worker"}
    queues = {"moderation-fetch-worker": "fetch", "moderation-detect-worker": "detect"}
    for target, triggers in scaled.items():
        (trigger,) = triggers
        if overlay == "rabbitmq":
            assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == queues[target]
        else:
            assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == queues[target]
    worker = deployments["moderation-detect-worker"]["spec"]["template"]["spec"]
    device = {e["name"]: e["value"] for e in worker["containers"][0].get("env", [])}.get("DETECTOR_DEVICE")
    gpus = worker["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
    if overlay == "gpu":
        assert device == "cuda" and gpus == 1 and worker["tolerations"][0]["key"] == "nvidia.com/gpu"
    else:
        assert device == "cpu" and gpus is None and "tolerations" not in worker


def test_a_broken_manifest_is_caught():
    objects = render("cpu")
    web = _by(objects, "Deployment", "moderation-web")
    web["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"name": "http"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)
    scaled = _by(objects, "ScaledObject", "moderation-detect-worker")
    del scaled["spec"]["triggers"][0]["metadata"]["listName"]
    schema = json.loads((K8S / "schemas" / "keda.sh_v1alpha1_scaledobject.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, schema)
