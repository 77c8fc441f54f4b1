"""SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760), sans-I/O.

Server side: `NonceFactory` mints stateless nonces that every engine sharing the secret can
check, `build_challenges` writes WWW-Authenticate/Proxy-Authenticate values,
`parse_credentials` reads Authorization/Proxy-Authorization values and `verify` checks them
against a stored HA1 (we never hold a password) and a nonce-count store. Where that store is
shared by several engines (a network round trip), `authenticate` does the rest and the caller
awaits the count itself (`SharedNonceCountStore`). Client side, for our own REGISTERs and
probes: `parse_challenges` and `answer_challenge`.

Time is always an argument (`now`, seconds since the epoch: nonces travel between engines, so
it must be wall-clock time, not a per-process monotonic clock).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from telephony.sip.errors import ParseError, PeerError

Algorithm = Literal["MD5", "SHA-256"]

# Strongest first: servers list SHA-256 before MD5 (RFC 8760 §2.4) and clients pick the first
# they support.
ALGORITHMS: tuple[Algorithm, ...] = ("SHA-256", "MD5")
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def canonical_algorithm(name: str) -> Algorithm | None:
    """'sha-256' -> 'SHA-256'; None for algorithms we do not do (MD5-sess, SHA-512-256, ...)."""
    upper = name.strip().upper()
    if upper == "MD5":
        return "MD5"
    if upper == "SHA-256":
        return "SHA-256"
    return None


def _hash(algorithm: Algorithm, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _HASHES[algorithm](raw).hexdigest()


def _require_algorithm(name: str) -> Algorithm:
    algorithm = canonical_algorithm(name)
    if algorithm is None:
        raise ValueError(f"unsupported digest algorithm {name!r}")
    return algorithm


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(username:realm:password) in hex: the only form a SIP password is stored in."""
    return _hash(_require_algorithm(algorithm), f"{username}:{realm}:{password}")


