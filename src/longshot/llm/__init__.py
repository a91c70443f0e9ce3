"""Model access: the `ChatModel` protocol (base.py) and its backends."""
