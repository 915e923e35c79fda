"""The redactor: which config values are secrets, and how they leave an upstream's error text."""

import orjson
from harness import make_config

from gateway_trio.adapters.replies import MAX_ERROR_CHARS, upstream_error_message
from gateway_trio.errors import UpstreamError
from gateway_trio.upstream.redaction import REDACTED, Redactor, configured_secrets


def test_every_kind_of_configured_secret_is_found():
    config = make_config(
        server={"master_key": "sk-master-redaction-0123", "response_id_secret": "response-secret-0123456"},
        database={"url": "postgresql://gw:db-password-77@db.internal:5432/gw"},
        models=[{"name": "m", "model": "openai/x", "api_key": "plain-token-1",
                 "headers": {"Authorization": "Bearer header-bearer-2", "x-tenant-key": "tenant-3x",
                             "content-type": "application/json"}}],
        guardrails=[{"name": "mod", "guardrail": "openai_moderation",
                     "params": {"api_key": "moderation-key-4", "api_base": "https://u:url-pass-5@mod.example/v1"}}],
    )
    found = configured_secrets(config)
    for secret in ("sk-master-redaction-0123", "response-secret-0123456", "db-password-77", "plain-token-1",
                   "Bearer header-bearer-2", "header-bearer-2", "tenant-3x", "moderation-key-4", "url-pass-5"):
        assert secret in found
    assert "application/json" not in found and "openai/x" not in found


def test_secrets_are_replaced_whole_longest_first_and_short_ones_left_alone():
    redactor = Redactor(["token-abc", "token-abc-longer", "abc"])
    assert redactor.text("sent token-abc-longer and token-abc; abc") == f"sent {REDACTED} and {REDACTED}; abc"
    assert Redactor().text("nothing to hide") == "nothing to hide"


def test_a_secret_cut_off_at_the_message_limit_loses_its_start_too():
    key = "opaque-credential-value-98765"
    message = "word " * ((MAX_ERROR_CHARS - 10) // 5) + f"{key} trailing"
    text = upstream_error_message(400, orjson.dumps({"error": {"message": message}}))
    assert len(text) == MAX_ERROR_CHARS and text.endswith(key[:10])  # the adapter cut it
    clean = Redactor([key]).text(text)
    assert clean.endswith(REDACTED) and key[:5] not in clean


def test_an_error_keeps_its_type_and_status_with_its_message_redacted():
    error = UpstreamError("bad key plain-token-1 given", upstream_status=401, retry_after=3)
    same = Redactor(["plain-token-1"]).error(error)
    assert same is error and error.status == 401 and error.retry_after == 3
    assert error.message == str(error) == f"bad key {REDACTED} given"
