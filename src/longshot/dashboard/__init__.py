"""What the user sees: renderers that consume events (and nothing else)."""