def digest_response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest of RFC 7616 §3.4.1 (no qop: the RFC 2069 form).

    `qop` and `nc` are hashed exactly as the client wrote them, never re-formatted.
    """
    alg = _require_algorithm(algorithm)
    if qop is not None and qop.lower() == "auth-int":
        ha2 = _hash(alg, f"{method}:{uri}:{_hash(alg, body)}")
    else:
        ha2 = _hash(alg, f"{method}:{uri}")
    if qop is None:
        return _hash(alg, f"{ha1}:{nonce}:{ha2}")
    return _hash(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- nonces -----------------------------------------------------------------------------------


class NonceStatus(Enum):
    VALID = "valid"
    STALE = "stale"  # minted by us (MAC checks out) but too old, or too far in the future
    INVALID = "invalid"  # not ours: forged, truncated or mangled
    FORGED = "invalid"  # an alias of INVALID, for readers who think of it that way


class NonceChecker(Protocol):
    def check(self, nonce: str, now: float) -> NonceStatus: ...


_NONCE_HEAD = struct.Struct(">Q8s")  # issue time in ms, 8 random bytes
_NONCE_MAC_BYTES = 16
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of 16 + 16 bytes, unpadded


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class NonceFactory:
    """Stateless nonces: issue time + salt + HMAC-SHA256(secret, both).

    Any engine holding the secret verifies a nonce another engine issued, so a client may
    land anywhere behind the load balancer. The salt makes two nonces issued in the same
    millisecond differ, which matters because replay protection is keyed by nonce.
    `previous_secrets` are still accepted, so the secret can be rotated without a wave of 401s.
    """

    def __init__(
        self,
        secret: bytes,
        lifetime: float = 300,
        *,
        previous_secrets: Sequence[bytes] = (),
        clock_skew: float = 30,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self.lifetime = lifetime
        self.clock_skew = clock_skew
        self._secrets = (secret, *previous_secrets)
        self._token_bytes = token_bytes

    def issue(self, now: float) -> str:
        head = _NONCE_HEAD.pack(max(0, int(now * 1000)), self._token_bytes(8))
        return _b64url(head + self._mac(self._secrets[0], head))

    def check(self, nonce: str, now: float) -> NonceStatus:
        # base64 decoders skip junk and ignore the last character's spare bits, so several
        # strings decode to one nonce; accept only the canonical spelling, or the same nonce
        # could be replayed under another name past the nonce-count store.
        if not _NONCE_RE.fullmatch(nonce):
            return NonceStatus.INVALID
        raw = base64.urlsafe_b64decode(nonce + "=")
        if _b64url(raw) != nonce:
            return NonceStatus.INVALID
        head, mac = raw[: _NONCE_HEAD.size], raw[_NONCE_HEAD.size :]
        if not any(hmac.compare_digest(mac, self._mac(key, head)) for key in self._secrets):
            return NonceStatus.INVALID
        issued_ms, _salt = _NONCE_HEAD.unpack(head)
        age = now - issued_ms / 1000
        # A nonce from the future is ours (the MAC says so) but from an engine whose clock is
        # off: stale makes the client fetch a fresh one instead of failing outright.
        if age > self.lifetime or age < -self.clock_skew:
            return NonceStatus.STALE
        return NonceStatus.VALID

    @staticmethod
    def _mac(key: bytes, head: bytes) -> bytes:
        return hmac.new(key, head, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]


class NonceCountStore(Protocol):
    """Replay protection: per nonce, the nonce count must strictly increase.

    Called only after the digest response proved right, so a peer without the password cannot
    burn counts.
    """

    def accept(self, nonce: str, nc: int, *, now: float) -> bool: ...


class SharedNonceCountStore(Protocol):
    """`NonceCountStore` for a store behind a network round trip (Redis, shared by every engine
    of a deployment): the same contract, awaited, so the event loop keeps serving meanwhile.
    Use it with `authenticate` and `AuthResult.replayed`; an error (store unreachable) propagates,
    since accepting without the check could let a replay through."""

    async def accept(self, nonce: str, nc: int, *, now: float) -> bool: ...


class MemoryNonceCountStore:
    """Per-process `NonceCountStore`, bounded in time and size.

    An entry lives `ttl` seconds from the nonce's first use, which must cover the nonce
    lifetime (plus clock skew): past that the nonce is stale and never reaches the store.
    When full, the oldest entry goes first; size it above (authentications per second x ttl),
    as an evicted nonce's counts could be replayed until the nonce goes stale.
    """

    def __init__(self, *, ttl: float = 330, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # Insertion order is first-use order, which is expiry order: expiring is popping the front.
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def accept(self, nonce: str, nc: int, *, now: float) -> bool:
        while self._entries:
            first = next(iter(self._entries))
            if self._entries[first][1] > now:
                break
            del self._entries[first]
        entry = self._entries.get(nonce)
        if entry is None:
            self._entries[nonce] = (nc, now + self.ttl)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True
        last, expires = entry
        if nc <= last:
            return False
        self._entries[nonce] = (nc, expires)  # an update keeps the key's place in the order
        return True

    def __len__(self) -> int:
        return len(self._entries)


# --- header values ----------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_BARE_VALUE_RE = re.compile(r'[^\s,"]+')
_SPACE = " \t\r\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPED_RE = re.compile(r"\\(.)", re.DOTALL)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def quoted(self) -> str:
        # One regex match instead of a loop per character: credentials are parsed on every
        # authenticated REGISTER, so this is on the registrar's hot path.
        found = _QUOTED_RE.match(self.text, self.pos)
        if found is None:
            raise ParseError("unterminated quoted string in an auth header")
        self.pos = found.end()
        inner = found.group(1)
        return _ESCAPED_RE.sub(r"\1", inner) if "\\" in inner else inner


# The usual shape: one scheme, then `name=value` pairs separated by commas. Matched in one pass;
# anything else (several challenges in one value, odd spacing) goes to the general scanner.
_SIMPLE_ITEM_RE = re.compile(
    r"""[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=[ \t]*"""
    r"""(?:"(?:[^"\\]|\\.)*"|[^\s,"]+)[ \t]*(?:,[ \t]*|$))+)$""",
    re.DOTALL,
)
_SIMPLE_PARAM_RE = re.compile(
    r"""([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))"""
)


def _parse_auth_items(value: str) -> list[tuple[str, list[tuple[str, str]]]]:
    simple = _SIMPLE_ITEM_RE.match(value)
    if simple is not None and not value.rstrip().endswith(","):
        params = []
        for name, quoted_value, bare_value in _SIMPLE_PARAM_RE.findall(simple.group(2)):
            if quoted_value and "\\" in quoted_value:
                quoted_value = _ESCAPED_RE.sub(r"\1", quoted_value)
            params.append((name.lower(), quoted_value or bare_value))
        return [(simple.group(1), params)]
    return _parse_auth_items_scanning(value)


def _parse_auth_items_scanning(value: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Split a challenge or credentials value into (scheme, [(param, value)]) items.

    A comma followed by `token =` continues the current item; a comma followed by a bare token
    starts a new one (several challenges may share one header value, RFC 7235 §4.1).
    Parameter names come back lower-cased, quoted values unescaped.
    """
    scanner = _Scanner(value)
    items: list[tuple[str, list[tuple[str, str]]]] = []
    while True:
        scanner.skip(_SPACE + ",")  # empty list elements are allowed (RFC 7230 §7)
        if scanner.done():
            return items
        name = scanner.match(_TOKEN_RE)
        if name is None:
            raise ParseError(f"unexpected {scanner.peek()!r} in an auth header")
        scanner.skip(_SPACE)
        if scanner.peek() != "=":
            items.append((name, []))
            if scanner.done() or scanner.peek() == ",":
                continue
            name = scanner.match(_TOKEN_RE)
            if name is None:
                raise ParseError(f"unexpected {scanner.peek()!r} after the auth scheme")
            scanner.skip(_SPACE)
            if scanner.peek() != "=":
                raise ParseError("expected '=' after an auth parameter name")
        if not items:
            raise ParseError("an auth header must start with its scheme")
        scanner.pos += 1  # "="
        scanner.skip(_SPACE)
        if scanner.peek() == '"':
            param_value = scanner.quoted()
        else:
            param_value = scanner.match(_BARE_VALUE_RE)
            if param_value is None:
                raise ParseError(f"auth parameter {name!r} has no value")
        items[-1][1].append((name.lower(), param_value))
        scanner.skip(_SPACE)
        if not scanner.done() and scanner.peek() != ",":
            raise ParseError("auth parameters must be separated by commas")


