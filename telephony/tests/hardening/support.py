"""Helpers for the hardening tests: engines on a chosen location store, crafted REGISTERs,
private Redis/PostgreSQL instances (never the shared ones: other engineers test against those)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from telephony.config import ConfigWatcher, EngineConfig, build_config
from telephony.engine import Engine, EngineSettings
from telephony.event_sink import EventSink
from telephony.location import LocationStore, SqliteLocationStore
from telephony.sip import digest
from telephony.tests.support.engine_runner import REALM, EngineThread

ROOT = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
NONCE_SECRET = b"n" * 32  # what EngineThread gives every engine


def trunk_row(trunk_id: int, *, username: str | None, password: str = "", allowed_ips=(), **extra) -> dict:
    return {
        "id": trunk_id,
        "tenant_id": 1,
        "name": f"trunk {trunk_id}",
        "pbx_domain": "pbx.example.test",
        "auth_username": username,
        "ha1_md5": digest.ha1("MD5", username, REALM, password) if username else "",
        "ha1_sha256": digest.ha1("SHA-256", username, REALM, password) if username else "",
        "allowed_ips": list(allowed_ips),
        **extra,
    }


def static_config(rows: list[dict], version: int = 1) -> Callable[[], EngineConfig]:
    config = build_config(rows, version=version)
    return lambda: config


class StoreEngineThread(EngineThread):
    """EngineThread on a location store of the test's choosing (one file shared by two engines, say)."""

    def __init__(self, var_dir: Path, *, store_factory: Callable[[], LocationStore] | None = None, **kw):
        super().__init__(var_dir, **kw)
        self._store_factory = store_factory or (lambda: SqliteLocationStore(var_dir / "loc.sqlite3"))

    async def _start(self):
        settings = EngineSettings(
            realm=REALM,
            host="127.0.0.1",
            port=0,
            tls_port=0 if self._tls else None,
            var_dir=self.var_dir,
            nonce_secret=NONCE_SECRET,
            heartbeat_interval=3600,
            **self._settings,
        )
        self.engine = Engine(
            settings,
            store=self._store_factory(),
            watcher=ConfigWatcher(load=self._load, read_version=self._read_version, poll_interval=0.1),
            sink=EventSink(send=self._send_events, interval=0.05),
        )
        return await self.engine.start()


