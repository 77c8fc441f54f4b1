"""Runs a SIPVicious tool (svmap, svwar, svcrack) as a child process, optionally disguised.

SIPVicious announces itself as "friendly-scanner", which the engine drops on sight. A real attacker
changes that string, so `--disguise UA` swaps the default User-Agent before the tool starts: the
defences that do not depend on the User-Agent are then what is being tested.

    python -m telephony.tests.hardening.sipvicious_run [--disguise UA] svwar ARGS...
"""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int | None:
    if argv and argv[0] == "--disguise":
        user_agent, argv = argv[1], argv[2:]
        from sipvicious.libs import svhelper

        defaults = list(svhelper.makeRequest.__defaults__)
        defaults[defaults.index("friendly-scanner")] = user_agent
        svhelper.makeRequest.__defaults__ = tuple(defaults)
    tool, args = argv[0], argv[1:]
    module = importlib.import_module(f"sipvicious.{tool}")
    sys.argv = [f"sipvicious_{tool}", *args]
    return module.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
