"""The local stack reads template.yaml exactly as cfn-lint's decoder does, without importing cfn-lint."""

from __future__ import annotations

import json

from cfnlint.decode import decode

from devtools.localstack.template import TEMPLATE_PATH, load_template


def test_the_template_reads_the_same_as_with_cfn_lint() -> None:
    decoded, problems = decode(str(TEMPLATE_PATH))
    assert problems == []
    assert load_template() == json.loads(json.dumps(decoded))


def test_short_forms_read_as_their_long_forms() -> None:
    resources = load_template()["Resources"]
    measure = resources["MeasureFunction"]["Properties"]["Events"]
    stream_event = next(event for event in measure.values() if event["Type"] == "DynamoDB")
    assert stream_event["Properties"]["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