# --- crafted SIP ---------------------------------------------------------------------------------


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def first(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None


def parse_response(data: bytes) -> SipResponse:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return SipResponse(int(status), reason, headers)


class UdpPhone:
    """A blocking UDP SIP client on 127.0.0.1 with a fixed source port: one REGISTER, one answer."""

    def __init__(self, server: tuple[str, int], *, user_agent: str = "HardeningPBX/1.0") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.user_agent = user_agent

    def close(self) -> None:
        self.sock.close()

    def register(
        self,
        user: str = "probe",
        *,
        authorization: str | None = None,
        expires: int = 300,
        contact_user: str | None = None,
        timeout: float = 3.0,
    ) -> SipResponse | None:
        """Sends one REGISTER; None when no answer came within `timeout` (dropped)."""
        self.cseq += 1
        host, port = self.server
        lines = [
            f"REGISTER sip:{REALM} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{REALM}>;tag={uuid.uuid4().hex[:8]}",
            f"To: <sip:{user}@{REALM}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{contact_user or user}@127.0.0.1:{self.port}>",
            f"Expires: {expires}",
            f"User-Agent: {self.user_agent}",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += ["Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(lines).encode(), (host, port))
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65535)
                response = parse_response(data)
                if response.status >= 200:  # skip a 100 Trying, should one come
                    return response
        except TimeoutError:
            return None

    def invite(
        self, number: str, *, proxy_authorization: str | None = None, timeout: float = 3.0
    ) -> SipResponse | None:
        """Sends one INVITE (no SDP) in a dialog of its own and ACKs the final answer."""
        self.cseq += 1
        call_id, branch, tag = uuid.uuid4().hex, f"z9hG4bK{uuid.uuid4().hex[:16]}", uuid.uuid4().hex[:8]
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport"
        common = [
            "Max-Forwards: 70",
            f"From: <sip:pbx@{REALM}>;tag={tag}",
            f"Call-ID: {call_id}",
        ]
        lines = [f"INVITE {self.invite_uri(number)} SIP/2.0", via, *common, f"To: <sip:{number}@{REALM}>"]
        lines += [f"CSeq: {self.cseq} INVITE", f"Contact: <sip:pbx@127.0.0.1:{self.port}>"]
        lines += [f"User-Agent: {self.user_agent}"]
        if proxy_authorization:
            lines.append(f"Proxy-Authorization: {proxy_authorization}")
        self.sock.sendto("\r\n".join([*lines, "Content-Length: 0", "", ""]).encode(), self.server)
        self.sock.settimeout(timeout)
        try:
            while True:
                response = parse_response(self.sock.recv(65535))
                if response.status >= 200 and response.first("Call-ID") == call_id:
                    break
        except TimeoutError:
            return None
        ack = [f"ACK {self.invite_uri(number)} SIP/2.0", via, *common, f"To: {response.first('To')}"]
        ack += [f"CSeq: {self.cseq} ACK", "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(ack).encode(), self.server)
        return response

    @staticmethod
    def invite_uri(number: str) -> str:
        return f"sip:{number}@{REALM}"

    def login(self, user: str, password: str, *, nc: int = 1) -> tuple[SipResponse | None, str]:
        """REGISTER → 401 → REGISTER with credentials; returns the final answer and the Authorization."""
        challenge = self.register(user)
        assert challenge is not None and challenge.status == 401, challenge
        authorization = answer(challenge, user, password, nc=nc)
        return self.register(user, authorization=authorization), authorization


def answer(challenge: SipResponse, user: str, password: str, *, nc: int = 1, nonce: str | None = None) -> str:
    values = challenge.all("WWW-Authenticate")
    if nonce is not None:
        values = [re.sub(r'nonce="[^"]*"', f'nonce="{nonce}"', v) for v in values]
    return digest.answer_challenge(
        values, method="REGISTER", uri=f"sip:{REALM}", username=user, password=password,
        cnonce=uuid.uuid4().hex[:12], nc=nc,
    )  # fmt: skip


# --- private backing services ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class PrivateRedis:
    """A throw-away redis-server on a free port: the fault tests stop and start this one only."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir)]
        args += ["--daemonize", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self.ping, timeout=15), "private redis did not start"
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class PrivatePostgres:
    """A private PostgreSQL 15 cluster on a free port, owned by the postgres OS user."""

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self, workdir: Path) -> None:
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.workdir = workdir

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd="/tmp", check=False
        )

    def init(self) -> PrivatePostgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            os.chmod(self.workdir, 0o755)
        run = self._run(str(self.BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust")
        assert run.returncode == 0, run.stderr
        return self

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        # -l: the server must not inherit our pipes, or reading them would wait for it to exit.
        log = str(self.workdir / "postgres.log")
        run = self._run(
            str(self.BIN / "pg_ctl"), "-D", str(self.datadir), "-o", options, "-l", log, "-w", "start"
        )
        assert run.returncode == 0, run.stderr + run.stdout
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


class Stack:
    """A private PostgreSQL (migrated, with COUNT trunks) and a private Redis, plus helpers."""

    @classmethod
    def create(cls) -> Stack:
        """Starts both services in a fresh folder and migrates the database."""
        base = Path(tempfile.mkdtemp(prefix="sa-hardening-", dir="/tmp"))
        base.chmod(0o755)  # the postgres OS user runs the private cluster below it
        stack = cls(base)
        stack.pg.init().start()
        stack.redis.start()
        stack.manage("migrate", "--noinput")
        return stack

    def seed(self, count: int, *, user_prefix: str, pass_prefix: str) -> None:
        """`count` credential trunks USER_PREFIXnnnn / PASS_PREFIXnnnn (bench/make_trunks.py)."""
        seed = [PYTHON, "bench/make_trunks.py", "--count", str(count), "--user-prefix", user_prefix,
                "--pass-prefix", pass_prefix]  # fmt: skip
        run = subprocess.run(seed, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]

    def close(self) -> None:
        self.redis.stop()
        self.pg.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pg = PrivatePostgres(base / "pg")
        self.redis = PrivateRedis(base / "redis")

    def env(self) -> dict[str, str]:
        return python_env(
            DJANGO_SETTINGS_MODULE="telephony.tests.hardening.child_settings",
            DATABASE_URL=self.pg.url,
            REDIS_URL=self.redis.url,
            SMARTALEX_VAR_DIR=str(self.base / "var"),
            LOG_LEVEL="INFO",
        )

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        run = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True,
                             text=True, timeout=timeout)  # fmt: skip
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        return run

    def manage_module(self, module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        run = subprocess.run([PYTHON, "-m", module, *args], cwd=ROOT, env=self.env(), capture_output=True,
                             text=True, timeout=timeout)  # fmt: skip
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        return run

    def client(self):
        import redis

        return redis.Redis(port=self.redis.port, socket_timeout=5)

    def binding_count(self) -> int:
        return self.client().zcard("loc:expiry")

    def sipserver(self, port: int, name: str) -> Sipserver:
        return Sipserver(self.env(), port, self.base / f"{name}.log")


def python_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


@contextlib.contextmanager
def linphone_daemon(
    home: Path, *, rc_extra: str = ""
) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """A linphonec daemon with its own HOME and a free SIP port (UDP only, no NAT tricks), and
    the `linphonecsh` that drives it; the daemon exits when the block ends."""
    (home / ".local" / "share" / "linphone").mkdir(parents=True)
    rc = home / "linphonerc"
    rc.write_text(
        f"[sip]\nsip_port={free_port()}\nsip_tcp_port=-1\nsip_tls_port=-1\n[net]\nfirewall_policy=0\n"
        + rc_extra
    )
    env = {**os.environ, "HOME": str(home)}

    def sh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["linphonecsh", *args], capture_output=True, text=True, env=env, timeout=30)

    assert sh("init", "-c", str(rc)).returncode == 0
    try:
        time.sleep(1.0)  # the daemon opens its socket
        yield sh
    finally:
        sh("exit")


def terminate(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 20 s: a child that hangs on shutdown must not hang the suite."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Sipserver:
    """`manage.py sipserver` as a child process on the private services, logging to a file
    (a pipe nobody reads would fill up and stall the server)."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env, self.port, self.log_path = env, port, log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Sipserver:
        log = open(self.log_path, "w")  # noqa: SIM115 — lives as long as the process
        self.process = subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "sipserver",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--tls-port",
                "0",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        ready = wait_for(lambda: " ready" in self.log() or self.process.poll() is not None, timeout=timeout)
        assert ready and self.process.poll() is None, self.log()[-3000:]
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no shutdown code runs
            self.process.wait(10)

    def stop(self) -> None:
        terminate(self.process)


def sipp_register(port: int, users_csv: Path, *, count: int, rate: int = 100, timeout: float = 180):
    """sipp as a PBX fleet: REGISTER → 401 → REGISTER with credentials → 200, once per user line."""
    scenario = ROOT / "telephony" / "tests" / "data" / "sipp" / "reg_auth.xml"
    return subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-inf", str(users_csv), "-m", str(count),
         "-r", str(rate), "-i", "127.0.0.1", "-p", "0", "-nostdin", "-timeout", str(int(timeout - 10)),
         "-timeout_error", "-recv_timeout", "10000"],
        capture_output=True, text=True, timeout=timeout, cwd=users_csv.parent,
    )  # fmt: skip


def write_users(path: Path, users: list[tuple[str, str]]) -> Path:
    lines = ["SEQUENTIAL"] + [f"{u};127.0.0.1;[authentication username={u} password={p}]" for u, p in users]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- Kamailio in front of engines ----------------------------------------------------------------

# The SIP load balancer of DESIGN.md "Scaling out", as docs/interop.md describes it. Dispatcher
# set 1 holds every engine (round robin); set N+1 holds engine N alone, for a test that must
# send a request to one engine (header X-Engine: N+1, which no real PBX sends).
KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=2
listen=udp:127.0.0.1:{port}
auto_aliases=no
alias="127.0.0.1:{port}"
disable_tcp=yes
mpath="{mpath}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "siputils.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "path.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "{dispatcher_list}")
modparam("dispatcher", "ds_ping_interval", 0)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (has_totag()) {{
        # In a dialog: the Route we recorded leads to the Contact of the engine that answered.
        if (loose_route()) {{
            xlog("L_NOTICE", "in-dialog $rm $ci to $ru\\n");
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}  # a 407's ACK
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("REGISTER")) {{ add_path_received(); }}
    if (is_method("INVITE")) {{ record_route(); }}
    $var(set) = 1;
    if (is_present_hf("X-Engine")) {{ $var(set) = $(hdr(X-Engine){{s.int}}); }}
    # 4: round robin. The two steps of a digest REGISTER land on different engines on purpose.
    if (!ds_select_dst("$var(set)", "4")) {{ sl_send_reply("503", "No engine"); exit; }}
    xlog("L_NOTICE", "new $rm $ci to $du\\n");
    t_relay();
}}
"""


class Kamailio:
    """kamailio (Debian package) as the dispatcher in front of `engines` (udp addresses)."""

    def __init__(self, workdir: Path, engines: list[tuple[str, int]]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.engines = engines
        self.log_path = workdir / "kamailio.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Kamailio:
        mpath = next(Path("/usr/lib").rglob("kamailio/modules/dispatcher.so")).parent
        sets = [f"1 sip:{host}:{port}\n" for host, port in self.engines]
        sets += [f"{n + 2} sip:{host}:{port}\n" for n, (host, port) in enumerate(self.engines)]
        (self.workdir / "dispatcher.list").write_text("".join(sets))
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(
            KAMAILIO_CFG.format(port=self.port, mpath=mpath, dispatcher_list=self.workdir / "dispatcher.list")
        )
        (self.workdir / "run").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", str(cfg), "-Y", str(self.workdir / "run")],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"),  # noqa: SIM115
        )  # fmt: skip
        # Ready when it answers: an OPTIONS with no route gets its 404/483/200, any answer will do.
        ready = wait_for(lambda: self.process.poll() is not None or self._answers(), timeout=20, interval=0.2)
        assert ready and self.process.poll() is None, self.log()[-3000:]
        return self

    def _answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.3)
            port = sock.getsockname()[1]
            probe = (
                f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
                "Max-Forwards: 0\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
                f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendto(probe.encode(), ("127.0.0.1", self.port))
            try:
                return sock.recv(65535).startswith(b"SIP/2.0 ")
            except OSError:
                return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        terminate(self.process)


def need(binary: str) -> None:
    import pytest

    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian package; see docs/interop.md)")
