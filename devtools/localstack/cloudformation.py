"""Just enough CloudFormation to read template.yaml as a deployment would: parameters, conditions, intrinsics.

`Stack` holds the parameter values (defaults, overridden and validated like CloudFormation
does), evaluates conditions, and resolves Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join,
Fn::Split, Fn::Select, Fn::FindInMap and the pseudo parameters against the physical names
the local stack gave its resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
# moto's default account: ARNs it returns carry it, so ours must too.
ACCOUNT_ID = "123456789012"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


class TemplateError(ValueError):
    """The template asks for something the local stack cannot resolve or emulate."""


class _NoValue:
    """AWS::NoValue: the property it stands in is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


@dataclass
class PhysicalResource:
    """What Ref and Fn::GetAtt return for one resource of the stack."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value: the override, else its default; checked against its constraints."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default: pass a value for it")
        _check_parameter(name, spec, value)
        values[name] = value
    return values


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(option) for option in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")


class Stack:
    """The template with its parameters fixed and its resources' physical names known."""

    def __init__(
        self,
        name: str,
        parameter_overrides: Mapping[str, str] | None = None,
        template: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        if template is None:
            from devtools.localstack.template import load_template

            template = load_template()
        self.template: Mapping[str, Any] = template
        self.parameters = parameter_values(self.template, parameter_overrides or {})
        self.physical: dict[str, PhysicalResource] = {}
        self._conditions: dict[str, bool] = {}

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template["Resources"]
        return resources

    def resources_of_type(self, *types: str) -> dict[str, Mapping[str, Any]]:
        return {name: resource for name, resource in self.resources.items() if resource.get("Type") in types}

    def is_created(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def physical_name(self, logical_id: str, *, lower: bool = False, max_length: int = 255) -> str:
        """A stable name like CloudFormation's "<stack>-<LogicalId>-<suffix>", without the random suffix."""
        name = f"{self.name}-{logical_id}"
        return (name.lower() if lower else name)[:max_length]

    def arn(self, service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
        return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"

    # --- conditions --------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    # --- intrinsics ----------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated; AWS::NoValue entries are dropped."""
        if isinstance(value, list):
            return [item for item in (self.resolve(entry) for entry in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            function = self._FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {key: self.resolve(entry) for key, entry in value.items()}
        return {key: entry for key, entry in resolved.items() if entry is not NO_VALUE}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.name,
            "AWS::StackId": self.arn("cloudformation", f"stack/{self.name}/local"),
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            spec = self.template["Parameters"][name]
            value = self.parameters[name]
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                return value.split(",")
            return value
        return self._physical(name).ref

    def get_att(self, logical_id: str, attribute: str) -> str:
        physical = self._physical(logical_id)
        if attribute not in physical.attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not emulated locally")
        return physical.attributes[attribute]

    def _physical(self, logical_id: str) -> PhysicalResource:
        if logical_id not in self.physical:
            if logical_id in self.resources:
                raise TemplateError(f"{logical_id} is referenced before the local stack created it")
            raise TemplateError(f"unknown resource or parameter {logical_id!r}")
        return self.physical[logical_id]

    def _ref(self, argument: Any) -> Any:
        return self.ref(str(argument))

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = argument[0], self.resolve(argument[1])
        return self.get_att(logical_id, attribute)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {key: self.resolve(value) for key, value in argument[1].items()}
        else:
            text, variables = argument, {}

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.resources:
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument[0], self.resolve(argument[1])
        return str(delimiter).join(str(item) for item in items)

    def _split(self, argument: Any) -> list[str]:
        return str(self.resolve(argument[1])).split(str(argument[0]))

    def _select(self, argument: Any) -> Any:
        return self.resolve(argument[1])[int(self.resolve(argument[0]))]

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: Any) -> bool:
        left, right = (self.resolve(item) for item in argument)
        return bool(left == right)

    def _not(self, argument: Any) -> bool:
        return not self.resolve(argument[0])

    def _and(self, argument: Any) -> bool:
        return all(self.resolve(item) for item in argument)

    def _or(self, argument: Any) -> bool:
        return any(self.resolve(item) for item in argument)

    def _condition(self, argument: Any) -> bool:
        return self.condition(str(argument))

    def _find_in_map(self, argument: Any) -> Any:
        name, top, second = (self.resolve(item) for item in argument[:3])
        return self.template["Mappings"][name][top][second]

    def _get_azs(self, argument: Any) -> list[str]:
        return [f"{REGION}{zone}" for zone in "abc"]

    def _unsupported(self, argument: Any) -> Any:
        raise TemplateError(f"intrinsic function not emulated locally: {argument!r}")

    _FUNCTIONS: dict[str, Callable[[Stack, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Split": _split,
        "Fn::Select": _select,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition,
        "Fn::FindInMap": _find_in_map,
        "Fn::GetAZs": _get_azs,
        "Fn::ImportValue": _unsupported,
    }
