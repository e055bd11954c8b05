"""`python -m bot.rasa_main …`: Rasa's own command line, with the HTTP API token taken from
the environment.

Rasa accepts its token only as ``--auth-token``, and a process's arguments are readable by
every user of the machine (``ps``, ``/proc/<pid>/cmdline``). This launcher adds
``RASA_AUTH_TOKEN`` to the arguments inside the process, so ``rasa run`` and ``rasa shell``
get the token and the process list never shows it. Everything else is ``python -m rasa``.
"""

from __future__ import annotations

import os
import sys
from typing import List

SERVING_COMMANDS = ("run", "shell")


def with_token(argv: List[str], token: str) -> List[str]:
    """`argv` with ``--auth-token=TOKEN`` after a serving sub-command (unless one is given).
    One argument, so that a token starting with "-" (one in 64 random URL-safe tokens) is
    not read by argparse as an option."""
    given = any(arg == "--auth-token" or arg.startswith("--auth-token=") for arg in argv)
    if token and len(argv) > 1 and argv[1] in SERVING_COMMANDS and not given:
        return [argv[0], argv[1], f"--auth-token={token}", *argv[2:]]
    return argv


if __name__ == "__main__":
    sys.argv = with_token(sys.argv, os.environ.get("RASA_AUTH_TOKEN", ""))
    from rasa.__main__ import main

    main()
