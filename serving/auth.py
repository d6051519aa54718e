"""Optional API keys: a file of SHA-256 key hashes, ``Authorization: Bearer <key>`` checked by
a pure ASGI middleware.

The server never holds a key, only its hash. Key file: one ``sha256:<64 hex digits> [name]``
a line; blank lines and ``#`` comments are skipped; any other line stops the server from
starting, naming the file and the line. A presented key is hashed and compared with every
stored hash by :func:`hmac.compare_digest` (constant time, and no early exit on a match), so
neither the timing nor the order of the file tells an attacker anything.

``python -m serving.auth new [--name NAME]`` makes a key: the key goes to stderr (shown
once, keep it), its hash line to stdout (``>> keys.txt``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import APIError, error_response

HASH_PREFIX = "sha256:"
KEY_PREFIX = "dfd_"
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready", "/", "/openapi.json")  # without a key
OPEN_PREFIXES = ("/static/",)  # the web page's files: it asks for the key itself
CLIENT_STATE = "dfd_client"  # scope["state"] entry: who is asking (rate limits count per client)
_LINE = re.compile(r"sha256:([0-9a-f]{64})(?:\s+(\S.*))?")


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class StoredKey:
    digest: bytes
    name: str


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored in the key file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe, with a recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_line(key: str, name: str = "") -> str:
    return f"{HASH_PREFIX}{hash_key(key)}" + (f" {name}" if name else "")


def parse_key_lines(lines: Sequence[str], source: str) -> tuple[StoredKey, ...]:
    """Stored keys from key-file lines; :class:`KeyFileError` for a bad line or no key."""
    keys = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise KeyFileError(  # the line is not echoed: it may be a key pasted by mistake
                f"{source}, line {number}: expected 'sha256:<64 lowercase hex digits> [name]' "
                f"(python -m serving.auth new prints one), got {len(line)} characters "
                f"starting {line[:7]!r}"
            )
        digest, name = match.groups()
        keys.append(StoredKey(bytes.fromhex(digest), name or f"key-{digest[:8]}"))
    if not keys:
        raise KeyFileError(f"{source}: no key hash in the file, so nobody could use the API")
    return tuple(keys)


class KeyStore:
    """The accepted key hashes; :meth:`match` names the key a request presented."""

    def __init__(self, keys: Sequence[StoredKey]) -> None:
        self.keys = tuple(keys)

    @classmethod
    def from_file(cls, path: Path) -> KeyStore:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read the API key file {path}: {exc}") from None
        return cls(parse_key_lines(text.splitlines(), str(path)))

    def match(self, key: str) -> str | None:
        """The name of the stored key equal to ``key``, or None; every hash is compared."""
        presented = hashlib.sha256(key.encode("utf-8")).digest()
        found = None
        for stored in self.keys:
            if hmac.compare_digest(presented, stored.digest) and found is None:
                found = stored.name
        return found


def is_open_path(path: str) -> bool:
    """Health checks and the web page's own files answer without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def unauthorized(code: str, message: str, challenge: str) -> APIError:
    return APIError(401, code, message, {"WWW-Authenticate": challenge})


def bearer_token(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class AuthMiddleware:
    """401 ``missing_api_key`` / ``invalid_api_key`` (with ``WWW-Authenticate``) for API routes
    without a valid key; the key's name goes to ``scope["state"]["dfd_client"]``."""

    def __init__(self, app: ASGIApp, keys: KeyStore, failures: Counter | None = None) -> None:
        self.app = app
        self.keys = keys
        self.failures = failures  # Counter labelled by reason (serving.metrics), or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        name = self.keys.match(token) if token is not None else None
        if name is None:
            error = (
                unauthorized("missing_api_key", "this server needs an API key: send "
                             "'Authorization: Bearer <key>'", 'Bearer realm="dfd"')
                if token is None
                else unauthorized("invalid_api_key", "the API key is not valid",
                                  'Bearer realm="dfd", error="invalid_token"')
            )  # fmt: skip
            if self.failures is not None:
                self.failures.labels(error.code).inc()
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})[CLIENT_STATE] = f"key:{name}"
        await self.app(scope, receive, send)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m serving.auth new [--name NAME]``: a new key (stderr) and its hash line."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.auth", description="Create API keys for python -m serving."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "new",
        help="print a new key (stderr, shown once) and its hash line (stdout: >> keys.txt)",
    )
    create.add_argument("--name", default="", help="label stored after the hash (no spaces)")
    args = parser.parse_args(argv)
    if any(char.isspace() for char in args.name):
        parser.error("--name must not contain spaces")
    key = new_key()
    print(f"API key (give it to the client; it is not stored anywhere): {key}", file=sys.stderr)
    print(hash_line(key, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
