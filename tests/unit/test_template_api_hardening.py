"""template.yaml's limits on the API (issue 14 part 3): stage throttling, reserved concurrency, least IAM.

The review found no route throttling (which the CKV_AWS_115 justification relied on), no reserved
concurrency for the API function, CRUD on the whole table for it, and under IAM no separation of
writes from reads.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from devtools.localstack.template import load_template
from replyclock.dal.brands import brand_key, policy_key
from replyclock.dal.health import health_key
from replyclock.dal.posts import identity_key
from replyclock.dal.sources import cursor_key, lease_key, source_key
from replyclock.dal.table import conversation_pk
from tests.unit.test_template_api_auth import JWT, Stack

API_READS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
API_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def resources() -> dict[str, Any]:
    return load_template()["Resources"]  # type: ignore[no-any-return]


def parameter_default(name: str) -> int:
    return int(load_template()["Parameters"][name]["Default"])


def api_statements() -> list[dict[str, Any]]:
    policies = resources()["ApiFunction"]["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy.get("Statement", [])]


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action) if isinstance(action, list) else {action}


def test_every_route_of_the_stage_is_throttled_and_writes_tighter() -> None:
    api = resources()["Api"]["Properties"]
    default = api["DefaultRouteSettings"]

    assert default == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    assert 0 < parameter_default("ApiThrottlingRateLimit") <= parameter_default("ApiThrottlingBurstLimit") <= 1000
    routes = {f"{method.upper()} {path}" for path, item in Stack().api["paths"].items() for method in item}
    for route in ("PUT /{proxy+}", "DELETE /{proxy+}"):
        assert route in routes, "route settings must name a route of the definition"
        assert api["RouteSettings"][route]["ThrottlingRateLimit"] == {"Ref": "ApiWriteThrottlingRateLimit"}
    assert parameter_default("ApiWriteThrottlingRateLimit") < parameter_default("ApiThrottlingRateLimit")


def test_the_api_function_has_reserved_concurrency() -> None:
    function = resources()["ApiFunction"]["Properties"]

    assert function["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    assert 1 <= parameter_default("ApiReservedConcurrency") <= 100


def test_the_api_function_has_no_crud_on_the_whole_table() -> None:
    policies = resources()["ApiFunction"]["Properties"]["Policies"]
    dynamodb = [
        statement for statement in api_statements() if any(a.startswith("dynamodb:") for a in actions(statement))
    ]

    assert not any("DynamoDBCrudPolicy" in policy or "DynamoDBReadPolicy" in policy for policy in policies)
    granted = set().union(*(actions(statement) for statement in dynamodb))
    assert granted == API_READS | API_WRITES, "no Scan, BatchWriteItem, ConditionCheckItem or DescribeTable"


def test_reads_reach_the_table_and_the_one_index_the_api_queries() -> None:
    [reads] = [statement for statement in api_statements() if actions(statement) == API_READS]

    assert reads["Resource"] == [
        {"Fn::GetAtt": ["Table", "Arn"]},
        {"Fn::Sub": "${Table.Arn}/index/ConversationsByBrand"},
    ]
    assert "Condition" not in reads


def test_writes_reach_only_the_partitions_a_route_writes() -> None:
    [writes] = [statement for statement in api_statements() if actions(statement) == API_WRITES]
    patterns = writes["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]

    assert writes["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}, "never an index"
    written = {
        "brand": brand_key("acme")["pk"],
        "policy version": policy_key("acme", 2)["pk"],
        "source": source_key("acme-x")["pk"],
        "source cursor": cursor_key("acme-x")["pk"],
        "source lease": lease_key("acme-x")["pk"],
        "source health": health_key("acme-x")["pk"],
        "deleted post's tombstone": conversation_pk("x", "1"),
        "deleted post's identity": identity_key("x", "2")["pk"],
    }
    for what, partition in written.items():
        assert any(fnmatchcase(partition, pattern) for pattern in patterns), (what, partition)
    for never in ("AGG#acme", "OPEN#x", "ALERT#1"):
        assert not any(fnmatchcase(never, pattern) for pattern in patterns), never


def test_under_iam_readers_and_admins_get_separate_managed_policies() -> None:
    template = resources()
    reader = template["ApiReaderPolicy"]
    admin = template["ApiAdminPolicy"]

    assert reader["Condition"] == admin["Condition"] == "UseIamAuth"
    assert Stack().conditions["UseIamAuth"] is True and Stack(**JWT).conditions["UseIamAuth"] is False
    [read] = reader["Properties"]["PolicyDocument"]["Statement"]
    [write] = admin["Properties"]["PolicyDocument"]["Statement"]
    assert read["Action"] == write["Action"] == "execute-api:Invoke"
    assert read["Resource"]["Fn::Sub"].endswith("${Api}/$default/GET/*")
    assert {resource["Fn::Sub"].rsplit("/", 2)[-2] for resource in write["Resource"]} == {"GET", "PUT", "DELETE"}


def test_the_function_knows_the_admin_scope_and_the_brands_claim() -> None:
    variables = resources()["ApiFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["ADMIN_SCOPE"] == {"Ref": "AdminScope"}
    assert variables["BRANDS_CLAIM"] == {"Ref": "BrandsClaim"}
