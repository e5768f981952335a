"""Per-source authentication: credentials in `Authorization` (bearer, basic) and signatures over
the raw body (GitHub, Standard Webhooks). Secrets are compared in constant time, several at once
(rotation), and never appear in an answer or a log line."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from gateway.errors import InvalidCredentials, InvalidSignature, MissingCredentials, StaleTimestamp
from gateway.sources.config import AuthConfig

__all__ = ["GithubSignature", "Guard", "Signature", "StandardWebhooksSignature"]

REALM = 'realm="hookline"'


def _digest(secret: str | bytes) -> bytes:
    # Comparing digests keeps the comparison's time independent of the presented length too.
    return hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()


def _matches(presented: bytes, known: Sequence[bytes]) -> bool:
    digest = _digest(presented)
    found = False
    for candidate in known:  # no early exit: every configured secret is compared
        found |= hmac.compare_digest(digest, candidate)
    return found


class Signature(Protocol):
    """A signature scheme: `check_headers` before the body is read, `verify` over its bytes."""

    challenge: str

    def check_headers(self, headers: Mapping[str, str]) -> None: ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...


class Guard:
    """What a request to one source must carry. Without credentials or a signature it is open."""

    def __init__(self, auth: AuthConfig | None = None, signature: Signature | None = None) -> None:
        self._bearer = [_digest(ref.secret.get_secret_value()) for ref in auth.bearer] if auth else []
        self._basic = (
            [_digest(f"{c.username}:{c.password.secret.get_secret_value()}") for c in auth.basic] if auth else []
        )
        self._signature = signature
        schemes = ([f"Bearer {REALM}"] if self._bearer else []) + (
            [f'Basic {REALM}, charset="UTF-8"'] if self._basic else []
        )
        self._challenge = ", ".join(schemes)
        self.open = not schemes and signature is None
        #: A signature is checked only once the body is read, after check_headers.
        self.signed = signature is not None

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Credentials and signature headers, before the body is read."""
        if self._challenge:
            self._credentials(headers.get("Authorization"))
        if self._signature is not None:
            self._signature.check_headers(headers)

    def check_body(self, headers: Mapping[str, str], body: bytes) -> None:
        if self._signature is not None:
            self._signature.verify(headers, body)

    def _credentials(self, authorization: str | None) -> None:
        if not authorization:
            raise MissingCredentials(
                "this source needs credentials in the Authorization header", challenge=self._challenge
            )
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        presented: bytes | None = None
        known: list[bytes] = []
        if scheme == "bearer" and self._bearer:
            presented = value.encode("utf-8", "surrogateescape")
            known = self._bearer
        elif scheme == "basic" and self._basic:
            try:
                presented = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                presented = None
            known = self._basic
        if presented is None or not _matches(presented, known):
            raise InvalidCredentials("the credentials are not valid for this source", challenge=self._challenge)


def _ascii(value: str) -> bytes | None:
    return value.encode() if value.isascii() else None


class GithubSignature:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with one of the secrets."""

    challenge = f'Signature {REALM}, headers="x-hub-signature-256"'

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [s.encode() for s in secrets]

    def check_headers(self, headers: Mapping[str, str]) -> None:
        if not headers.get("X-Hub-Signature-256"):
            raise MissingCredentials("missing X-Hub-Signature-256 header", challenge=self.challenge)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        presented = _ascii(headers.get("X-Hub-Signature-256", "").strip().lower())
        found = False
        if presented is not None and presented.startswith(b"sha256="):
            for key in self._keys:
                expected = b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
                found |= hmac.compare_digest(expected, presented)
        if not found:
            raise InvalidSignature("X-Hub-Signature-256 does not match the body", challenge=self.challenge)


#: Unix seconds have 10 digits until the year 2286; 12 leaves room and keeps int() cheap.
_MAX_STAMP_DIGITS = 12


class StandardWebhooksSignature:
    """Standard Webhooks: `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` of
    `<webhook-id>.<webhook-timestamp>.<body>`; the timestamp must be within the tolerance."""

    challenge = f'Signature {REALM}, headers="webhook-id webhook-timestamp webhook-signature"'
    _HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

    def __init__(self, keys: Sequence[bytes], tolerance_s: int, clock: Callable[[], float] = time.time) -> None:
        self._keys = list(keys)
        self._tolerance_s = tolerance_s
        self._clock = clock

    def check_headers(self, headers: Mapping[str, str]) -> None:
        missing = [h for h in self._HEADERS if not headers.get(h)]
        if missing:
            raise MissingCredentials(f"missing {', '.join(missing)} header(s)", challenge=self.challenge)
        stamp = headers["webhook-timestamp"].strip()
        # Bounded before int(): thousands of digits make int() or the float subtraction raise.
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_STAMP_DIGITS):
            raise InvalidSignature("webhook-timestamp must be Unix seconds", challenge=self.challenge)
        skew = self._clock() - int(stamp)
        if abs(skew) > self._tolerance_s:
            raise StaleTimestamp(
                f"webhook-timestamp is {abs(skew):.0f}s {'old' if skew > 0 else 'in the future'}; "
                f"the tolerance is {self._tolerance_s}s (check the sender's clock, or this is a replay)",
                challenge=self.challenge,
            )

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # aiohttp decodes header bytes with surrogateescape: re-encoding the same way signs the
        # exact bytes the sender sent, and a non-UTF-8 byte cannot make encode() raise.
        head = f"{headers['webhook-id']}.{headers['webhook-timestamp'].strip()}."
        try:
            signed = head.encode("utf-8", "surrogateescape") + body
        except UnicodeEncodeError:  # a surrogate no HTTP parser made: not a header anyone signed
            raise InvalidSignature("webhook-id is not valid text", challenge=self.challenge) from None
        expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self._keys]
        found = False
        for entry in headers["webhook-signature"].split():
            version, _, signature = entry.partition(",")
            presented = _ascii(signature)
            if version != "v1" or presented is None:
                continue  # other versions (v1a: asymmetric) are not ours to check
            for candidate in expected:
                found |= hmac.compare_digest(candidate, presented)
        if not found:
            raise InvalidSignature("no webhook-signature matches the request", challenge=self.challenge)
