"""template.yaml read and rendered the way CloudFormation would for given parameters.

``render`` decides the conditions, expands ``Fn::ForEach``, substitutes parameters
and pseudo parameters and drops ``AWS::NoValue``. References to the template's
own resources stay symbolic (``{"Ref": "X"}``, ``{"Fn::GetAtt": ["X", "Arn"]}``)
because their values exist only after deployment: assertions compare against
those forms, and the rendering is still a valid template (checkov scans it, so
the resources that ``Fn::ForEach`` generates are scanned too).

Only the intrinsic functions template.yaml uses are implemented; anything else
raises, so a new construct cannot be silently mis-rendered.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "rotator",
    "AWS::URLSuffix": "amazonaws.com",
}


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation's short forms (!Ref, !If ...) into the long ones."""


def _short_form(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _short_form)


def load(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as parsed, a copy of its own for each caller (who may change it)."""
    return copy.deepcopy(_parse(path, path.stat().st_mtime_ns))


@functools.cache
def _parse(path: Path, _mtime_ns: int) -> dict[str, Any]:
    # PyYAML takes ~0.1 s for template.yaml, and hundreds of cases load it: parse each
    # version of the file once (issue 23: a sixth of the template tier went here).
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_Loader)
    return loaded


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Defaults overlaid with ``overrides``; list types become lists, as CloudFormation passes them."""
    declared = template["Parameters"]
    unknown = set(overrides) - set(declared)
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise KeyError(f"parameter {name} has no default and no value")
        text = str(raw)
        kind = str(spec["Type"])
        values[name] = text.split(",") if kind == "CommaDelimitedList" or kind.startswith("List<") else text
    return values


@dataclass
class Rendered:
    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == resource_type}

    def props(self, name: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[name].get("Properties", {})
        return properties

    def as_template(self) -> dict[str, Any]:
        """A deployable-looking template of what this rendering creates (for scanners)."""
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": self.resources,
            "Outputs": self.outputs,
        }


