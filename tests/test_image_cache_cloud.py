"""In-region image caches (issue 14, cloud half): Artifact Registry remote repositories on GCP,
ECR pull-through cache rules on AWS, what the nodes may do with them, the mapping handed to the
hub, and parallel pulls on EKS."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from harness import Run, run_program, stack_config, with_value
from pangeo_binder.aws.config import AwsNodePool
from pangeo_binder.aws.image_cache import FIRST_PULL_ACTIONS
from pangeo_binder.aws.node_groups import parallel_pull
from pangeo_binder.config import ConfigError, load_config
from pangeo_binder.testing import AWS_ACCOUNT, AWS_REGION, SECRET_KEYS

REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPO_IAM = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
DAY = 86400
ECR = f"{AWS_ACCOUNT}.dkr.ecr.{AWS_REGION}.amazonaws.com"
NODES_SA = "serviceAccount:pb-{env}-nodes@pangeo-binder-{env}.iam.gserviceaccount.com"
DOCKER_TOKEN = "dckr_pat_planted-docker-hub-token-91ab"
GHCR_TOKEN = "ghp_planted-ghcr-token-77cd"


def remote_repositories(run: Run) -> dict[str, dict[str, Any]]:
    return {
        r.inputs["repositoryId"]: r.inputs
        for r in run.of_type(REPOSITORY)
        if r.inputs.get("mode") == "REMOTE_REPOSITORY"
    }


@pytest.fixture(scope="module")
def with_logins() -> Run:
    """Staging with a Docker Hub login on both clouds and a ghcr.io login on AWS."""
    config = stack_config("staging")
    for cloud in ("gcp", "aws"):
        config = with_value(config, f"clouds.{cloud}.imageCache.dockerHubUsername", "pangeobot")
        config = with_value(config, f"secrets.{cloud}.dockerHubToken", DOCKER_TOKEN)
    config = with_value(config, "clouds.aws.imageCache.ghcrUsername", "pangeo-bot")
    config = with_value(config, "secrets.aws.ghcrToken", GHCR_TOKEN)
    return run_program("staging", config=config)


# --- GCP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_gcp_remote_repositories_in_the_cluster_region(env: str, staging: Run, prod: Run) -> None:
    run = staging if env == "staging" else prod
    repos = remote_repositories(run)
    assert sorted(repos) == [f"{env}-docker-hub", f"{env}-ghcr", f"{env}-quay"]
    location = run.one("gcp:container/cluster:Cluster").inputs["location"]
    # A zonal cluster's location is a zone (us-central1-b), a regional one's the region.
    cluster_region = location.rsplit("-", 1)[0] if location.count("-") == 2 else location
    assert cluster_region == "us-central1"
    build = run.one(REPOSITORY, "gcp-registry-repository").inputs
    for repo in repos.values():
        # Image streaming and in-region pulls: the same region as the cluster and its registry.
        assert repo["location"] == cluster_region == build["location"]
        assert repo["format"] == "DOCKER"
        assert repo["cleanupPolicyDryRun"] is False
    upstreams = {key: repo["remoteRepositoryConfig"] for key, repo in repos.items()}
    assert upstreams[f"{env}-docker-hub"]["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    assert upstreams[f"{env}-quay"]["commonRepository"] == {"uri": "https://quay.io"}
    assert upstreams[f"{env}-ghcr"]["commonRepository"] == {"uri": "https://ghcr.io"}
    # No login unless configured.
    assert not any("upstreamCredentials" in config for config in upstreams.values())


def test_gcp_cache_cleanup(staging: Run) -> None:
    for repo in remote_repositories(staging).values():
        policies = {p["id"]: p for p in repo["cleanupPolicies"]}
        assert policies["delete-old"] == {
            "id": "delete-old",
            "action": "DELETE",
            "condition": {"tagState": "ANY", "olderThan": f"{30 * DAY}s"},
        }
        assert policies["keep-recent"]["action"] == "KEEP"


def test_gcp_nodes_read_each_cache_and_nothing_more(staging: Run) -> None:
    nodes = NODES_SA.format(env="staging")
    grants = [r.inputs for r in staging.of_type(REPO_IAM) if r.inputs["member"] == nodes]
    assert sorted((g["repository"], g["role"]) for g in grants) == [
        ("pangeo-binder-staging-images", "roles/artifactregistry.reader"),
        # The public Binder's own repository (its servers run on staging's nodes too).
        ("pangeo-binder-staging-public-images", "roles/artifactregistry.reader"),
        ("staging-docker-hub", "roles/artifactregistry.reader"),
        ("staging-ghcr", "roles/artifactregistry.reader"),
        ("staging-quay", "roles/artifactregistry.reader"),
    ]
    # Nothing project-wide for the nodes on Artifact Registry.
    project_grants = [
        r.inputs
        for r in staging.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["member"] == nodes
    ]
    assert not any("artifactregistry" in g["role"] for g in project_grants)


def test_gcp_docker_hub_login_from_secret_manager(with_logins: Run, staging: Run) -> None:
    repo = remote_repositories(with_logins)["staging-docker-hub"]
    secret = with_logins.one("gcp:secretmanager/secret:Secret")
    version = with_logins.one("gcp:secretmanager/secretVersion:SecretVersion")
    login = repo["remoteRepositoryConfig"]["upstreamCredentials"]["usernamePasswordCredentials"]
    assert login == {"username": "pangeobot", "passwordSecretVersion": version.outputs["name"]}
    assert secret.inputs["replication"]["userManaged"]["replicas"] == [{"location": "us-central1"}]
    assert version.inputs["secretData"] == DOCKER_TOKEN
    assert "secretData" in version.secret_inputs
    # Only Artifact Registry's service agent reads it, and the repository waits for that grant.
    reader = with_logins.one("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert (reader.inputs["role"], reader.inputs["member"]) == (
        "roles/secretmanager.secretAccessor",
        "serviceAccount:service-123456789012@gcp-sa-artifactregistry.iam.gserviceaccount.com",
    )
    docker_hub = next(
        r
        for r in with_logins.of_type(REPOSITORY)
        if r.inputs["repositoryId"] == "staging-docker-hub"
    )
    assert reader.urn in docker_hub.dependencies
    apis = {r.inputs["service"] for r in with_logins.of_type("gcp:projects/service:Service")}
    assert "secretmanager.googleapis.com" in apis
    assert "secretmanager.googleapis.com" not in {
        r.inputs["service"] for r in staging.of_type("gcp:projects/service:Service")
    }


# --- AWS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_aws_pull_through_rules_without_credentials(env: str, staging: Run, prod: Run) -> None:
    run = staging if env == "staging" else prod
    rules = {r.inputs["ecrRepositoryPrefix"]: r.inputs for r in run.of_type(RULE)}
    # Docker Hub and ghcr.io need a login on ECR: not cached without one.
    assert {prefix: rule["upstreamRegistryUrl"] for prefix, rule in rules.items()} == {
        f"{env}-quay": "quay.io",
        f"{env}-ecr-public": "public.ecr.aws",
        f"{env}-k8s": "registry.k8s.io",
    }
    assert not any("credentialArn" in rule for rule in rules.values())
    assert not run.of_type("aws:secretsmanager/secret:Secret")


def test_aws_creation_template_lifecycle_per_cache(staging: Run) -> None:
    templates = {
        t.inputs["prefix"]: t.inputs
        for t in staging.of_type(TEMPLATE)
        if t.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
    }
    assert sorted(templates) == ["staging-ecr-public", "staging-k8s", "staging-quay"]
    for template in templates.values():
        rules = json.loads(template["lifecyclePolicy"])["rules"]
        selections = [(r["selection"]["tagStatus"], r["selection"]["countNumber"]) for r in rules]
        assert selections == [("untagged", 1), ("any", 30)]
        assert all(r["action"] == {"type": "expire"} for r in rules)
    # The build registry's template stays CREATE_ON_PUSH only.
    build = [t for t in staging.of_type(TEMPLATE) if t.inputs["prefix"] == "pangeo-binder-staging"]
    assert build[0].inputs["appliedFors"] == ["CREATE_ON_PUSH"]


def test_aws_logins_in_secrets_manager(with_logins: Run) -> None:
    rules = {r.inputs["ecrRepositoryPrefix"]: r.inputs for r in with_logins.of_type(RULE)}
    secrets = {s.inputs["name"]: s for s in with_logins.of_type("aws:secretsmanager/secret:Secret")}
    assert sorted(secrets) == [
        "ecr-pullthroughcache/staging-docker-hub",
        "ecr-pullthroughcache/staging-ghcr",
    ]
    assert rules["staging-docker-hub"]["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert rules["staging-ghcr"]["upstreamRegistryUrl"] == "ghcr.io"
    for prefix in ("staging-docker-hub", "staging-ghcr"):
        secret = secrets[f"ecr-pullthroughcache/{prefix}"]
        assert rules[prefix]["credentialArn"] == secret.outputs["arn"]
    values = {
        v.inputs["secretId"]: v
        for v in with_logins.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    }
    # The secret id is its ARN.
    docker = values[secrets["ecr-pullthroughcache/staging-docker-hub"].outputs["arn"]]
    assert json.loads(docker.inputs["secretString"]) == {
        "username": "pangeobot",
        "accessToken": DOCKER_TOKEN,
    }
    assert "secretString" in docker.secret_inputs


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_aws_nodes_get_first_pull_rights_on_cache_prefixes_only(
    env: str, staging: Run, prod: Run
) -> None:
    run = staging if env == "staging" else prod
    node_role = run.one("aws:iam/role:Role", "aws-eks-nodes")
    attached = {
        r.inputs["policyArn"]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["role"] == node_role.outputs["name"]
    }
    assert "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly" in attached
    inline = [r for r in run.of_type(ROLE_POLICY) if r.inputs["role"] == node_role.outputs["name"]]
    assert len(inline) == 1
    statements = json.loads(inline[0].inputs["policy"])["Statement"]
    assert statements == [
        {
            "Sid": "PullThroughCache",
            "Effect": "Allow",
            "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
            "Resource": [
                f"arn:aws:ecr:{AWS_REGION}:{AWS_ACCOUNT}:repository/{env}-{name}/*"
                for name in ("quay", "ecr-public", "k8s")
            ],
        }
    ]
    assert sorted(statements[0]["Action"]) == sorted(FIRST_PULL_ACTIONS)


# --- the mapping the hub gets ---------------------------------------------------------------


def test_image_cache_mapping_per_cloud(staging: Run, with_logins: Run) -> None:
    project = "us-central1-docker.pkg.dev/pangeo-binder-staging"
    assert staging.stack_outputs["gcp"]["imageCache"] == {
        "docker.io": f"{project}/staging-docker-hub",
        "quay.io": f"{project}/staging-quay",
        "ghcr.io": f"{project}/staging-ghcr",
    }
    assert staging.stack_outputs["aws"]["imageCache"] == {
        "quay.io": f"{ECR}/staging-quay",
        "public.ecr.aws": f"{ECR}/staging-ecr-public",
        "registry.k8s.io": f"{ECR}/staging-k8s",
    }
    assert with_logins.stack_outputs["aws"]["imageCache"]["docker.io"] == (
        f"{ECR}/staging-docker-hub"
    )
    assert with_logins.stack_outputs["aws"]["imageCache"]["ghcr.io"] == f"{ECR}/staging-ghcr"
    for cloud in ("gcp", "aws"):
        assert not any(v.endswith("/") for v in staging.stack_outputs[cloud]["imageCache"].values())


def test_cache_off_builds_nothing() -> None:
    config = stack_config("staging")
    for cloud in ("gcp", "aws"):
        config = with_value(config, f"clouds.{cloud}.imageCache.enabled", False)
    run = run_program("staging", config=config)
    assert not remote_repositories(run)
    assert not run.of_type(RULE)
    assert "aws-image-cache-nodes-first-pull" not in {r.name for r in run.of_type(ROLE_POLICY)}
    assert "imageCache" not in run.stack_outputs["gcp"]
    assert "imageCache" not in run.stack_outputs["aws"]


def test_no_token_in_plain_text_anywhere(with_logins: Run) -> None:
    for registration in with_logins.registrations:
        for key, value in registration.inputs.items():
            text = json.dumps(value, default=str)
            if DOCKER_TOKEN in text or GHCR_TOKEN in text:
                assert key in registration.secret_inputs, (registration.type, key)


# --- parallel pulls on EKS ------------------------------------------------------------------


def user_data(run: Run, pool: str) -> dict[str, Any] | None:
    """The NodeConfig part of a group's launch template user data, if any."""
    template = next(
        r
        for r in run.of_type(LAUNCH_TEMPLATE)
        if r.inputs["tagSpecifications"][0]["tags"]["pangeo-binder.io/pool"] == pool
    )
    encoded = template.inputs.get("userData")
    if encoded is None:
        return None
    text = base64.b64decode(encoded).decode()
    assert text.startswith("MIME-Version: 1.0\nContent-Type: multipart/mixed;")
    part = text.split("Content-Type: application/node.eks.aws\n\n", 1)[1]
    return yaml.safe_load(part.split("\n--", 1)[0])


