"""`clouds.aws.accountId` pins the account: credentials for another account stop the program
before anything but the provider is registered."""

from __future__ import annotations

import pytest

from harness import (
    AWS_ACCOUNT,
    DELETE,
    SECRET_KEYS,
    AwsCaller,
    RecordingMonitor,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.aws.stack import wrong_account
from pangeo_binder.config import ConfigError, load_config


def aws_only(account: object) -> dict:
    config = with_value(stack_config("staging"), "clouds.gcp", DELETE)
    config = with_value(config, "secrets.gcp", DELETE)
    return with_value(config, "clouds.aws.accountId", account)


def test_the_callers_account_deploys() -> None:
    run = run_program("staging", aws_only(AWS_ACCOUNT))
    assert run.of_type("aws:eks/cluster:Cluster")


def test_another_account_is_refused_naming_both_before_anything_is_created() -> None:
    monitor = RecordingMonitor(caller=AwsCaller())  # credentials for AWS_ACCOUNT
    with pytest.raises(Exception, match="accountId is 210987654321") as error:
        run_program("staging", aws_only("210987654321"), monitor)
    assert AWS_ACCOUNT in str(error.value)
    custom = [r.type for r in monitor.registrations if r.custom]
    assert custom == ["pulumi:providers:aws"]


def test_the_mock_engine_runs_as_the_account_a_stack_pins() -> None:
    """Without a caller given, the mocks answer as a deploy in the pinned account (a fork's
    own account runs and plans offline), and what AWS reports is in that account."""
    run = run_program("staging", aws_only("210987654321"))
    assert run.of_type("aws:eks/cluster:Cluster")
    roles = [r.outputs["arn"] for r in run.of_type("aws:iam/role:Role")]
    assert roles and all(arn.startswith("arn:aws:iam::210987654321:role/") for arn in roles)
    assert AWS_ACCOUNT not in str([r.outputs for r in run.of_type("aws:eks/cluster:Cluster")])


def test_the_message_names_both_accounts_and_nothing_when_unpinned() -> None:
    assert wrong_account(None, AWS_ACCOUNT) is None
    assert wrong_account(AWS_ACCOUNT, AWS_ACCOUNT) is None
    message = wrong_account("210987654321", AWS_ACCOUNT)
    assert message is not None and "210987654321" in message and AWS_ACCOUNT in message


@pytest.mark.parametrize("account", [12345, "12345678901", "1234567890123", 123456789012])
def test_an_account_id_is_twelve_quoted_digits(account: object) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(aws_only(account), secret_keys=SECRET_KEYS)
    assert [p.path for p in error.value.problems] == ["clouds.aws.accountId"]
