"""Standard Webhooks (standardwebhooks.com): signed with `webhook-signature` over
`<webhook-id>.<webhook-timestamp>.<body>`, the timestamp within a tolerance, `webhook-id` as the
dedupe key and the payload's `type` as type suffix."""

from __future__ import annotations

from collections.abc import Callable

from gateway.sources.auth import Guard, StandardWebhooksSignature
from gateway.sources.config import StandardWebhooksConfig, signing_key
from gateway.sources.generic import JsonSource
from gateway.sources.ratelimit import TokenBucket

__all__ = ["StandardWebhooksSource"]


class StandardWebhooksSource(JsonSource):
    def __init__(
        self,
        name: str,
        config: StandardWebhooksConfig,
        *,
        limiter: TokenBucket | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        keys = [signing_key(ref) for ref in config.secrets]
        signature = (
            StandardWebhooksSignature(keys, config.tolerance_s, clock)
            if clock is not None
            else StandardWebhooksSignature(keys, config.tolerance_s)
        )
        super().__init__(name, config, guard=Guard(config.auth, signature), limiter=limiter)
