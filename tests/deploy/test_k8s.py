"""deploy/k8s renders with `kubectl kustomize` (offline) for every overlay, and every object validates: Kubernetes'
own kinds against kubernetes-validate's bundled schemas (strict: unknown fields refused), KEDA's against the schemas in
deploy/k8s/schemas. Then the properties a deployment relies on are checked on the rendered objects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_reachable_by_probes_and_share_the_models_volume(overlay):
    """Probes ask for the pod's IP as the host (allowed through POD_IP); web reads the promoted model for /readyz;
    every pod on the models volume writes it as the image's user; the ONNX export lands where every detect pod sees
    it; login throttling reads the client behind the ingress."""
    objects = render(overlay)
    config = _by(objects, "ConfigMap", "moderation-config")["data"]
    assert config["TRUSTED_PROXY_COUNT"] == "1" and config["DJANGO_SECURE_PROXY_SSL_HEADER"]
    assert config["DETECTOR_ONNX_CACHE_DIR"].startswith(config["MODEL_STORE"] + "/")
    deployments = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"}
    web = deployments["moderation-web"]["containers"][0]
    pod_ip = next(e for e in web["env"] if e["name"] == "POD_IP")
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert {(m["mountPath"], m.get("readOnly")) for m in web["volumeMounts"]} == {(config["MODEL_STORE"], True)}
    for name, pod in deployments.items():
        claims = [v for v in pod.get("volumes", []) if v.get("persistentVolumeClaim", {}).get("claimName")]
        if claims:
            assert pod["securityContext"]["fsGroup"] == 10001, name
    assert {"moderation-web", "moderation-detect-worker", "moderation-trainer"} <= {
        name for name, pod in deployments.items() if pod.get("volumes")
    }


def test_the_pod_ip_is_an_allowed_host(tmp_path):
    code = "import json; from config import settings; print(json.dumps(settings.ALLOWED_HOSTS))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MODERATION_DATA_DIR": str(tmp_path),
           "DJANGO_DEBUG": "true", "DJANGO_ALLOWED_HOSTS": "moderation.example.com"}  # fmt: skip
    for pod_ip, allowed in (("10.244.1.17", "10.244.1.17"), ("fd00::17", "[fd00::17]")):
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env={**env, "POD_IP": pod_ip},
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert json.loads(result.stdout.strip().splitlines()[-1]) == ["moderation.example.com", allowed]


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