def _params_dict(params: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, param_value in params:
        # Two different values for one directive could let a proxy and us read different
        # credentials; refuse rather than pick one.
        if name in result:
            raise ParseError(f"duplicate auth parameter {name!r}")
        result[name] = param_value
    return result


# --- server side ------------------------------------------------------------------------------


def build_challenges(
    realm: str,
    nonce: str,
    *,
    stale: bool = False,
    algorithms: Sequence[str] = ALGORITHMS,
    qop: str | None = "auth",
    opaque: str | None = None,
) -> list[str]:
    """One WWW-Authenticate (or Proxy-Authenticate) value per algorithm, in the order given.

    SHA-256 first, then MD5 for PBXs that predate RFC 8760. `qop=None` leaves qop out, for
    RFC 2069 clients; they can then only answer the MD5 challenge.
    """
    values = []
    for name in algorithms:
        parts = [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}"]
        if opaque is not None:
            parts.append(f"opaque={_quote(opaque)}")
        if stale:
            parts.append("stale=true")
        parts.append(f"algorithm={_require_algorithm(name)}")
        if qop:
            parts.append(f"qop={_quote(qop)}")
        values.append("Digest " + ", ".join(parts))
    return values


@dataclass(frozen=True)
class Credentials:
    """An Authorization or Proxy-Authorization value.

    For a scheme other than Digest only `scheme` and (when they parse) `params` are set: a
    request carrying one is answered with a fresh challenge (401), not a 400 (RFC 4475 §3.3.7).
    `nc_text` and `qop` are kept as sent because the response hashes them verbatim.
    """

    scheme: str
    username: str = ""
    realm: str = ""
    nonce: str = ""
    uri: str = ""
    response: str = ""
    algorithm: str = "MD5"
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: int | None = None
    nc_text: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name.lower()), None)


