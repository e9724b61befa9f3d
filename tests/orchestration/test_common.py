"""The rules every flow shares: which failures a task retries, how artifacts are named."""

from __future__ import annotations

from prefect.states import Failed

from stokline.connectors import ServerError, ValidationError
from stokline.orchestration import common


def test_only_transient_failures_are_retried() -> None:
    retry = common.retry_when_transient
    error = {"service": "Stokly", "method": "POST", "path": "/v2/saleorders"}
    assert retry(None, None, Failed(data=ServerError(status=503, **error)))
    assert not retry(None, None, Failed(data=ValidationError(status=422, **error)))
    assert not retry(None, None, Failed(data=KeyError("bug")))
    assert retry(None, None, Failed(data=common.IncompleteRun("2 order(s) deferred")))


def test_only_transient_failures_and_an_unfinished_pass_are_retried() -> None:
    error = {"service": "SHOPLINE", "method": "POST", "path": "/inventory_levels/set.json"}
    assert common.worth_retrying(common.IncompleteRun("2 level(s) not pushed"))
    assert common.worth_retrying(ServerError(status=503, **error))
    assert not common.worth_retrying(ValidationError(status=422, **error))
    assert not common.worth_retrying(KeyError("bug"))


def test_artifact_keys_are_lowercase_digits_and_dashes() -> None:
    key = common.artifact_key
    assert key("orders-summary", "Peak_Cycles 2") == "orders-summary-peak-cycles-2"
    assert key("orders", "demo-outdoor", "webhook") == "orders-demo-outdoor-webhook"
