"""The Kubernetes manifests (deploy/k8s): rendered by kustomize, valid against the API's
schemas (kubernetes-validate ships them, so this works offline), and shaped as the
deployment needs: probes, one beat, non-root pods, secrets only from the Secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
IMAGE_USER = 10001  # the Dockerfile's `USER` (numeric, so runAsNonRoot can check it)


def _render(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request) -> list[dict]:
    return _render(K8S / request.param)


@pytest.fixture(scope="module")
def production() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _render(K8S / "overlays/production")}


def _pod_specs(docs: list[dict]):
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            yield doc, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif "template" in spec:
            yield doc, spec["template"]["spec"]


def test_every_resource_validates_against_the_kubernetes_schema(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    # when every rendered resource is checked strictly (unknown fields are errors)
    for doc in rendered:
        # then none is refused
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_typo_is_caught_by_the_validation(production):
    # the check above is not vacuous: a misspelt field fails it
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    web = production[("Deployment", "biddt-web")]
    broken = yaml.safe_load(yaml.safe_dump(web))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_pod_runs_as_the_image_user_without_privileges(rendered):
    pods = list(_pod_specs(rendered))
    assert len(pods) == 6  # web, ws, worker, beat, migrate, ledger check
    for doc, pod in pods:
        name = doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == IMAGE_USER, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"] and container["resources"]["limits"], name


def test_settings_come_from_the_config_map_and_the_secret_only(rendered):
    for doc, pod in _pod_specs(rendered):
        for container in pod["containers"]:
            # no literal env values: secrets can't end up in the manifests
            assert "env" not in container, doc["metadata"]["name"]
            refs = {next(iter(ref)) for ref in container["envFrom"]}
            assert refs == {"configMapRef", "secretRef"}
            assert {"name": "biddt-secrets"} in [ref.get("secretRef") for ref in
                                                 container["envFrom"]]
    assert not [d for d in rendered if d["kind"] == "Secret"]


def test_web_and_ws_probe_readyz_and_healthz(production):
    assert f"USER {IMAGE_USER}:{IMAGE_USER}" in (ROOT / "Dockerfile").read_text()
    for name in ("biddt-web", "biddt-ws"):
        container = production[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        headers = {h["name"]: h["value"] for h in
                   container["readinessProbe"]["httpGet"]["httpHeaders"]}
        # production settings check the Host and redirect plain HTTP
        assert headers["X-Forwarded-Proto"] == "https"
        allowed = production[("ConfigMap", "biddt-config")]["data"]["ALLOWED_HOSTS"].split(",")
        assert headers["Host"] in allowed
        assert "*" not in allowed


def test_exactly_one_beat_that_never_overlaps_a_rollout(production):
    beat = production[("Deployment", "biddt-beat")]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in beat["spec"]["template"]["spec"]["containers"][0]["command"]


def test_jobs_autoscaling_and_disruption_budgets(production):
    migrate = production[("Job", "biddt-migrate")]
    assert migrate["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == [
        "migrate", "--noinput"]
    cron = production[("CronJob", "biddt-ledger-check")]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == "ledger_check"
    hpa = production[("HorizontalPodAutoscaler", "biddt-web")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "biddt-web"
    assert hpa["spec"]["minReplicas"] >= 2
    for name in ("biddt-web", "biddt-ws", "biddt-worker"):
        assert production[("PodDisruptionBudget", name)]["spec"]["minAvailable"] >= 1
    worker = production[("Deployment", "biddt-worker")]["spec"]["template"]["spec"]
    # a task may run CELERY_TASK_TIME_LIMIT (120 s): the pod gets that long to finish it
    assert worker["terminationGracePeriodSeconds"] > 120


def test_the_pods_run_the_same_servers_as_compose(production):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for deployment, service in (("biddt-web", "web1"), ("biddt-ws", "ws1")):
        pod = production[("Deployment", deployment)]["spec"]["template"]["spec"]
        assert pod["containers"][0]["command"] == compose[service]["command"], deployment


def test_the_ingress_routes_sockets_to_the_socket_pods(production):
    ingress = production[("Ingress", "biddt")]
    paths = {p["path"]: p["backend"]["service"]["name"]
             for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/ws/": "biddt-ws", "/": "biddt-web"}
    # only the video upload path takes bodies past the photo limit
    videos = production[("Ingress", "biddt-videos")]
    assert [p["path"] for rule in videos["spec"]["rules"] for p in rule["http"]["paths"]] == [
        "/v1/listings/[^/]+/videos$"]
    assert videos["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-body-size"] == "101m"
    assert videos["spec"]["rules"][0]["host"] == ingress["spec"]["rules"][0]["host"]
    assert production[("ConfigMap", "biddt-config")]["data"]["BIDDT_NUM_PROXIES"] == "1"
    assert production[("Namespace", "biddt")]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
