"""The http runner: calls an agent's HTTP endpoint with the step context as the JSON body.

SSRF guard: every address a request would connect to is checked after DNS resolution, and the
connection goes to exactly the address that was checked (the guard is the session's resolver,
so there is no second lookup to race). Loopback, link-local (cloud metadata), private, shared
and reserved ranges are refused unless allow-listed (`runner_settings.http.allow`), also when
wrapped in IPv6 (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, IPv4-compatible). Redirects
are followed by hand, each hop through the same guard, so none can cross that boundary; a hop
to another origin (scheme, host or port) goes without the Authorization, Proxy-Authorization
and Cookie headers.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any, ClassVar, Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from pydantic import AnyHttpUrl, Field
from yarl import URL

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import StepFailed, WorkerError, timed_out
from worker.runners.base import ConfiguredRunner, OutputBuffer, RunnerOptions, agent_options, step_context

__all__ = ["AddressBlocked", "GuardedResolver", "HttpOptions", "HttpRunner", "HttpSettings", "blocked_reason"]

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
_REDIRECTS = {301, 302, 303, 307, 308}
_RETRYABLE_STATUS = {408, 425, 429}
#: Credentials meant for the agent's own origin: not sent on after a redirect to another one.
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}


class AddressBlocked(WorkerError):
    """The request would reach an address agents may not reach."""


_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through: IPv4-mapped, 6to4 (2002::/16), NAT64
    (64:ff9b::/96) and IPv4-compatible (::/96) addresses all lead to their IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if (address in _NAT64 or address in _IPV4_COMPATIBLE) and int(address) > 1:  # not :: or ::1
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: IPAddress, allow: list[Network]) -> bool:
    return any(address in net for net in allow if net.version == address.version)


def blocked_reason(address: IPAddress, allow: list[Network]) -> str | None:
    """Why `address` may not be reached (None: it may). Allow-listed networks win. An IPv6
    address that wraps an IPv4 one is judged as that IPv4 address."""
    if _allowed(address, allow):
        return None
    if isinstance(address, IPv6Address):
        if address in _NAT64_LOCAL:  # where the IPv4 address sits is the site's choice
            return "not globally routable"
        address = _embedded_ipv4(address) or address
        if _allowed(address, allow):
            return None
    for reason, hit in (
        ("loopback", address.is_loopback),
        ("link-local, cloud metadata", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if hit:
            return reason
    return None


def _refusal(host: str, address: str, reason: str) -> AddressBlocked:
    return AddressBlocked(
        f"{host} resolves to {address} ({reason}), which agents may not reach; "
        "allow-list trusted internal agents in worker.runner_settings.http.allow"
    )


class GuardedResolver(AbstractResolver):
    """Resolves through `inner`, keeping only the addresses the guard lets through."""

    def __init__(self, allow: list[Network], inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept = [r for r in results if blocked_reason(ip_address(r["host"]), self._allow) is None]
        if not kept and results:
            first = results[0]["host"]
            raise _refusal(host, first, blocked_reason(ip_address(first), self._allow) or "blocked")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class HttpOptions(RunnerOptions):
    """Agent `options:` of the http runner."""

    url: AnyHttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Literal["context", "input", "none"] = Field(
        "context", description="context: {workflow_id, step, compensation, input, event}; input: the input alone."
    )


class HttpSettings(RunnerOptions):
    """Worker `runner_settings.http:`."""

    allow: list[Network] = Field(default_factory=list, description="Networks (CIDR) of trusted internal agents.")
    max_redirects: int = Field(5, ge=0)
    connect_timeout_s: float = Field(10.0, gt=0)


def _shown(url: URL) -> str:
    """The URL for messages: no credentials, no query (either may hold a secret)."""
    return str(url.with_user(None).with_query(None).with_fragment(None))


class HttpRunner(ConfiguredRunner[HttpSettings, HttpOptions]):
    kind: ClassVar[str] = "http"
    settings_model = HttpSettings
    options_model = HttpOptions

    def __init__(
        self, *, output_cap_bytes: int, settings: HttpSettings, resolver: AbstractResolver | None = None
    ) -> None:
        super().__init__(output_cap_bytes=output_cap_bytes, settings=settings)
        self._inner_resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def check(self, agent: Agent) -> HttpOptions:
        """An HTTP agent has no command: its options say what to request."""
        return agent_options(HttpOptions, agent)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = GuardedResolver(self._settings.allow, self._inner_resolver)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver),
                # Proxies from the environment would move the connection out of the guard's sight.
                trust_env=False,
                # One session serves every agent: a cookie one endpoint sets must not reach another.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, agent: Agent, options: HttpOptions, request: StepRequest) -> StepResult:
        payload: Any = {"context": step_context(request), "input": request.input, "none": None}[options.body]
        method: str = options.method
        url = URL(str(options.url))
        headers = dict(options.headers)
        timeout = aiohttp.ClientTimeout(total=agent.timeout_s, connect=self._settings.connect_timeout_s)
        try:
            async with asyncio.timeout(agent.timeout_s):
                for _ in range(self._settings.max_redirects + 1):
                    self._check_literal(url)
                    async with self._client().request(
                        method,
                        url,
                        json=payload if method != "GET" else None,
                        headers=headers,
                        allow_redirects=False,
                        timeout=timeout,
                    ) as response:
                        if response.status in _REDIRECTS and "Location" in response.headers:
                            target, method, payload = self._next_hop(response, method, payload)
                            if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                                # Another scheme, host or port: the agent's credentials stay behind
                                # (for the rest of the chain, even should it come back).
                                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                            url = target
                            continue
                        return await self._outcome(response, method)
        except AddressBlocked as exc:
            raise StepFailed(str(exc), retryable=False, kind="Blocked") from None
        except TimeoutError:
            raise timed_out(agent.timeout_s) from None
        except aiohttp.ClientError as exc:
            raise StepFailed(
                f"{method} {_shown(url)}: {type(exc).__name__}: {exc}", retryable=True, kind="Connection"
            ) from None
        raise StepFailed(
            f"more than {self._settings.max_redirects} redirects from {_shown(URL(str(options.url)))}",
            retryable=False,
            kind="TooManyRedirects",
        )

    def _check_literal(self, url: URL) -> None:
        """IP literals skip the resolver: check them here; names are checked when resolved."""
        if url.scheme not in {"http", "https"}:
            raise AddressBlocked(f"redirect to a {url.scheme!r} URL refused; only http and https")
        try:
            address = ip_address((url.host or "").strip("[]"))
        except ValueError:
            return
        reason = blocked_reason(address, self._settings.allow)
        if reason is not None:
            raise _refusal(url.host or "", str(address), reason)

    @staticmethod
    def _next_hop(response: aiohttp.ClientResponse, method: str, payload: Any) -> tuple[URL, str, Any]:
        target = response.url.join(URL(response.headers["Location"]))
        if response.status == 303 or (response.status in {301, 302} and method == "POST"):
            return target, "GET", None
        return target, method, payload

    async def _outcome(self, response: aiohttp.ClientResponse, method: str) -> StepResult:
        output = OutputBuffer(self._cap)
        async for chunk in response.content.iter_chunked(65536):
            output.add(chunk)
            if output.full:
                output.add(await response.content.read(1))  # anything past the cap marks it truncated
                break
        if response.status < 300:
            return StepResult(exit_code=0, output=output.text(), output_truncated=output.truncated)
        status = response.status
        raise StepFailed(
            f"{method} {_shown(response.url)} answered {status} {response.reason or ''}".rstrip(),
            retryable=status >= 500 or status in _RETRYABLE_STATUS,
            output=output.text(),
            kind="HttpStatus",
        )
