"""Where tool calls run: the `Sandbox` protocol (base.py) and its providers."""