def root_ebs(run: Run, pool: str) -> dict[str, Any]:
    template = next(
        r
        for r in run.of_type(LAUNCH_TEMPLATE)
        if r.inputs["tagSpecifications"][0]["tags"]["pangeo-binder.io/pool"] == pool
    )
    return template.inputs["blockDeviceMappings"][0]["ebs"]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_parallel_pull_on_qualifying_user_and_dask_groups(
    env: str, staging: Run, prod: Run
) -> None:
    run = staging if env == "staging" else prod
    fast = {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {"featureGates": {"FastImagePull": True}},
    }
    # r5.xlarge (4 vCPU, 32 GiB), r*.8xlarge, r5.4xlarge dask types, g4dn/g5.xlarge (4 vCPU).
    for pool in ("user", "highmem", "dask", "gpu"):
        assert user_data(run, pool) == fast, pool
        ebs = root_ebs(run, pool)
        assert (ebs["throughput"], ebs["iops"]) == (600, 3000)
    # The core group (t3a.large: 2 vCPUs) is below nodeadm's threshold and not a user pool.
    assert user_data(run, "core") is None
    assert "throughput" not in root_ebs(run, "core")


def test_small_user_group_gets_no_parallel_pull() -> None:
    """A 2-vCPU user group: nodeadm would ignore FastImagePull, so it is not set there."""
    config = with_value(
        stack_config("staging"), "clouds.aws.nodePools.user.machineType", "r5.large"
    )
    run = run_program("staging", config=config)
    assert user_data(run, "user") is None
    assert "throughput" not in root_ebs(run, "user")
    assert user_data(run, "highmem") is not None


