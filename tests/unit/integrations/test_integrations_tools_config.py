from __future__ import annotations

import pytest
from pydantic import ValidationError

from ari_agent.errors import ConfigError
from ari_agent.integrations.tools_config import (
    HttpToolSpec,
    ToolsConfig,
    demo_tools_config,
    docstring_example,
    load_tools_config_text,
)


def test_the_docstring_example_and_the_demo_tools_are_valid() -> None:
    example = load_tools_config_text(docstring_example())
    assert example.names() == ["confirm_appointment", "lookup_order", "record_write"]
    assert example.spec("lookup_order").request == "LookupOrderRequest"
    assert example.spec("lookup_order").effective_retries == 2
    assert example.secret_names() == ["BACKEND_TOKEN"]
    demo = demo_tools_config()
    assert set(demo.names()) == {"lookup_order", "get_appointment", "confirm_appointment", "reschedule_appointment",
                                 "verify_identity", "identity_record", "unlock_account", "faq", "send_confirmation",
                                 "record_write"}
    assert demo.secret_names() == []
    assert demo.spec("confirm_appointment").write and demo.spec("confirm_appointment").effective_retries == 0
    assert demo.spec("record_write").async_write
    assert demo.spec("send_confirmation").async_write and demo.spec("send_confirmation").request == \
        "SendConfirmationRequest"


def test_known_tool_names_get_their_contracts_by_default() -> None:
    cfg = ToolsConfig.model_validate({"definitions": {"faq": {"url": "{base_url}/faq/{topic}"}}})
    assert (cfg.spec("faq").request, cfg.spec("faq").response) == ("FaqRequest", "FaqResponse")


@pytest.mark.parametrize(("spec", "message"), [
    ({"url": "{base_url}/x"}, "contracts are required"),
    ({"url": "{base_url}/x", "request": "Nope", "response": "FaqResponse"}, "unknown contract"),
    ({"url": "{base_url}/faq/{subject}", "request": "FaqRequest", "response": "FaqResponse"}, "not a field"),
    ({"url": "{base_url}/faq?key=${secret:K}", "request": "FaqRequest", "response": "FaqResponse"},
     "headers only"),
    ({"url": "ftp://x", "request": "FaqRequest", "response": "FaqResponse"}, "must start with"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse", "write": True, "retries": 2},
     "reads only"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse", "async_write": True},
     "needs write"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse", "headers": {"A": "${env:X}"}},
     "unknown reference"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse",
      "headers": {"Idempotency-Key": "x"}}, "set by the runner"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse", "kind": "grpc"}, "'http'"),
    ({"url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse", "timeot_ms": 5}, "Extra"),
])
def test_bad_tool_specs_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpToolSpec.model_validate(spec)


def test_a_bad_file_names_the_line_and_key_path() -> None:
    text = """\
intents: []
tools:
  definitions:
    lookup_order:
      url: "{base_url}/orders/{order_number}"
      timeout_ms: -5
"""
    with pytest.raises(ConfigError) as info:
        load_tools_config_text(text, "map.yaml")
    err = info.value
    assert err.file == "map.yaml"
    assert err.key_path == "tools.definitions.lookup_order.timeout_ms"
    assert err.line == 6


def test_tool_names_are_snake_case() -> None:
    with pytest.raises(ValidationError, match="lower_snake_case"):
        ToolsConfig.model_validate({"definitions": {"Lookup-Order": {
            "url": "{base_url}/x", "request": "FaqRequest", "response": "FaqResponse"}}})
