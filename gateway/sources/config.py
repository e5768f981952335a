"""How sources are configured: `gateway.sources` maps a name (the `{source}` of
`/hooks/{source}`) to a kind, or to an object with the kind and its options.

Secrets are never written inline by default: each is `{env: NAME}` or `{file: PATH}` (read once,
at start-up; trailing whitespace dropped), or `{value: ...}` for tests and local trials. Every
list of secrets may hold several, all valid at once, so a secret is rotated by adding the new
one, moving the senders over, then removing the old one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from hookline.settings import Section
from schemas.inputs import regex_errors

__all__ = [
    "AlertmanagerConfig",
    "AuthConfig",
    "BasicCredential",
    "CloudEventsConfig",
    "GithubConfig",
    "JsonConfig",
    "RateLimit",
    "SecretRef",
    "SourceConfig",
    "StandardWebhooksConfig",
    "TicksConfig",
    "source_config",
]

#: Headers that carry credentials: never kept on events, whatever `keep_headers` says.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-hub-signature", "x-hub-signature-256", "webhook-signature"}
)
MIN_SECRET_LENGTH = 16


class SecretRef(Section):
    """One secret: from an environment variable, a file, or (tests, trials) the value itself."""

    env: str | None = Field(None, min_length=1, description="Name of the environment variable holding it.")
    file: Path | None = Field(None, description="File holding it; trailing whitespace is dropped.")
    value: SecretStr | None = Field(None, description="The secret itself; prefer env or file.")
    _secret: SecretStr = PrivateAttr()

    @model_validator(mode="after")
    def _load(self) -> SecretRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret is exactly one of {env: NAME}, {file: PATH} or {value: ...}")
        if self.env is not None:
            text = os.environ.get(self.env)
            if text is None:
                raise ValueError(f"environment variable {self.env} is not set")
            where = f"environment variable {self.env}"
        elif self.file is not None:
            try:
                text = self.file.read_text("utf-8").rstrip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read secret file {self.file}: {exc.__class__.__name__}") from None
            where = f"file {self.file}"
        else:  # `value`, the one given (an empty text fails the length check below)
            text, where = (self.value.get_secret_value() if self.value is not None else ""), "value"
        if len(text) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret in {where} is shorter than {MIN_SECRET_LENGTH} characters")
        self._secret = SecretStr(text)
        return self

    @property
    def secret(self) -> SecretStr:
        return self._secret


class BasicCredential(Section):
    username: str = Field(min_length=1, pattern=r"^[^:]+$")
    password: SecretRef


class AuthConfig(Section):
    """Credentials a sender puts in `Authorization`, as Alertmanager's http_config can:
    `bearer` tokens, `basic` user/password pairs. Any one of them that matches is accepted."""

    bearer: list[SecretRef] = Field(default_factory=list)
    basic: list[BasicCredential] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> AuthConfig:
        if not self.bearer and not self.basic:
            raise ValueError("auth needs at least one bearer token or basic credential (omit auth for none)")
        return self


class RateLimit(Section):
    """A token bucket per gateway process; requests over it get 429 with Retry-After."""

    per_second: float = Field(gt=0)
    burst: int = Field(1, ge=1)


class _SourceConfig(Section):
    auth: AuthConfig | None = None
    rate_limit: RateLimit | None = None


class AlertmanagerConfig(_SourceConfig):
    kind: Literal["alertmanager"] = "alertmanager"

    @model_validator(mode="after")
    def _never_429(self) -> AlertmanagerConfig:
        if self.rate_limit is not None:
            raise ValueError("alertmanager sources take no rate_limit: Alertmanager drops a notification answered 429")
        return self


class _JsonFields(_SourceConfig):
    """Where a JSON source finds an event's attributes; fields are dotted paths into the body."""

    type: str = Field("dev.hookline.json", min_length=1, description="Event type, or its prefix (see type_field).")
    type_field: str | None = Field(None, description="Body field whose value is appended: `<type>.<value>`.")
    type_header: str | None = Field(None, description="Header whose value is appended (wins over type_field).")
    dedupe_field: str | None = Field(None, description="Body field holding the dedupe key.")
    dedupe_header: str | None = Field(None, description="Header holding the dedupe key (wins over dedupe_field).")
    subject_field: str | None = None
    partition_field: str | None = Field(None, description="Default: the dedupe key.")
    keep_headers: list[str] = Field(default_factory=list, description="Request headers kept on the event.")
    schema_file: Path | None = Field(None, description="JSON Schema (2020-12) the body must match.")
    _schema: dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self) -> _JsonFields:
        self.keep_headers = [h.lower() for h in self.keep_headers]
        refused = sorted(set(self.keep_headers) & SECRET_HEADERS)
        if refused:
            raise ValueError(f"keep_headers: {', '.join(refused)} carry credentials and are never kept")
        if self.schema_file is not None:
            try:
                schema = json.loads(self.schema_file.read_text("utf-8"))
                Draft202012Validator.check_schema(schema)
            except (OSError, ValueError) as exc:
                raise ValueError(f"schema_file {self.schema_file}: {exc}") from None
            except JsonSchemaError as exc:
                raise ValueError(f"schema_file {self.schema_file} is not a JSON Schema: {exc.message}") from None
            if errors := regex_errors(schema, "schema"):
                raise ValueError(f"schema_file {self.schema_file}: {errors[0]}")
            self._schema = schema
        return self

    @property
    def json_schema(self) -> dict[str, Any] | None:
        return self._schema


