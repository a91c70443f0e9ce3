"""wordkit: a small text toolkit (see SPEC.md)."""
