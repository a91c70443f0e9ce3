"""Tool code shared by the planner (read-only exploration) and the workers (the full toolbox).

- `toolbox`: the worker's tools (DESIGN §3.3), their schemas, validation and execution.
- `context`: keeping a conversation inside the model's context window, and the loop guard.

Tools reach the code only through the `Sandbox` protocol (`sandboxes/base.py`) and talk to
models only through `llm/base.py`; they never import a backend or a pipeline stage.
"""
