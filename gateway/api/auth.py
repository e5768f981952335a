"""Bearer tokens of the REST API: each bound to a team (or every team) and to scopes.

Tokens are hashed once at start-up, so the table holds no secret; a presented token's digest is
compared with every configured one in constant time (`hmac.compare_digest`, no early exit), so
checking it takes the same time whatever it shares with a configured one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.errors import Forbidden, Unauthorized
from gateway.settings import OPERATOR_TEAM, ApiToken, Scope

__all__ = ["ANONYMOUS", "Principal", "TokenTable"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name (never the token), its team and scopes."""

    name: str
    team: str
    scopes: frozenset[Scope]

    @property
    def author(self) -> str:
        """How a write by this caller is signed: the token's name and its team."""
        return f"{self.name} (team {self.team})"

    @property
    def operator(self) -> bool:
        return self.team == OPERATOR_TEAM

    def sees(self, team: str) -> bool:
        """Whether this caller may read and write `team`'s definitions and executions."""
        return self.operator or team == self.team

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            have = ", ".join(sorted(self.scopes))
            raise Forbidden(f'token "{self.name}" has scopes [{have}]; this request needs "{scope}"')


#: The caller of the routes that need no token (the OpenAPI document).
ANONYMOUS = Principal("anonymous", "", frozenset())


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "backslashreplace")).digest()


class TokenTable:
    """The configured tokens by digest."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_digest = [
            (_digest(t.token.get_secret_value()), Principal(t.name, t.team, frozenset(t.scopes))) for t in tokens
        ]
        #: Per token name: its holder and the key that signs the holder's console sessions. The
        #: key derives from the token, so every gateway with the same tokens accepts a session,
        #: and replacing or removing a token ends the sessions signed in with it.
        self._session_keys = {
            principal.name: (principal, hmac.digest(digest, b"hookline console session", "sha256"))
            for digest, principal in self._by_digest
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an `Authorization` header; `Unauthorized` without a valid token."""
        if not authorization or not authorization.strip():
            raise Unauthorized("this request needs a bearer token: send `Authorization: Bearer <token>`")
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("the Authorization header must read `Bearer <token>`", invalid=True)
        presented = _digest(credentials.strip())
        principal = None
        for digest, candidate in self._by_digest:
            if hmac.compare_digest(digest, presented):
                principal = candidate
        if principal is None:
            raise Unauthorized("the bearer token is not valid", invalid=True)
        return principal

    def session_key(self, name: str) -> tuple[Principal, bytes] | None:
        """The holder of the token named `name` and the key its console sessions are signed with."""
        return self._session_keys.get(name)