_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_REQUIRED = ("username", "realm", "nonce", "uri", "response")


# Remembers the last values parsed: the registrar and then the engine's trace both read one
# request's credentials, and the second read is then a dictionary lookup. `Credentials` is
# immutable, so sharing one is safe; errors are not cached.
@functools.lru_cache(maxsize=256)
def parse_credentials(value: str) -> Credentials:
    """Parse an Authorization/Proxy-Authorization value; anything malformed is ParseError(400)."""
    stripped = value.strip(_SPACE)
    scheme_match = _TOKEN_RE.match(stripped)
    if scheme_match is None:
        raise ParseError("an Authorization header needs a scheme")
    scheme = scheme_match.group()
    if scheme.lower() != "digest":
        try:
            items = _parse_auth_items(stripped)
            params = tuple(items[0][1]) if len(items) == 1 else ()
        except ParseError:
            params = ()  # token68 or other syntax we have no use for
        return Credentials(scheme=scheme, params=params)

    items = _parse_auth_items(stripped)
    if len(items) != 1:
        raise ParseError("one Authorization header value carries one set of credentials")
    params = _params_dict(items[0][1])
    missing = [name for name in _REQUIRED if name not in params]
    if missing:
        raise ParseError(f"Digest credentials lack {', '.join(missing)}")
    nc_text = params.get("nc")
    if nc_text is not None and not _NC_RE.fullmatch(nc_text):
        raise ParseError("nc must be 8 hex digits")
    return Credentials(
        scheme=scheme,
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm", "MD5").upper(),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
        qop=params.get("qop"),
        nc=int(nc_text, 16) if nc_text is not None else None,
        nc_text=nc_text,
        params=tuple(items[0][1]),
    )


class AuthFailure(Enum):
    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"
    WRONG_REALM = "wrong_realm"
    STALE_NONCE = "stale_nonce"
    BAD_NONCE = "bad_nonce"
    REPLAY = "replay"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class AuthResult:
    """What `verify` decided. `reason` is for our logs only; what the peer sees must depend on
    `ok` and `stale` alone (use `challenges_after`), so it cannot probe for usernames."""

    ok: bool
    reason: AuthFailure | None
    stale: bool
    username: str
    algorithm: Algorithm | None = None

    def replayed(self) -> AuthResult:
        """This result once the nonce-count store refused the count."""
        return AuthResult(
            ok=False, reason=AuthFailure.REPLAY, stale=False, username=self.username, algorithm=self.algorithm
        )


def nonce_count(creds: Credentials) -> int:
    """The count to check: without qop there is none, so the nonce is good for one request
    (count 0), and the client pays one more round trip for the next."""
    return creds.nc if creds.nc is not None else 0


# Stand-ins for the HA1 of a user who does not exist (see `verify`). Random per process so no
# response can be crafted against them; their value never decides anything anyway.
_DUMMY_HA1 = {"MD5": secrets.token_hex(16), "SHA-256": secrets.token_hex(32)}


