"""Gateway settings: the shared sections plus `gateway:` and `api:`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from hookline.settings import ComponentSettings, Section

__all__ = ["OPERATOR_TEAM", "ApiOptions", "ApiToken", "GatewayOptions", "GatewaySettings", "Scope"]

Scope = Literal["read", "write", "execute"]
#: The team of an operator token: it sees and writes every team.
OPERATOR_TEAM = "*"


class GatewayOptions(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Larger bodies get 413.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    produce_timeout_s: float = Field(5.0, gt=0, description="Longest wait for Kafka's ack before 503.")
    read_timeout_s: float = Field(30.0, gt=0, description="Slow clients are cut off after this.")
    sources: dict[str, str] = Field(
        default_factory=lambda: {"alertmanager": "alertmanager"},
        description="Source name (the {source} of /hooks/{source}) → source kind.",
    )


class ApiToken(Section):
    """A bearer token of the REST API, bound to one team (or `*`, every team) and its scopes."""

    name: str = Field(min_length=1, description="Who holds it; appears in logs instead of the token.")
    token: SecretStr = Field(min_length=16, description="The secret itself; at least 16 characters.")
    team: str = Field(min_length=1, max_length=200, description='The team it acts for; "*" for every team.')
    scopes: list[Scope] = Field(min_length=1, description="read, write (definitions), execute (start, cancel).")


class ApiOptions(Section):
    """The REST API under /api/v1. Without tokens every API request is refused with 401."""

    tokens: list[ApiToken] = Field(default_factory=list)
    page_size: int = Field(50, ge=1, le=500, description="Items per page when `limit` is not given.")
    max_page_size: int = Field(200, ge=1, le=1000)
    temporal_timeout_s: float = Field(10.0, gt=0, description="Longest wait for Temporal before 503.")
    query_timeout_s: float = Field(
        3.0, gt=0, description="Longest wait for a run's state query before falling back to its history."
    )
    write_timeout_s: float = Field(10.0, gt=0, description="Longest wait for a definition write before 503.")

    @model_validator(mode="after")
    def _distinct_tokens(self) -> ApiOptions:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("api.tokens: token names must be distinct")
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if len(set(secrets)) != len(secrets):
            # Two entries with one secret would make the token's team and scopes ambiguous.
            raise ValueError("api.tokens: two entries share the same token")
        return self


class GatewaySettings(ComponentSettings):
    gateway: GatewayOptions = GatewayOptions()
    api: ApiOptions = ApiOptions()
