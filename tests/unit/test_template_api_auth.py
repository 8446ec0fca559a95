"""template.yaml's HTTP API: closed by default, JWT (writes: admin scope) or IAM by Condition, public docs on request.

API Gateway answers 401/403 itself from this configuration, before the function runs, so the
configuration is what is tested: the API's definition body is resolved for given parameter values
the way CloudFormation would (Conditions, Fn::If, Ref, AWS::NoValue), then every route is checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localstack.template import load_template

NO_VALUE = object()
DOCS_ROUTES = {
    ("GET", "/health"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    # The dashboard page and its assets: static, no data (the page calls the API with the caller's auth).
    ("GET", "/dashboard"),
    ("GET", "/dashboard/dashboard.js"),
    ("GET", "/dashboard/charts.js"),
    ("GET", "/dashboard/dashboard.css"),
}
APP_ROUTES = DOCS_ROUTES | {
    ("GET", "/metrics/summary"),
    ("GET", "/metrics/timeseries"),
    ("GET", "/metrics/distribution"),
    ("GET", "/conversations"),
    ("GET", "/conversations/x/1"),
    ("GET", "/brands"),
    ("GET", "/brands/acme"),
    ("PUT", "/brands/acme"),
    ("GET", "/brands/acme/sla-policy"),
    ("PUT", "/brands/acme/sla-policy"),
    ("DELETE", "/conversations/x/1/posts/2"),
    ("GET", "/sources"),
    ("GET", "/sources/acme-x"),
    ("PUT", "/sources/acme-x"),
    ("DELETE", "/sources/acme-x"),
    *DOCS_ROUTES,
}
JWT = {"JwtIssuer": "https://issuer.example.com/pool", "JwtAudience": "client-a,client-b"}


class Stack:
    """The template under parameter values: conditions evaluated, intrinsics resolved."""

    def __init__(self, **parameters: str) -> None:
        self.template = load_template()
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.template["Parameters"].items()
        } | parameters
        self.conditions = {name: self.condition(expression) for name, expression in self.template["Conditions"].items()}

    def condition(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            [(function, argument)] = expression.items()
            if function == "Fn::And":
                return all(self.condition(part) for part in argument)
            if function == "Fn::Or":
                return any(self.condition(part) for part in argument)
            if function == "Fn::Not":
                return not self.condition(argument[0])
            if function == "Fn::Equals":
                left, right = (self.resolve(part) for part in argument)
                return bool(left == right)
            if function == "Condition":
                return self.conditions[argument]
        raise ValueError(f"not a condition: {expression!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Ref":
                if argument == "AWS::NoValue":
                    return NO_VALUE
                return self.parameters.get(argument, {"Ref": argument})
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.conditions[name] else when_false)
            if function == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    @property
    def api(self) -> dict[str, Any]:
        return self.resolve(self.template["Resources"]["Api"]["Properties"]["DefinitionBody"])  # type: ignore[no-any-return]

    def route_for(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The template route API Gateway picks for a request: an exact path beats the greedy one."""
        paths = self.api["paths"]
        if path in paths and method.lower() in paths[path]:
            return path, paths[path][method.lower()]
        greedy = paths.get("/{proxy+}", {})
        if method.lower() in greedy:
            return "/{proxy+}", greedy[method.lower()]
        raise AssertionError(f"no route for {method} {path}")

    def security(self, method: str, path: str) -> list[dict[str, list[str]]] | None:
        return self.route_for(method, path)[1].get("security")


def test_the_api_is_an_http_api_with_payload_format_2_to_the_api_function() -> None:
    template = load_template()
    integration = Stack().api["components"]["x-amazon-apigateway-integrations"]["api"]

    assert template["Resources"]["Api"]["Type"] == "AWS::Serverless::HttpApi"
    assert template["Resources"]["ApiFunction"]["Properties"]["Handler"] == "app.lambda_handler"
    assert integration["payloadFormatVersion"] == "2.0" and integration["type"] == "aws_proxy"
    assert integration["uri"] == {"Fn::GetAtt": ["ApiFunction", "Arn"]}
    for item in Stack().api["paths"].values():
        for operation in item.values():
            assert operation["x-amazon-apigateway-integration"] == {
                "$ref": "#/components/x-amazon-apigateway-integrations/api"
            }