class JsonConfig(_JsonFields):
    kind: Literal["json"] = "json"


class GithubConfig(_JsonFields):
    kind: Literal["github"] = "github"
    secrets: list[SecretRef] = Field(min_length=1, description="The webhook secrets (X-Hub-Signature-256).")
    type: str = "com.github"
    type_header: str | None = "x-github-event"
    dedupe_header: str | None = "x-github-delivery"
    subject_field: str | None = "repository.full_name"
    keep_headers: list[str] = Field(
        default_factory=lambda: [
            "x-github-event",
            "x-github-delivery",
            "x-github-hook-id",
            "x-github-hook-installation-target-type",
            "x-github-hook-installation-target-id",
        ]
    )


class StandardWebhooksConfig(_JsonFields):
    kind: Literal["standard-webhooks"] = "standard-webhooks"
    secrets: list[SecretRef] = Field(min_length=1, description="Signing secrets, `whsec_<base64>`.")
    tolerance_s: int = Field(300, ge=1, description="Largest difference between webhook-timestamp and now.")
    type: str = "dev.hookline.webhook"
    type_field: str | None = "type"
    dedupe_header: str | None = "webhook-id"
    keep_headers: list[str] = Field(default_factory=lambda: ["webhook-id", "webhook-timestamp"])

    @model_validator(mode="after")
    def _base64_secrets(self) -> StandardWebhooksConfig:
        for i, ref in enumerate(self.secrets):
            try:
                signing_key(ref)
            except ValueError:
                raise ValueError(f"secrets[{i}] is not a whsec_<base64> signing secret") from None
        return self


class CloudEventsConfig(_SourceConfig):
    kind: Literal["cloudevents"] = "cloudevents"
    max_batch_events: int = Field(
        100, ge=1, description="Most events in one batched-mode request; a larger batch is answered 413."
    )


class TicksConfig(_SourceConfig):
    """`/ticks/{definition}` for an external scheduler: off unless enabled. `auth` ticks every
    team's schedules; `teams` binds credentials to one team each, which tick that team's only.
    With `teams`, a schedule is ticked only with its team's credentials or `auth`'s."""

    enabled: bool = False
    teams: dict[str, AuthConfig] = Field(
        default_factory=dict, description='Team ("default" for the default team) → credentials that tick its schedules.'
    )


def signing_key(ref: SecretRef) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`."""
    text = ref.secret.get_secret_value().removeprefix("whsec_")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


SourceConfig = Annotated[
    AlertmanagerConfig | JsonConfig | GithubConfig | StandardWebhooksConfig | CloudEventsConfig,
    Field(discriminator="kind"),
]


def source_config(value: Any) -> Any:
    """The plain form `{name: kind}` means the kind with its defaults."""
    return {"kind": value} if isinstance(value, str) else value
