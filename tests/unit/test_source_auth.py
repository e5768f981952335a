"""Per-source authentication: bearer and basic credentials as Alertmanager sends them, GitHub and
Standard Webhooks signatures over the raw bytes; several secrets valid at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.errors import InvalidCredentials, InvalidSignature, MissingCredentials, StaleTimestamp
from gateway.sources.auth import GithubSignature, Guard, StandardWebhooksSignature
from gateway.sources.config import AuthConfig

OLD, NEW = "old-token-0123456789", "new-token-0123456789"
BODY = b'{"action": "opened"}'
NOW = 1_800_000_000.0
KEY_OLD, KEY_NEW = b"k" * 24, b"n" * 24


def headers(**values: str) -> CIMultiDict[str]:
    return CIMultiDict({k.replace("_", "-"): v for k, v in values.items()})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth(**config: Any) -> Guard:
    return Guard(AuthConfig.model_validate(config))


BEARER = auth(bearer=[{"value": OLD}, {"value": NEW}])
BASIC = auth(basic=[{"username": "alertmanager", "password": {"value": OLD}}])


@pytest.mark.parametrize("token", [OLD, NEW])
def test_either_of_two_bearer_tokens_is_accepted_during_rotation(token: str) -> None:
    BEARER.check_headers(headers(Authorization=f"Bearer {token}"))


def test_the_bearer_scheme_name_is_case_insensitive() -> None:
    BEARER.check_headers(headers(Authorization=f"bearer {OLD}"))


@pytest.mark.parametrize("guard", [BEARER, BASIC], ids=["bearer", "basic"])
def test_no_credentials_is_401_with_a_challenge(guard: Guard) -> None:
    with pytest.raises(MissingCredentials) as info:
        guard.check_headers(headers())
    assert info.value.status == 401
    assert 'realm="hookline"' in info.value.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "value", [f"Bearer {OLD}x", "Bearer ", f"Token {OLD}", basic("alertmanager", OLD), "Bearer \u00e9\u00e9"]
)
def test_wrong_bearer_credentials_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(InvalidCredentials) as info:
        BEARER.check_headers(headers(Authorization=value))
    assert OLD not in info.value.detail and value not in info.value.detail
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_basic_credentials_as_alertmanager_sends_them() -> None:
    BASIC.check_headers(headers(Authorization=basic("alertmanager", OLD)))


@pytest.mark.parametrize(
    "value",
    [basic("alertmanager", NEW), basic("someone", OLD), "Basic not-base64!", f"Bearer {OLD}"],
    ids=["password", "user", "garbage", "other-scheme"],
)
def test_wrong_basic_credentials_are_refused(value: str) -> None:
    with pytest.raises(InvalidCredentials):
        BASIC.check_headers(headers(Authorization=value))


def test_a_source_without_auth_is_open() -> None:
    guard = Guard()
    assert guard.open
    guard.check_headers(headers())
    guard.check_body(headers(), BODY)


def github(secret: str, body: bytes = BODY) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


GITHUB = GithubSignature([OLD, NEW])


@pytest.mark.parametrize("secret", [OLD, NEW])
def test_github_signature_with_any_configured_secret_is_valid(secret: str) -> None:
    h = headers(X_Hub_Signature_256=github(secret))
    GITHUB.check_headers(h)
    GITHUB.verify(h, BODY)


def test_github_signature_over_other_bytes_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        GITHUB.verify(headers(X_Hub_Signature_256=github(OLD)), BODY + b" ")


@pytest.mark.parametrize("value", [github("wrong-secret-012345"), github(OLD)[7:], "sha1=abc", "sha256=\u00e9"])
def test_bad_github_signatures_are_401(value: str) -> None:
    with pytest.raises(InvalidSignature) as info:
        GITHUB.verify(headers(X_Hub_Signature_256=value), BODY)
    assert info.value.status == 401


def test_missing_github_signature_is_missing_credentials() -> None:
    with pytest.raises(MissingCredentials):
        GITHUB.check_headers(headers())


def standard(key: bytes, msg_id: str = "msg_1", stamp: float = NOW, body: bytes = BODY) -> str:
    digest = hmac.new(key, f"{msg_id}.{int(stamp)}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(signature: str, msg_id: str = "msg_1", stamp: float = NOW) -> CIMultiDict[str]:
    return headers(webhook_id=msg_id, webhook_timestamp=str(int(stamp)), webhook_signature=signature)


STANDARD = StandardWebhooksSignature([KEY_OLD, KEY_NEW], tolerance_s=300, clock=lambda: NOW)


@pytest.mark.parametrize("key", [KEY_OLD, KEY_NEW])
def test_standard_webhooks_signature_with_any_key_is_valid(key: bytes) -> None:
    h = standard_headers(standard(key))
    STANDARD.check_headers(h)
    STANDARD.verify(h, BODY)


def test_one_valid_signature_among_several_is_enough() -> None:
    h = standard_headers(f"v1,AAAA {standard(b'x' * 24)} v1a,whatever {standard(KEY_NEW)}")
    STANDARD.verify(h, BODY)


@pytest.mark.parametrize(
    "h",
    [
        standard_headers(standard(b"x" * 24)),
        standard_headers(standard(KEY_OLD, msg_id="msg_2")),
        standard_headers(standard(KEY_OLD).replace("v1,", "v2,")),
        standard_headers(standard(KEY_OLD, stamp=NOW - 1)),
    ],
    ids=["other-key", "other-id", "other-version", "other-timestamp"],
)
def test_standard_webhooks_signature_must_cover_id_timestamp_and_body(h: CIMultiDict[str]) -> None:
    with pytest.raises(InvalidSignature):
        STANDARD.verify(h, BODY)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamps_outside_the_tolerance_are_refused_before_the_body_is_read(offset: int) -> None:
    with pytest.raises(StaleTimestamp, match="tolerance is 300s") as info:
        STANDARD.check_headers(standard_headers(standard(KEY_OLD, stamp=NOW + offset), stamp=NOW + offset))
    assert info.value.status == 401


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_at_the_edge_of_the_tolerance_are_accepted(offset: int) -> None:
    STANDARD.check_headers(standard_headers(standard(KEY_OLD, stamp=NOW + offset), stamp=NOW + offset))


def test_a_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    h = standard_headers(standard(KEY_OLD))
    h["webhook-timestamp"] = "2026-11-24T10:00:00Z"
    with pytest.raises(InvalidSignature, match="Unix seconds"):
        STANDARD.check_headers(h)


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_standard_webhooks_header_is_required(drop: str) -> None:
    h = standard_headers(standard(KEY_OLD))
    del h[drop]
    with pytest.raises(MissingCredentials, match=drop):
        STANDARD.check_headers(h)


@pytest.mark.parametrize(
    "stamp", ["1" * 13, "9" * 400, "9" * 5000, "\u0661\u0662\u0663"], ids=["13", "400", "5000", "arabic"]
)
def test_a_timestamp_of_too_many_digits_is_an_invalid_signature_not_a_crash(stamp: str) -> None:
    h = standard_headers(standard(KEY_OLD))
    h["webhook-timestamp"] = stamp
    with pytest.raises(InvalidSignature, match="Unix seconds"):
        STANDARD.check_headers(h)


def test_a_webhook_id_with_a_non_utf8_byte_is_signed_as_its_raw_bytes() -> None:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: a 0xFF byte arrives as \udcff.
    msg_id = b"msg_\xff".decode("utf-8", "surrogateescape")
    digest = hmac.new(KEY_OLD, b"msg_\xff." + str(int(NOW)).encode() + b"." + BODY, hashlib.sha256).digest()
    h = standard_headers("v1," + base64.b64encode(digest).decode(), msg_id=msg_id)
    STANDARD.check_headers(h)
    STANDARD.verify(h, BODY)
    with pytest.raises(InvalidSignature):
        STANDARD.verify(h, BODY + b" ")