def test_api_gateway_may_invoke_the_function_from_this_api_only() -> None:
    permission = load_template()["Resources"]["ApiFunctionInvokePermission"]["Properties"]

    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["FunctionName"] == {"Ref": "ApiFunction"}
    assert "${Api}/*" in permission["SourceArn"]["Fn::Sub"]


def test_by_default_every_route_needs_iam_auth() -> None:
    stack = Stack()

    assert set(stack.api["components"]["securitySchemes"]) == {"sigv4"}
    assert stack.api["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for method, path in APP_ROUTES:
        assert stack.security(method, path) == [{"sigv4": []}], (method, path)


@pytest.mark.parametrize("parameters", [{"JwtIssuer": JWT["JwtIssuer"]}, {"JwtAudience": JWT["JwtAudience"]}])
def test_half_a_jwt_configuration_falls_back_to_iam(parameters: dict[str, str]) -> None:
    stack = Stack(**parameters)

    assert stack.security("GET", "/metrics/summary") == [{"sigv4": []}]


def test_an_issuer_and_audience_select_the_jwt_authorizer() -> None:
    stack = Stack(**JWT)

    [(name, scheme)] = stack.api["components"]["securitySchemes"].items()
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert name == "JwtAuthorizer" and authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {
        "issuer": JWT["JwtIssuer"],
        "audience": ["client-a", "client-b"],
    }


def test_with_jwt_reads_need_a_token_and_writes_the_admin_scope() -> None:
    stack = Stack(**JWT)

    for method, path in APP_ROUTES:
        writes = method in ("PUT", "DELETE")
        expected = [{"JwtAuthorizer": ["replyclock/admin"]}] if writes else [{"JwtAuthorizer": []}]
        assert stack.security(method, path) == expected, (method, path)


def test_the_admin_scope_is_a_parameter() -> None:
    stack = Stack(**JWT, AdminScope="care/admin")

    assert stack.security("PUT", "/brands/acme/sla-policy") == [{"JwtAuthorizer": ["care/admin"]}]


def test_public_docs_are_off_unless_explicitly_true() -> None:
    spec = load_template()["Parameters"]["PublicDocs"]

    assert spec["Default"] == "false" and sorted(spec["AllowedValues"]) == ["false", "true"]
    for method, path in DOCS_ROUTES:
        assert Stack().security(method, path) == [{"sigv4": []}]
        assert Stack(**JWT).security(method, path) == [{"JwtAuthorizer": []}]


@pytest.mark.parametrize("parameters", [{}, JWT])
def test_public_docs_open_health_and_docs_only(parameters: dict[str, str]) -> None:
    stack = Stack(PublicDocs="true", **parameters)

    for method, path in APP_ROUTES:
        security = stack.security(method, path)
        if (method, path) in DOCS_ROUTES:
            assert security is None, (method, path)
        else:
            assert security, (method, path)


def test_no_route_is_open_without_auth_other_than_the_docs() -> None:
    for stack in (Stack(), Stack(**JWT), Stack(PublicDocs="true"), Stack(PublicDocs="true", **JWT)):
        for path, item in stack.api["paths"].items():
            for method, operation in item.items():
                if (method.upper(), path) not in DOCS_ROUTES:
                    assert operation.get("security"), (method, path)
        assert "security" not in stack.api, "no API-wide default that a route could inherit"
        assert set(stack.api["paths"]["/{proxy+}"]) == {"get", "put", "delete"}, "only the methods the app serves"


def test_the_function_gets_the_maximum_window_setting() -> None:
    function = load_template()["Resources"]["ApiFunction"]["Properties"]

    assert function["Environment"]["Variables"]["MAX_WINDOW_DAYS"] == {"Ref": "MaxWindowDays"}
    assert function["Timeout"] < 30, "API Gateway gives up after 30 seconds"
