"""The production settings agree everywhere a user reads them: the variables of
deploy/endpoints.production.yml, those `bot cluster up` sets for its replicas, the
Kubernetes manifests in deploy/k8s/ and the README's table."""

import re
from pathlib import Path
from typing import Set

import yaml

from bot.cluster import PRODUCTION_ENDPOINTS, Postgres, Redis, secrets_env
from bot.services import ROOT

#: read by our own code, not by the endpoints file
CODE_VARIABLES = {"CSBOT_SOCKETIO_REDIS_URL"}


def endpoint_variables() -> Set[str]:
    return set(re.findall(r"\$\{(\w+)\}", PRODUCTION_ENDPOINTS.read_text()))


def manifest_variables() -> Set[str]:
    names = set()
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            spec = (document.get("spec") or {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                names |= {variable["name"] for variable in container.get("env", [])}
    return names


def readme_production_variables() -> Set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**On your own servers**"):readme.index("## Benchmarks")]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))


def test_the_endpoints_variables_are_in_the_manifests_and_the_readme():
    needed = endpoint_variables() | CODE_VARIABLES
    assert {"DB_PASSWORD", "REDIS_PASSWORD", "ACTION_SERVER_URL"} <= needed
    assert needed <= manifest_variables()
    assert needed <= readme_production_variables()


def test_the_cluster_sets_the_same_variables(tmp_path: Path):
    names = set(secrets_env(Postgres(tmp_path / "pg", 1), Redis(tmp_path / "redis", 2)))
    # the action servers' URL is the one thing the cluster writes into its endpoints copy
    assert names == (endpoint_variables() | CODE_VARIABLES) - {"ACTION_SERVER_URL"}


def test_the_manifests_use_only_documented_variables():
    readme = (ROOT / "README.md").read_text()
    for name in manifest_variables() - readme_production_variables():
        assert re.search(rf"`{name}[`=]", readme), f"{name} is in deploy/k8s, not in the README"