def render(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> Rendered:
    params = parameter_values(template, overrides or {})
    definitions: Mapping[str, Any] = template.get("Conditions", {})
    decided: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in decided:
            decided[name] = bool(_Resolver(params, condition).resolve(definitions[name]))
        return decided[name]

    resolver = _Resolver(params, condition)
    resources: dict[str, dict[str, Any]] = {}
    for key, body in template["Resources"].items():
        expanded = _for_each(body, resolver) if key.startswith("Fn::ForEach::") else {key: body}
        for name, resource in expanded.items():
            if "Condition" in resource and not condition(resource["Condition"]):
                continue
            assert name not in resources, f"duplicate logical id {name}"
            rendered = {k: v for k, v in resource.items() if k != "Condition"}
            for part in ("Properties", "Metadata"):
                if part in rendered:
                    rendered[part] = resolver.resolve(rendered[part])
            resources[name] = rendered
    outputs = {
        name: {"Value": resolver.resolve(out["Value"])}
        for name, out in template.get("Outputs", {}).items()
        if "Condition" not in out or condition(out["Condition"])
    }
    for name in definitions:
        condition(name)
    return Rendered(params, decided, resources, outputs)


def rule_violations(template: Mapping[str, Any], overrides: Mapping[str, str]) -> list[str]:
    """The AssertDescription of every Rules assertion these parameters break."""
    params = parameter_values(template, overrides)
    resolver = _Resolver(params, lambda name: False)
    broken = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule["Assertions"]:
            if not resolver.resolve(assertion["Assert"]):
                broken.append(str(assertion["AssertDescription"]))
    return broken


def _alphanumeric(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def _for_each(body: list[Any], resolver: _Resolver) -> dict[str, dict[str, Any]]:
    identifier, collection, fragment = body
    values = resolver.resolve(collection)
    assert isinstance(values, list), f"Fn::ForEach collection did not resolve to a list: {values!r}"
    expanded: dict[str, dict[str, Any]] = {}
    for value in values:
        for key, resource in fragment.items():
            name = key.replace(f"&{{{identifier}}}", _alphanumeric(value)).replace(f"${{{identifier}}}", value)
            expanded[name] = _substitute(copy.deepcopy(resource), identifier, value)
    return expanded


def _substitute(node: Any, identifier: str, value: str) -> Any:
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return value
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return {"Fn::Sub": node["Fn::Sub"].replace(f"${{{identifier}}}", value)}
        return {k: _substitute(v, identifier, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(item, identifier, value) for item in node]
    return node


class _Resolver:
    def __init__(self, params: Mapping[str, Any], condition: Callable[[str], bool]) -> None:
        self._params = params
        self._condition = condition

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.resolve(x) for x in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not rendered by tests/template/cfn.py")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._params:
            return self._params[name]
        if name in PSEUDO:
            return PSEUDO[name]
        return {"Ref": name}

    def if_(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self._condition(name) else when_false)

    def join(self, arg: list[Any]) -> Any:
        separator, parts = arg[0], self.resolve(arg[1])
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return separator.join(parts)
        return {"Fn::Join": [separator, parts]}

    def split(self, arg: list[Any]) -> Any:
        separator, text = arg[0], self.resolve(arg[1])
        return text.split(separator) if isinstance(text, str) else {"Fn::Split": [separator, text]}

    def sub(self, arg: Any) -> Any:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            value = self.ref(name) if "." not in name else None
            return value if isinstance(value, str) else match.group(0)

        result = re.sub(r"\$\{([^}!]+)\}", replace, text)
        return result if not re.search(r"\$\{[^}!]+\}", result) else {"Fn::Sub": result}

    def select(self, arg: list[Any]) -> Any:
        index, items = self.resolve(arg[0]), self.resolve(arg[1])
        return items[int(index)] if isinstance(items, list) else {"Fn::Select": [index, items]}

    def equals(self, arg: list[Any]) -> bool:
        left, right = (self.resolve(x) for x in arg)
        return bool(left == right)

    def each_member_equals(self, arg: list[Any]) -> bool:
        members, value = self.resolve(arg[0]), self.resolve(arg[1])
        return all(member == value for member in members)


_FUNCTIONS: dict[str, Callable[[_Resolver, Any], Any]] = {
    "Ref": _Resolver.ref,
    "Fn::If": _Resolver.if_,
    "Fn::Join": _Resolver.join,
    "Fn::Split": _Resolver.split,
    "Fn::Sub": _Resolver.sub,
    "Fn::Select": _Resolver.select,
    "Fn::GetAtt": lambda _resolver, arg: {"Fn::GetAtt": arg},
    "Fn::Equals": _Resolver.equals,
    "Fn::EachMemberEquals": _Resolver.each_member_equals,
    "Fn::Not": lambda resolver, arg: not resolver.resolve(arg[0]),
    "Fn::And": lambda resolver, arg: all(resolver.resolve(x) for x in arg),
    "Fn::Or": lambda resolver, arg: any(resolver.resolve(x) for x in arg),
    "Condition": lambda resolver, arg: resolver._condition(arg),
}


def deployed(node: Any, values: Mapping[str, Any]) -> Any:
    """``node`` with references to the stack's own resources replaced by the values
    they have once deployed (keyed ``"Ref X"`` and ``"GetAtt X.Attribute"``) and the
    functions over them evaluated. A reference without a value, or any intrinsic
    function left over, raises: a policy handed to an evaluator is always concrete."""

    def no_condition(name: str) -> bool:
        raise AssertionError(f"conditions are decided by render(), not here ({name})")

    result = _Resolver({}, no_condition).resolve(_substitute_deployed(node, values))
    leftover = json.dumps(result)
    if '"Fn::' in leftover or '"Ref"' in leftover:
        raise ValueError(f"unresolved intrinsic function in {leftover}")
    return result


def _substitute_deployed(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_substitute_deployed(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] not in PSEUDO:
        key = f"Ref {node['Ref']}"
    elif set(node) == {"Fn::GetAtt"}:
        key = "GetAtt " + ".".join(node["Fn::GetAtt"])
    else:
        return {name: _substitute_deployed(value, values) for name, value in node.items()}
    if key not in values:
        raise KeyError(f"no deployed value for {key}")
    return values[key]
