"""Settings from environment variables and a ``.env`` file, validated once at start-up.

Names are the original project's (``GIT_REPO_URL``, ``MAX_WORKERS`` ...), no prefix, any
case; each `Config` field is the lower-cased name and its docstring is the README's text.
Precedence: ``overrides`` > environment > ``.env`` > default. `load_config` reports every
problem at once in one `ConfigError`, one line each: ``VAR: <what is wrong>. Fix: <what
to do>``. API keys are `SecretStr`: never shown in reprs or error messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo
from pydantic import field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from longshot.config_errors import problems
from longshot.errors import ConfigError
from longshot.llm.base import ROLES, Role
from longshot.ownfiles import refuse_planted

__all__ = ["Config", "EndpointSettings", "load_config"]

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")  # scheme:// or user@host:path
_REF_RE = re.compile(r"^[A-Za-z0-9._/-]+$")


def _fail(what: str, fix: str) -> ValueError:  # a problem whose fix the field's type does not say
    return ValueError(f"{what}. Fix: {fix}")


def _normalise_url(value: object) -> str:
    """Strip whitespace, trailing slashes and a trailing ``/v1``; demand http(s)."""
    url = str(value).strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")].rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError("must start with http:// or https:// followed by a host")
    return url


def _ref_problem(name: str) -> str | None:
    """Why ``name`` is not a legal git ref name (simplified), or None."""
    bad_part = any(p.startswith(".") or p.endswith(".lock") for p in name.split("/"))
    checks = [
        (not _REF_RE.match(name), "may contain only letters, digits and - _ . /"),
        (".." in name or "//" in name, "must not contain '..' or '//'"),
        (name.startswith(("/", "-")), "must not start with '/' or '-'"),
        (bad_part, "no path component may start with '.' or end with '.lock'"),
    ]
    return next((text for bad, text in checks if bad), None)


_Url = Annotated[str, BeforeValidator(_normalise_url)]


class EndpointSettings(BaseModel):
    """The settings of one OpenAI-compatible server (LLM_ENDPOINTS); requests are spread over endpoints by
    weight. The build room makes an `llm.base.Endpoint` (the client protocol) of each."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", use_attribute_docstrings=True)

    name: str = Field(min_length=1)
    """Label used in logs, metrics and error messages."""
    endpoint: _Url
    """Server address without ``/v1`` (a trailing ``/v1`` and ``/`` are removed)."""
    api_key: SecretStr = Field(default=SecretStr(""), alias="apiKey")
    """API key sent as a bearer token; empty for servers that need none."""
    weight: float = Field(default=100.0, gt=0)
    """Relative share of requests (> 0)."""

    @property
    def base_url(self) -> str:
        """The OpenAI API root: ``endpoint + "/v1"``."""
        return self.endpoint + "/v1"


_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("longshot_config_env", default=None)