def test_parallel_pull_threshold() -> None:
    def pool(**fields: Any) -> AwsNodePool:
        return AwsNodePool.model_validate({"purpose": "dask", "maxNodes": 1, **fields})

    cache = load_config(stack_config("staging"), secret_keys=SECRET_KEYS).clouds.aws.image_cache  # type: ignore[union-attr]
    assert parallel_pull(pool(machineType="r5.xlarge"), cache)
    assert not parallel_pull(pool(machineType="r5.large"), cache)  # 2 vCPUs
    assert parallel_pull(pool(machineType="c5.xlarge"), cache)  # 4 vCPUs, 8 GiB: just over
    # Every listed type counts (they share one size by the pools' own rule).
    mixed = pool(machineType="r5.xlarge", instanceTypes=["r5.xlarge", "r5a.xlarge"])
    assert parallel_pull(mixed, cache)
    assert not parallel_pull(pool(machineType="r5.xlarge", purpose="core"), cache)
    off = cache.model_copy(update={"parallel_pull": False})
    assert not parallel_pull(pool(machineType="r5.xlarge"), off)


def test_higher_throughput_raises_iops() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.imageCache.pullThroughputMibps", 1000)
    run = run_program("staging", config=config)
    ebs = root_ebs(run, "user")
    assert (ebs["throughput"], ebs["iops"]) == (1000, 4000)


