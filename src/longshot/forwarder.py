"""A program that runs inside a sandbox: TCP on the sandbox's loopback to a Unix socket outside.

A sandbox has no network. What it may reach (the model proxy for an agent CLI, the package
index proxy for a set-up) the orchestrator serves on a Unix socket mounted into it; this
forwarder, run inside with the standard library only, makes that socket an address on
``127.0.0.1`` for programs that speak TCP.
"""

from __future__ import annotations

FORWARDER = r"""
import socket, sys, threading
def pipe(a, b):
    try:
        while (data := a.recv(65536)):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve(c, path):
    u = socket.socket(socket.AF_UNIX); u.connect(path)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
def forward(srv, path):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, path), daemon=True).start()
def listen(port):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(64)
    return srv
if __name__ == "__main__":
    forward(listen(int(sys.argv[2])), sys.argv[1])
"""
"""TCP loopback → Unix socket, inside a sandbox: ``python3 -c FORWARDER <socket> <port>``."""
