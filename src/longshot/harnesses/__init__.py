"""Agent loops that work a task inside a sandbox: the `Harness` protocol (base.py)."""
