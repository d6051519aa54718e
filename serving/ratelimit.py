"""Per-client rate limits: one token bucket per API key (per client address without keys).

Each bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second. The
cost rule: a LIME explanation (``POST /v1/explain?method=lime``) costs ``lime_cost`` tokens
(capped at ``burst``, so it can always pass on a full bucket); every other request costs 1.
Health checks and the web page's files cost nothing. A request the bucket cannot pay for
gets 429 ``rate_limited`` with ``Retry-After`` (whole seconds until the bucket holds its
cost) and is counted in ``dfd_rate_limited_total``.

State lives in the app, so with ``--workers N`` every worker process keeps its own buckets:
a client whose requests are spread over N workers gets up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.auth import CLIENT_STATE, is_open_path
from serving.errors import APIError, error_response

MAX_TRACKED_CLIENTS = 10_000  # beyond this, the least recently seen clients are forgotten


@dataclass
class TokenBucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class RateLimit:
    """``rate`` tokens per second into buckets of ``burst`` tokens; LIME costs ``lime_cost``."""

    rate: float
    burst: int
    lime_cost: int = 10

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.lime_cost < 1:
            raise ValueError(
                f"rate must be positive and burst, lime_cost at least 1; got rate={self.rate}, "
                f"burst={self.burst}, lime_cost={self.lime_cost}"
            )

    @property
    def refill_s(self) -> float:
        """Seconds an empty bucket takes to fill up."""
        return self.burst / self.rate

    def price(self, path: str, query_string: bytes) -> tuple[str, int]:
        """A request's kind (``lime`` or ``request``) and its cost in tokens (module docstring)."""
        if path == "/v1/explain":
            method = parse_qs(query_string.decode("latin-1")).get("method", ["cam"])[-1]
            if method.strip().lower() == "lime":
                return "lime", min(self.lime_cost, self.burst)
        return "request", 1


class RateLimiter:
    """The buckets of every client seen recently (least recently seen first)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, client: str, cost: int) -> float:
        """Spend ``cost`` tokens of ``client``'s bucket: 0.0 if paid, else seconds to wait."""
        now = self.clock()
        self._forget_idle(now)
        bucket = self.buckets.pop(client, None) or TokenBucket(float(self.limit.burst), now)
        self.buckets[client] = bucket  # now the most recently seen
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.limit.burst), bucket.tokens + elapsed * self.limit.rate)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.limit.rate

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled (the same as unseen) and any beyond the cap."""
        while self.buckets:
            client, oldest = next(iter(self.buckets.items()))
            full = now - oldest.updated >= self.limit.refill_s
            if not full and len(self.buckets) < MAX_TRACKED_CLIENTS:
                return
            del self.buckets[client]


def client_id(scope: Scope) -> str:
    """Who pays: the API key's name when keys are on, else the client address."""
    named = scope.get("state", {}).get(CLIENT_STATE)
    if named:
        return named
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:unknown"


def rate_limited(wait_s: float, cost: int, limit: RateLimit) -> APIError:
    retry_after = max(1, math.ceil(wait_s))
    return APIError(
        429,
        "rate_limited",
        f"rate limit of {limit.rate:g} tokens/s (bursts of {limit.burst}) reached; this request "
        f"costs {cost}; retry after {retry_after} s",
        {"Retry-After": str(retry_after)},
    )


class RateLimitMiddleware:
    """429 + ``Retry-After`` once a client's bucket cannot pay for its request."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, counter: Counter | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.counter = counter  # Counter labelled by cost kind (serving.metrics), or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self.limiter.limit
        kind, cost = limit.price(scope["path"], scope.get("query_string", b""))
        wait_s = self.limiter.take(client_id(scope), cost)
        if wait_s > 0:
            if self.counter is not None:
                self.counter.labels(kind).inc()
            await error_response(rate_limited(wait_s, cost, limit))(scope, receive, send)
            return
        await self.app(scope, receive, send)