def verify(
    creds: Credentials,
    *,
    method: str,
    ha1_lookup: Callable[[str, str], str | None],
    realm: str,
    nonces: NonceChecker,
    nc_store: NonceCountStore,
    now: float,
) -> AuthResult:
    """`authenticate`, then the replay check against `nc_store`."""
    result = authenticate(creds, method=method, ha1_lookup=ha1_lookup, realm=realm, nonces=nonces, now=now)
    if result.ok and not nc_store.accept(creds.nonce, nonce_count(creds), now=now):
        return result.replayed()
    return result


def authenticate(
    creds: Credentials,
    *,
    method: str,
    ha1_lookup: Callable[[str, str], str | None],
    realm: str,
    nonces: NonceChecker,
    now: float,
) -> AuthResult:
    """Check credentials against the stored HA1 for (username, algorithm): everything `verify`
    does but the replay check, which an `ok` result still needs (`nonce_count`, `replayed`).

    Unknown user: the response is still computed and compared, against a dummy HA1, so the
    work done, and with it the time taken, is the same as for a wrong password; the caller's
    `ha1_lookup` should take about the same time for a miss as for a hit (one indexed lookup).

    `stale` is set only when the response is right for an authentic nonce that expired: a
    wrong password with an old nonce must make the client ask the user again, not retry.
    qop=auth and, for MD5 only, the RFC 2069 form without qop are accepted; qop=auth-int is
    not (we never offer it). Whether `creds.uri` names this request is the caller's check
    (`uri_matches`).
    """

    def fail(reason: AuthFailure, algorithm: Algorithm | None = None) -> AuthResult:
        return AuthResult(ok=False, reason=reason, stale=False, username=creds.username, algorithm=algorithm)

    if not creds.is_digest:
        return fail(AuthFailure.UNSUPPORTED_SCHEME)
    algorithm = canonical_algorithm(creds.algorithm)
    if algorithm is None:
        return fail(AuthFailure.UNSUPPORTED_ALGORITHM)
    if creds.realm != realm:
        return fail(AuthFailure.WRONG_REALM, algorithm)
    qop = creds.qop.lower() if creds.qop is not None else None
    if qop is None:
        if algorithm != "MD5" or creds.nc is not None or creds.cnonce is not None:
            return fail(AuthFailure.MALFORMED, algorithm)
    elif qop != "auth" or creds.nc is None or not creds.cnonce:
        return fail(AuthFailure.MALFORMED, algorithm)

    nonce_status = nonces.check(creds.nonce, now)
    if nonce_status is NonceStatus.INVALID:
        return fail(AuthFailure.BAD_NONCE, algorithm)

    stored = ha1_lookup(creds.username, algorithm)
    expected = digest_response(
        algorithm=algorithm,
        ha1=stored if stored is not None else _DUMMY_HA1[algorithm],
        nonce=creds.nonce,
        method=method,
        uri=creds.uri,
        qop=creds.qop,
        nc=creds.nc_text,
        cnonce=creds.cnonce,
    )
    matches = hmac.compare_digest(expected.encode(), creds.response.lower().encode("utf-8", "replace"))
    if stored is None:
        return fail(AuthFailure.UNKNOWN_USER, algorithm)
    if not matches:
        return fail(AuthFailure.WRONG_PASSWORD, algorithm)
    if nonce_status is NonceStatus.STALE:
        return AuthResult(
            ok=False, reason=AuthFailure.STALE_NONCE, stale=True, username=creds.username, algorithm=algorithm
        )
    return AuthResult(ok=True, reason=None, stale=False, username=creds.username, algorithm=algorithm)


def challenges_after(
    result: AuthResult,
    *,
    realm: str,
    nonces: NonceFactory,
    now: float,
    algorithms: Sequence[str] = ALGORITHMS,
    qop: str | None = "auth",
    opaque: str | None = None,
) -> list[str]:
    """The challenges to send after a failed `verify`: built from `result.stale` and nothing
    else, so an unknown user and a wrong password get the same answer."""
    return build_challenges(
        realm, nonces.issue(now), stale=result.stale, algorithms=algorithms, qop=qop, opaque=opaque
    )


