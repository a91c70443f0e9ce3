"""Starting the web view: `longshot serve` in the foreground, or beside a run (``--web``).

The server binds 127.0.0.1 unless told otherwise and prints its address with a fresh
access token, as Jupyter does; the address goes to stderr so ``--json`` stdout stays NDJSON.
When the port is taken, the next free one (up to `PORT_TRIES` further) is used.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from longshot.errors import ConfigError
from longshot.redaction import Redactor, secrets_in_env
from longshot.web import EXTRA, missing

DEFAULT_PORT = 8765
PORT_TRIES = 20


@dataclass
class Started:
    url: str
    """The address to open, with the token."""
    port: int
    token: str
    stop: Callable[[], None]


def require_extra() -> None:
    """Refuse with a message naming the extra when Starlette or uvicorn is missing."""
    absent = missing()
    if absent:
        raise ConfigError(f"the web view needs {', '.join(absent)}, which is not installed. "
                          f"Fix: pip install 'longshot[{EXTRA}]' (or .venv/bin/pip install -e '.[{EXTRA}]')")


def free_port(host: str, port: int) -> int:
    """``port`` if it can be bound, else the next one that can (0 picks any)."""
    for candidate in ([0] if port == 0 else range(port, port + PORT_TRIES + 1)):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ConfigError(f"ports {port} to {port + PORT_TRIES} on {host} are all taken. Fix: --port N with a free port")


def redactor(extra_secrets: list[str], env: Mapping[str, str] | None = None) -> Redactor:
    """Configured secrets plus every value of an environment variable named like a secret."""
    return Redactor([*extra_secrets, *secrets_in_env(os.environ if env is None else env)])


def start(log_dir: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, secrets_: list[str] | None = None,
          work_dir: Path | None = None, token: str | None = None) -> tuple[Started, Callable[[], None]]:
    """Build the server; return where it is and a function that serves until `stop` is called."""
    require_extra()
    import uvicorn

    from longshot.web.app import Settings, build_app

    port = free_port(host, port)
    token = token or secrets.token_urlsafe(24)
    settings = Settings(log_dir=log_dir.resolve(), token=token, port=port, redact=redactor(secrets_ or []),
                        work_dir=work_dir)
    config = uvicorn.Config(build_app(settings), host=host, port=port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?token={token}"

    def stop() -> None:
        server.should_exit = True

    return Started(url, port, token, stop), server.run


def start_in_thread(log_dir: Path, **options: object) -> Started:
    """Serve from a daemon thread (``longshot "<request>" --web``): it ends with the process."""
    started, serve = start(log_dir, **options)  # type: ignore[arg-type]
    threading.Thread(target=serve, name="longshot-web", daemon=True).start()
    return started