class _EnvSource(EnvSettingsSource):
    """``os.environ``, or only the mapping given to `load_config` when there is one."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        if env is None:
            return super()._load_env_vars()
        return parse_env_vars(env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Config(BaseSettings):
    """All run settings. Build it with `load_config`; it is immutable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False,
        env_ignore_empty=True, use_attribute_docstrings=True, frozen=True,
    )

    git_repo_url: str
    """Repository to work on: a git URL or a local path (relative to the current directory)."""
    llm_base_url: _Url | None = None
    """Base URL of one OpenAI-compatible server (``/v1`` optional); ignored when LLM_ENDPOINTS is set."""
    llm_api_key: SecretStr | None = None
    """API key for LLM_BASE_URL."""
    llm_endpoints: Annotated[list[EndpointSettings] | None, NoDecode] = Field(default=None, validate_default=True)
    """JSON list of ``{name, endpoint, apiKey, weight}`` to spread requests over; wins over LLM_BASE_URL."""
    llm_model: str | None = None
    """Default model name for every role."""
    planner_model: str | None = Field(default=None, validate_default=True)
    """Model for the planner (default: LLM_MODEL)."""
    subplanner_model: str | None = Field(default=None, validate_default=True)
    """Model for subplanners (default: LLM_MODEL)."""
    worker_model: str | None = Field(default=None, validate_default=True)
    """Model for workers (default: LLM_MODEL)."""
    reconciler_model: str | None = Field(default=None, validate_default=True)
    """Model for the reconciler (default: LLM_MODEL)."""
    llm_max_tokens: int = Field(default=65536, gt=0)
    """Maximum tokens of one model answer."""
    llm_temperature: float = Field(default=0.7, ge=0, le=2)
    """Sampling temperature, 0 to 2."""
    llm_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one model request."""
    llm_context_window: int | None = Field(default=None, ge=1024)
    """Context window in tokens of the worker model, when not in the bundled table (default 128000)."""
    llm_max_concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight per endpoint at most (default: MAX_WORKERS + 4, at least 64); halves on each 429 and grows back."""
    llm_endpoint_rest: float = Field(default=30.0, gt=0)
    """Seconds an endpoint rests after 3 failures in a row before it is probed again."""
    llm_retry_seconds: float = Field(default=600.0, gt=0)
    """Seconds a model request goes on retrying transient errors (429, 5xx, timeouts, lost connections) before it fails."""
    llm_prices_file: Path | None = None
    """JSON file of model prices (USD per million input, output tokens) merged over the bundled table."""
    run_max_tokens: Annotated[int, Field(ge=1)] | Literal["none"] | None = None
    """Token budget of the whole run; unset: 20,000,000 when a model's price is unknown (else none); ``none``: no cap. When spent, no new model request starts."""
    run_max_cost_usd: Annotated[float, Field(gt=0)] | Literal["none"] | None = None
    """Cost budget of the whole run in USD, from the price table; unset: 10 when every model's price is known; ``none``: no default guard at all."""
    task_max_tokens: int | None = Field(default=None, ge=1)
    """Token budget of one worker task (unset: none); when spent the worker hands off partial."""
    worker_harness: str = "builtin"
    """The agent that works each task: builtin (Longshot's own loop) or an agent CLI from harnesses/agents.json."""
    harness_bin: str | None = None
    """Path of the agent CLI for WORKER_HARNESS (default: its usual name on PATH); its install dir is made readable."""
    max_workers: int = Field(default=50, ge=1)
    """Workers running at once, subplanners included."""
    worker_timeout: float = Field(default=1800.0, gt=0)
    """Seconds one worker task may run."""
    task_max_steps: int = Field(default=100, ge=1)
    """Tool-calling steps one worker task may take."""
    planner_max_iterations: int = Field(default=100, ge=1)
    """Maximum planner iterations in one run."""
    max_tasks_per_sprint: int = Field(default=50, ge=1)
    """Most tasks accepted from one planner answer; the rest are dropped with an event."""
    subplan_max_files: int = Field(default=5, ge=1)
    """A task whose scope has more files than this goes to a subplanner."""
    subplan_max_modules: int = Field(default=2, ge=1)
    """A task whose scope spans more top-level directories than this goes to a subplanner."""
    subplan_max_depth: int = Field(default=3, ge=0)
    """How deep subplanners may nest (0 disables them)."""
    sandbox_provider: Literal["local", "modal", "ray"] = "local"
    """Where workers run: local, modal or ray."""
    sandbox_isolation: Literal["bubblewrap", "none"] = "bubblewrap"
    """Isolation of local and Ray sandboxes: bubblewrap, or none (explicitly unsafe)."""
    sandbox_network: Literal["off", "on"] = "off"
    """Whether sandboxed commands may use the network: off or on."""
    sandbox_cpu_cores: int = Field(default=4, ge=1)
    """CPU cores per sandbox, where the provider can enforce it."""
    sandbox_memory_mb: int = Field(default=8192, ge=1)
    """Memory per sandbox in MiB, where the provider can enforce it."""
    sandbox_idle_timeout: float = Field(default=300.0, gt=0)
    """Modal only: seconds a sandbox may go without a command before Modal ends it (keep it above the longest model turn); local and Ray sandboxes end with their task."""
    sandbox_max_processes: int = Field(default=512, ge=8)
    """Processes and threads one sandbox may run at once (needs a cgroup)."""
    sandbox_max_open_files: int = Field(default=4096, ge=64)
    """Open files per sandboxed process."""
    sandbox_disk_mb: int = Field(default=10240, ge=16)
    """MiB a sandbox may write in its checkout, HOME and /tmp together (also the largest file)."""
    sandbox_max_files: int = Field(default=200_000, ge=100)
    """Files and directories a sandbox may hold in its checkout, HOME and /tmp together."""
    sandbox_setup_command: str | None = None
    """Trusted command run in each new checkout before the agent starts, reaching only SANDBOX_SETUP_HOSTS (e.g. ``pip install -e .``)."""
    sandbox_setup_timeout: float = Field(default=900.0, gt=0)
    """Seconds the set-up command may take."""
    sandbox_setup_hosts: str | None = None
    """Comma-separated ``host`` or ``host:port`` a set-up may reach through Longshot's proxy (unset: the public indexes of PyPI, npm, crates.io and Go; ``*``: the whole network, weaker)."""
    sandbox_tasks_dir: Path | None = None
    """Where task checkouts live (default: LONGSHOT_WORK_DIR/tasks). A tmpfs such as /dev/shm starts sandboxes ~10x faster on slow disks."""
    sandbox_overlay: Literal["auto", "on", "off"] = "auto"
    """Copy-on-write sandboxes (a kernel overlay on one shared tree per base commit; needs root): auto uses them where the host allows, on requires them, off makes a full checkout per sandbox."""
    sandbox_ro_paths: str = ""
    """Extra host directories (``:``-separated) a sandbox may read, for toolchains outside the system dirs."""
    ray_address: str | None = None
    """SANDBOX_PROVIDER=ray: address of the Ray cluster (e.g. ``ray://head:10001`` or ``head:6379``); unset: a local cluster for the run."""
    modal_app_name: str = Field(default="longshot", min_length=1)
    """SANDBOX_PROVIDER=modal: the Modal app that sandboxes are created in (made if missing)."""
    modal_image: str | None = None
    """SANDBOX_PROVIDER=modal: a registry image or a Dockerfile path with bash, git and the target's toolchains (default: Debian slim, Python 3.12, pytest, git, Node.js)."""
    snapshot_max_file_mb: int = Field(default=10, ge=1)
    """Largest file a task's result may add, in MiB."""
    snapshot_max_files: int = Field(default=5000, ge=1)
    """Most files a task's result may add or change."""
    git_main_branch: str = "main"
    """Target branch that work lands on."""
    git_branch_prefix: str = "worker/"
    """Namespace of worker branches; ends with ``/``."""
    git_commit_name: str = "Longshot"
    """Author and committer name of Longshot's commits."""
    git_commit_email: str = "longshot@localhost"
    """Author and committer email of Longshot's commits."""
    merge_strategy: Literal["fast-forward", "rebase", "merge-commit"] = "rebase"
    """How a worker branch lands: fast-forward, rebase or merge-commit."""
    check_commands: Annotated[list[str] | None, NoDecode] = None
    """Build/test commands of the target, run on the final target branch: unset = auto-detect, ``none``, one command or a JSON list."""
    scope_overlap: Literal["hold", "allow"] = "allow"
    """allow: overlapping scopes run at once (conflicts predicted early, merged, else fixed); hold: they wait."""
    union_merge_files: str = ""
    """Comma-separated globs of line-set files (one entry per line, order irrelevant) whose conflicts are merged as a union."""
    hot_file_scopes: int = Field(default=8, ge=0)
    """A file named by this many open task scopes becomes hot: tasks naming it run one at a time (0: never)."""
    hot_file_conflicts: int = Field(default=2, ge=0)
    """A file that conflicted at landing this many times becomes hot (0: never)."""
    conflict_check_interval: float = Field(default=15.0, ge=0)
    """Seconds between checks of running workers against each other for conflicts (0: only after landings)."""
    merge_gate: Literal["auto", "on", "off"] = "auto"
    """Check every candidate before the target branch moves: auto (when check commands are known), on, or off."""
    merge_batch: int = Field(default=8, ge=1)
    """Most queued changes the gate checks together (adaptive: grows on success, halves on failure); unchecked batches take all queued."""
    check_timeout: float = Field(default=600.0, gt=0)
    """Time limit in seconds for running the check commands."""
    health_check_interval: float = Field(default=10.0, gt=0)
    """Seconds between the monitor's metrics events and stuck-worker checks."""
    worker_stuck_after: float = Field(default=600.0, gt=0)
    """Seconds a worker may show no progress (tool call, command output, model answer) before it is ended and salvaged."""
    shutdown_grace: float = Field(default=10.0, ge=0)
    """Seconds running workers get to hand off after SIGINT/SIGTERM before their work is salvaged."""
    longshot_crash_at: str | None = None
    """Tests only: ``<point>[:<n>]`` kills the run with SIGKILL at a named crash point (see longshot/crash.py)."""
    reconciler_interval: float = Field(default=300.0, gt=0)
    """Seconds between reconciler sweeps (RECONCILER_RED_INTERVAL while the target is red)."""
    reconciler_red_interval: float = Field(default=60.0, gt=0)
    """Seconds between sweeps from a red sweep until three green sweeps in a row."""
    finalization_enabled: bool = True
    """Whether the finalization phase (final checks and fixes) runs after planning ends."""
    finalization_max_attempts: int = Field(default=3, ge=1)
    """Attempts of the finalization phase."""
    longshot_work_dir: Path = Path(".longshot")
    """Directory of the hub clone and task checkouts (relative to the current directory)."""
    longshot_log_dir: Path = Path("logs")
    """Directory of run logs (relative to the current directory)."""
    deliver_config_files: Literal["refuse", "allow"] = "refuse"
    """Whether fast-forwarding your working copy at the end may bring in a change to Longshot's own configuration files (``.env``, ``.longshot/``): refuse (the default; you are told how to review and take it) or allow."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values, then the environment (or `load_config`'s mapping), then ``.env``."""
        return init_settings, _EnvSource(settings_cls), dotenv_settings

    @field_validator("git_repo_url")
    @classmethod
    def _repo(cls, v: str) -> str:
        if _URL_RE.match(v := v.strip()):
            return v
        path = Path.cwd() / Path(v).expanduser()
        if not v or not path.exists():
            raise _fail(f"no such path {path}", "set GIT_REPO_URL to a git URL or the path of an existing repository")
        return str(path)

    @field_validator("llm_endpoints", mode="before")
    @classmethod
    def _endpoints(cls, v: object, info: ValidationInfo) -> object:
        if v is None:
            if "llm_base_url" in info.data and info.data["llm_base_url"] is None:  # absent: it failed itself
                raise _fail("no model server is configured", "set LLM_BASE_URL (and LLM_API_KEY) or LLM_ENDPOINTS")
            return None
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise ValueError(f"not valid JSON ({e.msg} at char {e.pos})") from None
        if not isinstance(v, list) or not v:
            raise ValueError("the list is empty" if v == [] else "must be a JSON list of endpoint objects")
        endpoints, problems = [], []
        for i, item in enumerate(v, 1):
            try:
                endpoints.append(EndpointSettings.model_validate(item))
            except ValidationError as e:
                for err in e.errors():
                    where = ".".join(str(x) for x in err["loc"])
                    text = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"].lower()
                    problems.append(f"entry {i}{' ' + where if where else ''}: {text}")
        if problems:
            raise ValueError("; ".join(problems))
        if len({e.name for e in endpoints}) != len(endpoints):
            raise _fail("endpoint names are not unique", "give every entry of LLM_ENDPOINTS its own name")
        return endpoints

    @field_validator("planner_model", "subplanner_model", "worker_model", "reconciler_model")
    @classmethod
    def _role_model(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = (v or "").strip() or info.data.get("llm_model")
        if not v:
            role = str(info.field_name).removesuffix("_model")
            raise _fail(f"no model for the {role} role", f"set LLM_MODEL or {str(info.field_name).upper()}")
        return v

    @field_validator("git_main_branch", "git_branch_prefix")
    @classmethod
    def _branches(cls, v: str, info: ValidationInfo) -> str:
        is_prefix = info.field_name == "git_branch_prefix"
        if v.endswith("/") != is_prefix:
            problem: str | None = "must end with '/'" if is_prefix else "must not end with '/'"
        else:
            problem = _ref_problem(v)
        main = info.data.get("git_main_branch") if is_prefix else None
        if not problem and main:
            parts, wanted = v.strip("/").split("/"), main.split("/")
            if any(parts[i : i + len(wanted)] == wanted for i in range(len(parts))):
                problem = f"must not contain the target branch {main!r} as a path component"
        if problem:
            example = "a branch namespace such as 'worker/'" if is_prefix else "a branch name such as 'main'"
            raise _fail(problem, f"set {str(info.field_name).upper()} to {example}")
        return v

    @field_validator("check_commands", mode="before")
    @classmethod
    def _checks(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        if not (text := v.strip()):
            return None  # empty is unset: detect
        if text.lower() == "none":
            return []
        try:
            commands = json.loads(text) if text.startswith("[") else [text]
        except json.JSONDecodeError:
            if text.startswith('["'):
                raise ValueError("looks like a JSON list but is not valid JSON") from None
            return [text]  # a shell command such as `[ -f Makefile ] && make`
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise ValueError("a JSON value must be a list of strings")
        return commands

    @field_validator("longshot_work_dir", "longshot_log_dir", "sandbox_tasks_dir")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        return None if v is None else Path.cwd() / v.expanduser()  # an absolute path replaces the cwd

    @property
    def endpoints(self) -> list[EndpointSettings]:
        """LLM_ENDPOINTS, or one endpoint named ``default`` made of LLM_BASE_URL and LLM_API_KEY."""
        if self.llm_endpoints:
            return list(self.llm_endpoints)
        return [EndpointSettings(name="default", endpoint=str(self.llm_base_url), api_key=self.llm_api_key or SecretStr(""))]

    def model_for(self, role: Role) -> str:
        """The model name requests of ``role`` carry."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return str(getattr(self, f"{role}_model") or self.llm_model)

    def secrets(self) -> list[str]:
        """Every non-empty API key value, for redaction."""
        keys = [self.llm_api_key, *(e.api_key for e in self.llm_endpoints or [])]
        return list(dict.fromkeys(k.get_secret_value() for k in keys if k is not None and k.get_secret_value()))


def load_config(env: Mapping[str, str] | None = None, *, env_file: Path | None = Path(".env"),
                overrides: Mapping[str, object] | None = None) -> Config:
    """Read and validate the settings.

    ``env`` replaces ``os.environ`` entirely when given; ``env_file=None`` skips the
    ``.env`` file; ``overrides`` (keyed by variable or field name, any case) win over
    both. Raises `ConfigError` listing every problem, one per line.
    """
    kwargs: dict[str, Any] = {key.lower(): value for key, value in (overrides or {}).items()}
    unknown = [f"{k.upper()}: unknown setting. Fix: use a documented name"
               for k in kwargs if k not in Config.model_fields]
    if unknown:
        raise ConfigError("\n".join(unknown))
    refuse_planted(env_file)
    token = _ENV.set(dict(env) if env is not None else None)
    try:
        return Config(_env_file=env_file, **kwargs)
    except ValidationError as e:
        raise ConfigError("\n".join(problems(e, Config.model_fields))) from None
    finally:
        _ENV.reset(token)
