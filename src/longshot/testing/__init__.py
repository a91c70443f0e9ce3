"""Test doubles shipped with longshot: a scripted, OpenAI-compatible fake LLM server."""
