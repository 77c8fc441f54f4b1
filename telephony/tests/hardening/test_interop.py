"""Real SIP stacks register through the engine: baresip, Linphone (linphonecsh) and Kamailio as a
dispatcher in front of two engines. All on 127.0.0.1; skipped where the Debian package is missing
(apt-get install baresip-core linphone-cli kamailio). pyVoIP is covered by
telephony/tests/test_registration_e2e.py. What each peer needed is written down in docs/interop.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from telephony.location import SqliteLocationStore
from telephony.tests.hardening.support import (
    Kamailio,
    StoreEngineThread,
    linphone_daemon,
    need,
    sipp_register,
    static_config,
    trunk_row,
    wait_for,
    write_users,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USER = "interop01"
PASSWORD = "interop-password-0000001"


@pytest.fixture
def engine(tmp_path):
    thread = StoreEngineThread(
        tmp_path, load=static_config([trunk_row(1, username=USER, password=PASSWORD)]), tls=False
    )
    yield thread.start()
    thread.stop()


def registered_user_agent(engine) -> str:
    """The User-Agent of the first registration the engine reported (clients unregister on exit)."""
    found = wait_for(lambda: [e for e in engine.events if e.get("type") == "TrunkRegistered"], timeout=5)
    return found[0].get("user_agent", "") if found else ""


# --- baresip --------------------------------------------------------------------------------------


def run_baresip(engine, home: Path) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    (home / "accounts").write_text(
        f"<sip:{USER}@127.0.0.1:{engine.udp[1]}>;auth_pass={PASSWORD};regint=600\n"
    )
    (home / "config").write_text(
        "poll_method epoll\nsip_listen 127.0.0.1:0\n"
        "dns_server 127.0.0.1:53\n"  # never a resolver beyond this machine
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\n"
        "module_app account.so\naudio_player ausine,\naudio_source ausine,\n"
    )
    return subprocess.run(["baresip", "-f", str(home), "-t", "4"], capture_output=True, text=True, timeout=60)


def test_baresip_registers_when_offered_md5_only(engine, tmp_path):
    need("baresip")
    engine.engine.registrar.settings.algorithms = ("MD5",)
    run = run_baresip(engine, tmp_path / "baresip")
    assert "200 OK" in run.stdout, run.stdout[-2000:] + run.stderr[-1000:]
    assert "baresip" in registered_user_agent(engine).lower()


def test_baresip_registers_with_the_default_md5_and_sha256_challenges(engine, tmp_path):
    """baresip 1.0 (libre 1.x, Debian 12) gives up on a 401 that also offers SHA-256 (ENOSYS);
    the registrar's User-Agent quirks table offers it MD5 alone (docs/interop.md)."""
    need("baresip")
    assert engine.engine.registrar.settings.algorithms == ("MD5", "SHA-256")
    run = run_baresip(engine, tmp_path / "baresip")
    assert "200 OK" in run.stdout, run.stdout[-2000:] + run.stderr[-1000:]
    assert "baresip" in registered_user_agent(engine).lower()


def test_baresip_fails_when_its_quirk_is_not_applied(engine, tmp_path):
    """Keeps the quirk honest: without it, this baresip still breaks on the default offer."""
    need("baresip")
    engine.engine.registrar.settings.quirks = ()
    run = run_baresip(engine, tmp_path / "baresip")
    if "200 OK" in run.stdout:
        pytest.skip("this baresip answers SHA-256 offers: its USER_AGENT_QUIRKS entry may go")
    assert not [e for e in engine.events if e.get("type") == "TrunkRegistered"]


# --- Linphone -------------------------------------------------------------------------------------


def test_linphone_registers(engine, tmp_path):
    need("linphonecsh")
    with linphone_daemon(tmp_path / "linphone") as sh:
        sh("register", "--host", f"127.0.0.1:{engine.udp[1]}", "--username", USER, "--password", PASSWORD)
        assert wait_for(lambda: "registered," in sh("status", "register").stdout, timeout=20, interval=0.5)
        assert "linphone" in registered_user_agent(engine).lower()


# --- Kamailio (dispatcher) in front of two engines: its configuration is support.KAMAILIO_CFG -----


def test_kamailio_dispatcher_spreads_registrations_over_two_engines(tmp_path):
    need("kamailio")
    rows = [
        trunk_row(i, username=f"kam{i:04d}", password=f"kampass-{i:04d}-xxxxxxxxxx") for i in range(1, 41)
    ]
    store_path = tmp_path / "shared-locations.sqlite3"  # what Redis is in production: shared by both
    engines = [
        StoreEngineThread(
            tmp_path / name,
            load=static_config(rows),
            tls=False,
            store_factory=lambda: SqliteLocationStore(store_path),
        )  # fmt: skip
        for name in ("a", "b")
    ]
    for engine in engines:
        (tmp_path / engine.var_dir.name).mkdir()
        engine.start()
    kamailio = Kamailio(tmp_path, [e.udp for e in engines])
    try:
        kamailio.start()
        users = write_users(
            tmp_path / "users.csv", [(f"kam{i:04d}", f"kampass-{i:04d}-xxxxxxxxxx") for i in range(1, 41)]
        )
        run = sipp_register(kamailio.port, users, count=40, rate=20)
        assert run.returncode == 0, run.stdout[-2000:] + kamailio.log()[-2000:]
        served = [e.engine.registrar.stats for e in engines]
        assert all(s.registers >= 20 for s in served), served  # round robin: both took their share
        assert sum(s.registrations for s in served) == 40
        counted = SqliteLocationStore(store_path)._db.execute("SELECT count(*) FROM bindings").fetchone()[0]
        assert counted == 40
    finally:
        kamailio.stop()
        for engine in engines:
            engine.stop()
