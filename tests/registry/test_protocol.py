"""The plain protocol functions: header parsing, error bodies, URL redaction."""

from __future__ import annotations

import email.utils

from lockresolve.errors import RegistryErrorDetail
from lockresolve.registry.protocol import (
    parse_error_body,
    parse_link_next,
    parse_retry_after,
    parse_www_authenticate,
    redact_url,
)


def test_bearer_challenge_with_scope_and_error() -> None:
    ch = parse_www_authenticate(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"'
    )
    assert ch is not None
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.example/token"
    assert ch.service == "registry.example"
    assert ch.scopes == ("repository:a/b:pull,push", "repository:c:pull")
    assert ch.params["error"] == "insufficient_scope"


def test_basic_challenge_and_escaped_quotes() -> None:
    ch = parse_www_authenticate('Basic realm="Registry \\"Realm\\""')
    assert ch is not None
    assert ch.scheme == "basic"
    assert ch.realm == 'Registry "Realm"'
    assert parse_www_authenticate("") is None


def test_error_body_keeps_codes_messages_and_detail() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9.9"}}]}'
    assert parse_error_body(body) == [
        RegistryErrorDetail("MANIFEST_UNKNOWN", "manifest unknown", '{"Tag": "9.9"}')
    ]
    assert parse_error_body(b"<html>nope</html>") == []
    assert parse_error_body(b'{"errors": "x"}') == []


def test_link_next_is_resolved_against_the_request_url() -> None:
    url = "https://r.example/v2/a/tags/list?n=2"
    header = '</v2/a/tags/list?last=b&n=2>; rel="next"'
    assert parse_link_next(header, url) == "https://r.example/v2/a/tags/list?last=b&n=2"
    assert parse_link_next(None, url) is None
    assert parse_link_next('<x>; rel="prev"', url) is None


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == 7.0
    assert parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_redact_url_drops_userinfo_and_token_values() -> None:
    assert (
        redact_url("https://user:s3cret@r.example/v2/?token=abc&n=1")
        == "https://r.example/v2/?token=REDACTED&n=1"
    )
