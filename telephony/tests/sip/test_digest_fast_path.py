"""The one-regex parse of the usual auth header shape agrees with the general scanner."""

from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.sip.digest import ParseError, _parse_auth_items, _parse_auth_items_scanning

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_.", min_size=1, max_size=12)
QUOTED = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)


def render(scheme, params, spaces):
    parts = []
    for name, value, quoted in params:
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if quoted else value
        parts.append(f"{name}{spaces}={spaces}{text}")
    return f"{scheme} " + f",{spaces}".join(parts)


@settings(max_examples=400, deadline=None)
@given(
    TOKEN,
    st.lists(st.tuples(TOKEN, st.one_of(QUOTED, TOKEN), st.booleans()), min_size=1, max_size=6),
    st.sampled_from(["", " ", "\t"]),
)
def test_fast_path_matches_scanner(scheme, params, spaces):
    params = [(n, v if q else (v or "x"), q) for n, v, q in params]
    value = render(scheme, params, spaces)
    try:
        expected = _parse_auth_items_scanning(value)
    except ParseError:
        expected = None
    try:
        got = _parse_auth_items(value)
    except ParseError:
        got = None
    assert got == expected


def test_real_credentials_take_the_fast_path_and_unescape():
    value = (
        'Digest username="sa1", realm="r", nonce="a\\"b", uri="sip:x", response="0f", qop=auth, nc=00000001'
    )
    [(scheme, params)] = _parse_auth_items(value)
    assert scheme == "Digest" and dict(params)["nonce"] == 'a"b' and dict(params)["qop"] == "auth"