def _uri_key(uri: str) -> tuple[object, ...]:
    scheme, colon, rest = uri.strip().partition(":")
    if not colon:
        return (uri.strip(),)
    rest, _, headers = rest.partition("?")
    user, _, hostpart = rest.rpartition("@")
    host, *params = hostpart.split(";")
    return (scheme.lower(), user, host.lower(), frozenset(p.lower() for p in params if p), headers)


def uri_matches(digest_uri: str, request_uri: str) -> bool:
    """Does the credentials' `uri` name the Request-URI? (RFC 7616 §3.4.6.)

    Deliberately lenient (scheme and host case, parameter order): the response already binds
    `uri`, this check only stops credentials captured for one URI being used on another.
    """
    return _uri_key(digest_uri) == _uri_key(request_uri)


# --- client side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A WWW-Authenticate/Proxy-Authenticate challenge. `qop` holds the offered options."""

    scheme: str
    realm: str = ""
    nonce: str = ""
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    params: tuple[tuple[str, str], ...] = ()

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"


def _challenge(scheme: str, params: list[tuple[str, str]]) -> Challenge:
    if scheme.lower() != "digest":
        return Challenge(scheme=scheme, params=tuple(params))
    fields = _params_dict(params)
    if "realm" not in fields or "nonce" not in fields:
        raise ParseError("a Digest challenge needs realm and nonce")
    return Challenge(
        scheme=scheme,
        realm=fields["realm"],
        nonce=fields["nonce"],
        algorithm=fields.get("algorithm", "MD5").upper(),
        qop=tuple(q.strip().lower() for q in fields.get("qop", "").split(",") if q.strip()),
        opaque=fields.get("opaque"),
        stale=fields.get("stale", "").lower() == "true",
        params=tuple(params),
    )


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in one header value (several may share it, comma-separated)."""
    items = _parse_auth_items(value)
    if not items:
        raise ParseError("empty authentication challenge")
    return [_challenge(scheme, params) for scheme, params in items]


def parse_challenge(value: str) -> Challenge:
    """The one challenge in a header value; ParseError if there are none or several."""
    challenges = parse_challenges(value)
    if len(challenges) != 1:
        raise ParseError("expected exactly one challenge")
    return challenges[0]


def answer_challenge(
    challenge_value: str | Iterable[str],
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """An Authorization (or Proxy-Authorization) value answering the strongest challenge we can.

    `challenge_value` is one header value or all of them (a 401 may carry one per algorithm).
    qop=auth is preferred over auth-int (which hashes `body`); a challenge without qop gets the
    RFC 2069 answer. The caller supplies `cnonce` (random) and counts `nc` per nonce.
    """
    values = [challenge_value] if isinstance(challenge_value, str) else list(challenge_value)
    offered = [c for v in values for c in parse_challenges(v) if c.is_digest]
    usable = [(a, c) for c in offered if (a := canonical_algorithm(c.algorithm)) is not None]
    if not usable:
        raise PeerError("no Digest challenge with an algorithm we support (MD5, SHA-256)")
    algorithm, chosen = min(usable, key=lambda pair: ALGORITHMS.index(pair[0]))
    if not chosen.qop:
        qop = None
    elif "auth" in chosen.qop:
        qop = "auth"
    elif "auth-int" in chosen.qop:
        qop = "auth-int"
    else:
        raise PeerError(f"no qop we support among {chosen.qop}")
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=algorithm,
        ha1=ha1(algorithm, username, chosen.realm, password),
        nonce=chosen.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(chosen.realm)}",
        f"nonce={_quote(chosen.nonce)}",
        f"uri={_quote(uri)}",
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    if chosen.opaque is not None:
        parts.append(f"opaque={_quote(chosen.opaque)}")
    return "Digest " + ", ".join(parts)