# --- config ---------------------------------------------------------------------------------


def problems(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as error:
        load_config(config, secret_keys=SECRET_KEYS)
    return {p.path: p.message for p in error.value.problems}


def test_username_without_its_token_is_refused_naming_the_key() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.imageCache.ghcrUsername", "bot")
    found = problems(config)
    assert list(found) == ["secrets.aws.ghcrToken"]
    assert "clouds.aws.imageCache.ghcrUsername is set" in found["secrets.aws.ghcrToken"]
    assert (
        "pulumi config set --secret --path 'secrets.aws.ghcrToken'"
        in found["secrets.aws.ghcrToken"]
    )


def test_token_without_its_username_is_refused() -> None:
    config = with_value(stack_config("staging"), "secrets.gcp.dockerHubToken", DOCKER_TOKEN)
    assert list(problems(config)) == ["clouds.gcp.imageCache.dockerHubUsername"]


def test_cache_name_clashing_with_the_build_registry_is_refused(staging: Run) -> None:
    build_gcp = staging.one(REPOSITORY, "gcp-registry-repository").inputs["repositoryId"]
    build_aws = next(
        t.inputs["prefix"]
        for t in staging.of_type(TEMPLATE)
        if t.inputs["appliedFors"] == ["CREATE_ON_PUSH"]
    )
    config = with_value(
        stack_config("staging"), "clouds.gcp.imageCache.repositories", {"quay": build_gcp}
    )
    config = with_value(config, "clouds.aws.imageCache.repositories", {"k8s": build_aws})
    found = problems(config)
    assert sorted(found) == [
        "clouds.aws.imageCache.repositories.k8s",
        "clouds.gcp.imageCache.repositories.quay",
    ]
    assert "build registry" in found["clouds.gcp.imageCache.repositories.quay"]
