"""REGISTER (RFC 3261 §10) and trunk identification.

A trunk is identified by its digest username, or by the packet's source address for IP-whitelist
trunks — never by From, To, Contact or Via, which the sender writes as it likes. The address of
record is the trunk itself (its username at SIP_DOMAIN): bindings are stored per trunk id.

Answers (the product's troubleshooting guide tells customers to look for 401 and 403):
- no credentials → 401 with one challenge per algorithm in `SIP_DIGEST_ALGORITHMS` (MD5 and
  SHA-256), or MD5 alone for a User-Agent known to break on SHA-256 (`USER_AGENT_QUIRKS`);
- wrong password, unknown username and wrong realm → the *same* 403, so usernames cannot be
  probed (the reason goes to the trunk's status for the customer, and to support);
- an authentic but expired nonce with the right password → 401 stale=true;
- an invalid or replayed nonce, or a scheme other than Digest → a fresh 401;
- a suspended trunk → 403 "Trunk suspended" (only after its credentials were proven).
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from telephony import events as ev
from telephony.abuse import AbuseGuard
from telephony.config import EngineConfig, TrunkConfig
from telephony.location import Binding, LocationStore, NonceGuard
from telephony.sip import digest
from telephony.sip.errors import PeerError
from telephony.sip.headers import Contact
from telephony.sip.message import Request, Response, make_response
from telephony.transport import Peer

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO"


# MD5 first: many PBXs in the field (and sipp) answer only the first challenge and know only MD5.
# A client that supports SHA-256 can still pick the second (RFC 8760 §2.4 lets the server order
# them; `SIP_DIGEST_ALGORITHMS` puts SHA-256 first where every PBX is known to support it).
DEFAULT_ALGORITHMS = ("MD5", "SHA-256")


def parse_algorithms(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """'md5, sha-256' → ('MD5', 'SHA-256'); ValueError for an empty, unknown or repeated entry."""
    names = value.split(",") if isinstance(value, str) else list(value)
    algorithms = tuple(digest.canonical_algorithm(n) or "" for n in names if n.strip())
    if not algorithms or "" in algorithms or len(set(algorithms)) != len(algorithms):
        raise ValueError(f"digest algorithms must be MD5 and/or SHA-256, each once, not {value!r}")
    return algorithms


@dataclass(frozen=True)
class UserAgentQuirk:
    """Peers that fail on a standard offer, by User-Agent, as Kamailio and OpenSIPS deployments
    keep them. The User-Agent identifies no one: the answer is the same whatever the username."""

    user_agent: re.Pattern[str]  # matched at the start of the User-Agent header
    algorithms: tuple[str, ...]  # what to offer them, among the configured ones
    why: str


USER_AGENT_QUIRKS: tuple[UserAgentQuirk, ...] = (
    UserAgentQuirk(
        re.compile(r"baresip v?(?:[0-2]\.|3\.(?:[0-9]|1[01])\.)", re.IGNORECASE),
        ("MD5",),
        "libre before 3.12 (baresip/re#1103) aborts the whole authentication with ENOSYS at a "
        "SHA-256 challenge instead of answering the MD5 one (docs/interop.md)",
    ),
)


@dataclass
class RegistrarSettings:
    realm: str
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    refresh_report_interval: float = 30.0
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    quirks: tuple[UserAgentQuirk, ...] = USER_AGENT_QUIRKS

    def __post_init__(self) -> None:
        self.algorithms = parse_algorithms(self.algorithms)

    def algorithms_for(self, user_agent: str | None) -> tuple[str, ...]:
        """The challenges to offer a peer: the configured ones, narrowed by a quirk of its
        User-Agent (never to nothing: the operator's setting wins over the table)."""
        if user_agent:
            for quirk in self.quirks:
                if quirk.user_agent.match(user_agent):
                    narrowed = tuple(a for a in self.algorithms if a in quirk.algorithms)
                    return narrowed or self.algorithms
        return self.algorithms


@dataclass
class RegistrarStats:
    registers: int = 0
    challenges: int = 0
    auth_failures: int = 0
    registrations: int = 0
    refreshes: int = 0
    unregistrations: int = 0


@dataclass
class Registrar:
    settings: RegistrarSettings
    config: Callable[[], EngineConfig]
    store: LocationStore
    nonces: digest.NonceFactory
    nc_store: digest.NonceCountStore  # what INVITE checks use (calls/handler.py), per engine
    guard: AbuseGuard
    emit: Callable[[ev.EngineEvent], None]
    # REGISTER's replay check, shared by the engines of a deployment (telephony/shared_state.py);
    # None: `nc_store`.
    counts: digest.SharedNonceCountStore | None = None
    stats: RegistrarStats = field(default_factory=RegistrarStats)
    # Bindings this engine knows, to check Call-ID/CSeq without a store round trip and to
    # recognise INVITEs arriving on a registered flow.
    _known: dict[int, dict[str, Binding]] = field(default_factory=dict)
    _flows: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # After `warm`, a trunk missing from `_known` has no bindings: no store read per REGISTER.
    _warm: bool = False
    _refresh_reported: dict[int, float] = field(default_factory=dict)

    # --- REGISTER ------------------------------------------------------------------------------

    async def handle(self, request: Request, peer: Peer, now: float) -> Response:
        self.stats.registers += 1
        authorization = request.headers.get("Authorization")
        if authorization is None:
            trunk = self._ip_trunk(peer)
            if trunk is not None and not trunk.auth_username:
                if trunk.suspended:
                    return make_response(request, 403, "Trunk suspended", to_tag=_tag())
                return await self._bind(request, peer, trunk, now)
            return self._challenge(request, now, stale=False)
        try:
            creds = digest.parse_credentials(authorization)
        except PeerError:
            return make_response(request, 400, "Malformed Authorization")
        trunk = self.config().by_username.get(creds.username)
        result = digest.authenticate(
            creds,
            method="REGISTER",
            realm=self.settings.realm,
            nonces=self.nonces,
            now=now,
            ha1_lookup=lambda _user, algorithm: trunk.ha1(algorithm) if trunk is not None else None,
        )
        guard = None
        if result.ok:
            count = digest.nonce_count(creds)
            guard = self._nonce_guard(creds.nonce, count)
            if guard is None:
                if self.counts is not None:
                    accepted = await self.counts.accept(creds.nonce, count, now=now)
                else:
                    accepted = self.nc_store.accept(creds.nonce, count, now=now)
                if not accepted:
                    result = result.replayed()
        if not result.ok:
            return self._refuse(request, peer, trunk, result, now)
        if trunk.suspended:
            if not await self._fresh(guard, now):
                return self._refuse(request, peer, trunk, result.replayed(), now)
            return make_response(request, 403, "Trunk suspended", to_tag=_tag())
        return await self._bind(request, peer, trunk, now, guard)

    def _nonce_guard(self, nonce: str, count: int) -> NonceGuard | None:
        """The replay check as part of the binding writes, when the store can do both in one
        round trip (Redis); None: check it first (`counts.accept`)."""
        make = getattr(self.counts, "guard", None)
        if make is None or not getattr(self.store, "guarded_writes", False):
            return None
        return make(nonce, count)

    async def _fresh(self, guard: NonceGuard | None, now: float) -> bool:
        """For answers that write nothing: the replay check `guard` deferred, on its own."""
        return guard is None or await self._write([], [], guard)

    def _challenge(self, request: Request, now: float, *, stale: bool) -> Response:
        self.stats.challenges += 1
        algorithms = self.settings.algorithms_for(request.headers.get("User-Agent"))
        values = digest.build_challenges(
            self.settings.realm, self.nonces.issue(now), stale=stale, algorithms=algorithms
        )
        return make_response(request, 401, to_tag=_tag(), headers=[("WWW-Authenticate", v) for v in values])

    def _refuse(
        self, request: Request, peer: Peer, trunk: TrunkConfig | None, result: digest.AuthResult, now: float
    ) -> Response:
        reason = result.reason.value if result.reason else "unknown"
        if result.stale:
            return self._challenge(request, now, stale=True)
        if result.reason in (
            digest.AuthFailure.BAD_NONCE,
            digest.AuthFailure.REPLAY,
            digest.AuthFailure.UNSUPPORTED_SCHEME,
            digest.AuthFailure.UNSUPPORTED_ALGORITHM,
        ):
            return self._challenge(request, now, stale=False)
        self.stats.auth_failures += 1
        self.guard.record_auth_failure(peer.ip, now)
        self.emit(
            ev.RegisterAuthFailed(
                trunk_id=trunk.id if trunk else None,
                username=result.username[:128],
                reason=reason,
                source=f"{peer.ip}:{peer.port}",
                transport=peer.transport,
                user_agent=(request.headers.get("User-Agent") or "")[:256],
                at=now,
            )
        )
        # Identical for an unknown user, a wrong password and a wrong realm.
        return make_response(request, 403, "Forbidden", to_tag=_tag())

    def _ip_trunk(self, peer: Peer) -> TrunkConfig | None:
        trunks = self.config().trunks_for_source(peer.ip)
        return next((t for t in trunks if not t.suspended), trunks[0] if trunks else None)

    async def _bind(
        self, request: Request, peer: Peer, trunk: TrunkConfig, now: float, guard: NonceGuard | None = None
    ) -> Response:
        """Applies the REGISTER's contacts. With a `guard`, its nonce count is checked by the store
        with the writes, so every answer here waits for that check before it goes out."""
        try:
            contacts, wildcard = request.contacts, request.has_wildcard_contact
            header_expires = request.expires
        except PeerError as error:
            return await self._unless_replayed(
                make_response(request, error.status, error.reason, to_tag=_tag()),
                request,
                peer,
                trunk,
                guard,
                now,
            )
        known = await self._bindings(trunk.id, now)
        if wildcard or not contacts or any(_news_to(known, contact, peer) for contact in contacts):
            # Another engine process may hold bindings of this trunk that ours never saw (a new
            # Call-ID can land on any of them): read the shared store before listing or removing.
            # Refreshes, the bulk of the traffic, stay on the cached bindings.
            known = await self._reload(trunk.id, now)
        if wildcard:
            if header_expires != 0 or contacts:
                refusal = make_response(request, 400, "Contact * needs Expires: 0 alone", to_tag=_tag())
                return await self._unless_replayed(refusal, request, peer, trunk, guard, now)
            if not await self._write([], [(trunk.id, b.contact) for b in known.values()], guard):
                return self._refuse(request, peer, trunk, _REPLAYED, now)
            for binding in known.values():
                self._forget_flow(binding)
            known.clear()
            self._unregistered(trunk, peer, now)
            return self._ok(request, trunk, known, now)
        planned = self._plan(request, contacts, header_expires, known)
        if isinstance(planned, Response):
            return await self._unless_replayed(planned, request, peer, trunk, guard, now)
        updates = planned
        was_registered = bool(known)
        # A refresh re-registers contacts we already have from the same address; a new contact,
        # or one that moved (NAT rebinding, PBX restart), is news for the portal.
        changed_source = any(
            (previous := known.get(str(contact.uri))) is None
            or previous.source_ip != peer.ip
            or previous.source_port != peer.port
            for contact, expires in updates
            if expires
        )
        saves: list[Binding] = []
        removals: list[tuple[int, str]] = []
        # A contact listed twice ends as its last listing says (saves and removals are disjoint,
        # so the order the store applies them in does not matter).
        last = {str(contact.uri): (contact, expires) for contact, expires in updates}
        for uri, (contact, expires) in last.items():
            if expires == 0:
                removals.append((trunk.id, uri))
                continue
            saves.append(
                Binding(
                    trunk_id=trunk.id,
                    contact=uri,
                    expires_at=now + expires,
                    call_id=request.call_id,
                    cseq=request.cseq.number,
                    transport=peer.transport,
                    source_ip=peer.ip,
                    source_port=peer.port,
                    user_agent=(request.headers.get("User-Agent") or "")[:256],
                    registered_at=known[uri].registered_at if uri in known else now,
                    path=request.headers.get_all("Path"),
                    q=_q(contact),
                    flow=str(peer.flow or ""),
                )
            )
        if not await self._write(saves, removals, guard):
            return self._refuse(request, peer, trunk, _REPLAYED, now)
        for _, uri in removals:
            removed = known.pop(uri, None)
            if removed is not None:
                self._forget_flow(removed)
        for binding in saves:
            known[binding.contact] = binding
            self._claim_flow_of(binding)
        self._report(request, peer, trunk, known, updates, was_registered, changed_source, now)
        return self._ok(request, trunk, known, now)

    def _plan(
        self, request: Request, contacts: list[Contact], header_expires: int | None, known: dict[str, Binding]
    ) -> list[tuple[Contact, int]] | Response:
        """Each contact with its granted expiry (0: remove it), or the error answer."""
        updates: list[tuple[Contact, int]] = []
        for contact in contacts:
            try:
                expires = contact.expires
            except PeerError as error:
                return make_response(request, error.status, error.reason, to_tag=_tag())
            expires = header_expires if expires is None else expires
            expires = self.settings.default_expires if expires is None else expires
            if 0 < expires < self.settings.min_expires:
                return make_response(
                    request,
                    423,
                    "Interval Too Brief",
                    to_tag=_tag(),
                    headers=[("Min-Expires", str(self.settings.min_expires))],
                )
            previous = known.get(str(contact.uri))
            if (
                previous is not None
                and previous.call_id == request.call_id
                and request.cseq.number <= previous.cseq
            ):
                return make_response(
                    request, 500, "Out of order CSeq", to_tag=_tag(), headers=[("Retry-After", "1")]
                )
            updates.append((contact, min(expires, self.settings.max_expires)))
        return updates

    async def _write(
        self, saves: list[Binding], removals: list[tuple[int, str]], guard: NonceGuard | None
    ) -> bool:
        """Stores the changes; False if `guard` found the nonce count replayed (nothing written)."""
        if guard is not None:
            return await self.store.write_guarded(saves, removals, guard)  # type: ignore[attr-defined]
        for trunk_id, uri in removals:
            await self.store.remove(trunk_id, uri)
        for binding in saves:
            await self.store.save(binding)
        return True

    async def _unless_replayed(
        self,
        answer: Response,
        request: Request,
        peer: Peer,
        trunk: TrunkConfig,
        guard: NonceGuard | None,
        now: float,
    ) -> Response:
        """An answer that writes nothing still goes out only after the replay check."""
        if await self._fresh(guard, now):
            return answer
        return self._refuse(request, peer, trunk, _REPLAYED, now)

    def _report(
        self,
        request: Request,
        peer: Peer,
        trunk: TrunkConfig,
        known: dict[str, Binding],
        updates: list[tuple[Contact, int]],
        was_registered: bool,
        changed_source: bool,
        now: float,
    ) -> None:
        if not updates:
            return  # a query: nothing changed
        if not known:
            self._unregistered(trunk, peer, now)
            return
        newest = max(known.values(), key=lambda b: b.expires_at)
        if was_registered and not changed_source:
            self.stats.refreshes += 1
            # The portal shows the last refresh to the half-minute; one event per trunk per
            # interval keeps a refresh storm off the broker and the database.
            if now - self._refresh_reported.get(trunk.id, 0.0) >= self.settings.refresh_report_interval:
                self._refresh_reported[trunk.id] = now
                self.emit(
                    ev.TrunkRefreshed(
                        trunk_id=trunk.id,
                        source=f"{peer.ip}:{peer.port}",
                        expires=newest.expires_in(now),
                        at=now,
                    )
                )
            return
        self.stats.registrations += 1
        self._refresh_reported[trunk.id] = now
        self.emit(
            ev.TrunkRegistered(
                trunk_id=trunk.id,
                contact=newest.contact,
                source=f"{peer.ip}:{peer.port}",
                transport=peer.transport,
                user_agent=newest.user_agent,
                expires=newest.expires_in(now),
                at=now,
                warnings=tuple(diagnose(request, peer, trunk)),
            )
        )

    def _unregistered(self, trunk: TrunkConfig, peer: Peer, now: float) -> None:
        self.stats.unregistrations += 1
        self.emit(ev.TrunkUnregistered(trunk_id=trunk.id, source=f"{peer.ip}:{peer.port}", at=now))

    def _ok(self, request: Request, trunk: TrunkConfig, known: dict[str, Binding], now: float) -> Response:
        headers: list[tuple[str, object]] = [
            ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in known.values()
        ]
        headers += [("Path", p) for p in request.headers.get_all("Path")]
        headers += [("Date", _http_date(int(now))), ("Allow", ALLOW)]
        return make_response(request, 200, to_tag=_tag(), headers=headers)

    async def _bindings(self, trunk_id: int, now: float) -> dict[str, Binding]:
        known = self._known.get(trunk_id)
        if known is None:
            stored = [] if self._warm else await self.store.bindings(trunk_id, now=now)
            known = self._known[trunk_id] = {b.contact: b for b in stored}
        for uri in [u for u, b in known.items() if b.expires_at <= now]:
            del known[uri]
        return known

    async def _reload(self, trunk_id: int, now: float) -> dict[str, Binding]:
        stored = await self.store.bindings(trunk_id, now=now)
        known = self._known[trunk_id] = {b.contact: b for b in stored}
        for binding in stored:
            self._claim_flow_of(binding)
        return known

    def _claim_flow_of(self, binding: Binding) -> None:
        """A REGISTER that came through a proxy (it carries a Path, RFC 3327) was sent from the
        proxy's address, which every PBX behind that proxy shares: it identifies none of them,
        even before a second trunk registers through it (docs/interop.md, Kamailio)."""
        if not binding.path:
            self._claim_flow((binding.transport, binding.source_ip, binding.source_port), binding.trunk_id)

    def _claim_flow(self, flow: tuple[str, str, int], trunk_id: int) -> None:
        """One address that registers two trunks is a proxy or a shared gateway, not a PBX: an
        INVITE from it says nothing about its trunk, so it gets the 407 like any other."""
        owner = self._flows.get(flow)
        self._flows[flow] = trunk_id if owner in (None, trunk_id) else _SHARED_FLOW

    def _forget_flow(self, binding: Binding) -> None:
        self._flows.pop((binding.transport, binding.source_ip, binding.source_port), None)

    # --- expiry and lookups ----------------------------------------------------------------------

    async def sweep(self, now: float) -> int:
        """Claims expired bindings (once across engines) and reports the trunks left without any."""
        expired = await self.store.claim_expired(now=now)
        for binding in expired:
            self._forget_flow(binding)
            known = self._known.get(binding.trunk_id)
            if known is not None:
                known.pop(binding.contact, None)
            if not await self.store.bindings(binding.trunk_id, now=now):
                self.emit(ev.TrunkExpired(trunk_id=binding.trunk_id, contact=binding.contact, at=now))
        return len(expired)

    def trunk_on_flow(self, peer: Peer) -> int | None:
        """The trunk whose live registration came from this address (INVITEs on it skip the 407)."""
        owner = self._flows.get((peer.transport, peer.ip, peer.port))
        return None if owner == _SHARED_FLOW else owner

    async def locate(self, trunk_id: int, now: float) -> list[Binding]:
        return sorted((await self._bindings(trunk_id, now)).values(), key=lambda b: -b.expires_at)

    async def warm(self, now: float) -> int:
        """At start (and after a restart): load every live binding in one read, so REGISTERs and
        lookups never wait for the store, and rebuild the registered-flow index."""
        bindings = await self.store.all_bindings(now=now)
        self._known = {}
        for binding in bindings:
            self._known.setdefault(binding.trunk_id, {})[binding.contact] = binding
            self._claim_flow_of(binding)
        self._warm = True
        return len(bindings)

    def forget_trunk_cache(self, trunk_id: int) -> None:
        self._known.pop(trunk_id, None)


_SHARED_FLOW = -1  # `_flows` value for an address that registered several trunks
# What a guarded write that found its nonce count used is answered as (a fresh challenge).
_REPLAYED = digest.AuthResult(ok=False, reason=digest.AuthFailure.REPLAY, stale=False, username="")


@functools.lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    # One formatting per second, not per 200 OK.
    return formatdate(second, usegmt=True)


def _news_to(known: dict[str, Binding], contact: Contact, peer: Peer) -> bool:
    """Not a refresh of a binding this process holds: a new contact, or one from another address.

    A known contact re-registered from the same address under a new Call-ID (a PBX that starts a
    new registration per refresh, as sipp does) is treated as a refresh: the store gets the new
    binding either way, and reading it first would only refresh this process's list of the
    trunk's other contacts, which refreshes under one Call-ID do not read either.
    """
    binding = known.get(str(contact.uri))
    return binding is None or (binding.transport, binding.source_ip, binding.source_port) != (
        peer.transport,
        peer.ip,
        peer.port,
    )


def diagnose(request: Request, peer: Peer, trunk: TrunkConfig) -> list[str]:
    """Causes from the troubleshooting guide that this REGISTER shows, in the customer's words."""
    found = []
    if _is_public(peer.ip):
        private = [h for h in _announced_hosts(request) if _is_private(h)]
        if private:
            found.append(
                f"SIP ALG or NAT suspected: private address {private[0]} in Contact/Via "
                f"from public source {peer.ip}"
            )
    if trunk.transport != peer.transport:
        found.append(
            f"transport mismatch: the trunk is set to {trunk.transport.upper()}, "
            f"the PBX registered over {peer.transport.upper()}"
        )
    return found


def _announced_hosts(request: Request) -> list[str]:
    hosts = []
    try:
        hosts += [str(getattr(c.uri, "host", "")) for c in request.contacts]
        hosts.append(request.top_via.host)
    except PeerError:
        pass
    return [h.strip("[]") for h in hosts if h]


# Addresses that only exist behind NAT. Python's `is_private` also counts the documentation
# ranges, which are routable for this purpose, so the list is explicit.
_NAT_RANGES = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in _NAT_RANGES if net.version == address.version)


def _is_public(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (_is_private(ip) or address.is_loopback or address.is_unspecified or address.is_multicast)


def _q(contact: Contact) -> float | None:
    try:
        return contact.q
    except PeerError:
        return None


def _tag() -> str:
    # Unique, not secret (RFC 3261 §19.3): the fast generator, not the system's entropy pool.
    return f"{random.getrandbits(48):012x}"
