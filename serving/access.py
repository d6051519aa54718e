"""The access-control middleware of an app, each off unless configured: CORS (Starlette's
``CORSMiddleware``), API keys (:mod:`serving.auth`), rate limits (:mod:`serving.ratelimit`).

Order, outermost first: CORS (so preflights and the 401 / 429 answers carry its headers),
then keys (the rate limit counts per key), then the rate limit.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from serving.auth import AuthMiddleware, KeyStore
from serving.config import ServerConfig
from serving.metrics import ServingMetrics
from serving.ratelimit import RateLimit, RateLimiter, RateLimitMiddleware

CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type")
CORS_EXPOSED = ("Retry-After", "WWW-Authenticate")
CORS_MAX_AGE_S = 600


def access_middleware(config: ServerConfig, metrics: ServingMetrics) -> list[Middleware]:
    """CORS, API-key and rate-limit middleware as configured (none by default)."""
    stack = []
    if config.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=list(CORS_METHODS),
                allow_headers=list(CORS_HEADERS),
                expose_headers=list(CORS_EXPOSED),
                max_age=CORS_MAX_AGE_S,
            )
        )
    if config.api_keys is not None:
        keys = KeyStore.from_file(config.api_keys)
        stack.append(Middleware(AuthMiddleware, keys=keys, failures=metrics.auth_failures))
    if config.rate_limit > 0:
        limit = RateLimit(config.rate_limit, config.rate_burst, config.rate_lime_cost)
        limiter = RateLimiter(limit)
        stack.append(Middleware(RateLimitMiddleware, limiter=limiter, counter=metrics.rate_limited))
    return stack
