"""DESIGN.md convention 8: nothing in telephony/sip/ may do I/O, read a clock, or know Django."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIP_PACKAGE = Path(__file__).resolve().parents[2] / "sip"
FORBIDDEN = {"asyncio", "socket", "time", "threading", "django"}


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module imported anywhere in `source` (also inside functions)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            modules |= {arg.value.split(".")[0] for arg in node.args[:1] if isinstance(arg, ast.Constant)}
    return modules


def test_the_scanner_sees_every_form_of_import() -> None:
    source = (
        "import time\nfrom asyncio import sleep\ndef f():\n    import socket.x\n__import__('threading')\n"
    )
    assert imported_modules(source) == {"time", "asyncio", "socket", "threading"}


MODULES = sorted(SIP_PACKAGE.glob("*.py"))


def test_the_package_is_where_we_think() -> None:
    assert {"uri.py", "headers.py", "message.py", "parser.py", "uas_checks.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=[p.name for p in MODULES])
def test_module_is_sans_io(module: Path) -> None:
    assert imported_modules(module.read_text()) & FORBIDDEN == set()
