"""Settings: defaults, sources and their precedence, parsing, and every error message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longshot.config import Config, EndpointSettings, load_config
from longshot.errors import ConfigError
from longshot.llm.base import ROLES

CANARY = "sk-canary-7f3a9c1e5b"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def base(repo: Path) -> dict[str, str]:
    """The smallest valid environment."""
    return {"GIT_REPO_URL": str(repo), "LLM_BASE_URL": "http://localhost:8000/v1", "LLM_MODEL": "m"}


def load(env: dict[str, str], **kw: object) -> Config:
    return load_config(env, env_file=None, **kw)  # type: ignore[arg-type]


def error_of(env: dict[str, str], **kw: object) -> str:
    with pytest.raises(ConfigError) as info:
        load(env, **kw)
    return str(info.value)


def assert_problem(message: str, var: str) -> None:
    """Some line of the message is about ``var`` and says how to fix it."""
    lines = [line for line in message.splitlines() if line.startswith(f"{var}: ")]
    assert lines, message
    assert all("Fix:" in line for line in lines), message


def test_defaults(base: dict[str, str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = load(base)
    assert c.git_repo_url == str(repo)
    assert (c.llm_max_tokens, c.llm_temperature, c.llm_timeout) == (65536, 0.7, 120.0)
    assert (c.max_workers, c.worker_timeout, c.task_max_steps, c.planner_max_iterations) == (50, 1800, 100, 100)
    assert (c.sandbox_provider, c.sandbox_isolation, c.sandbox_network) == ("local", "bubblewrap", "off")
    assert (c.sandbox_cpu_cores, c.sandbox_memory_mb, c.sandbox_idle_timeout) == (4, 8192, 300)
    assert (c.git_main_branch, c.git_branch_prefix) == ("main", "worker/")
    assert (c.git_commit_name, c.git_commit_email) == ("Longshot", "longshot@localhost")
    assert c.merge_strategy == "rebase"
    assert c.check_commands is None
    assert (c.check_timeout, c.health_check_interval, c.reconciler_interval) == (600, 10, 300)
    assert c.finalization_enabled is True and c.finalization_max_attempts == 3
    assert c.longshot_work_dir == tmp_path / ".longshot"
    assert c.longshot_log_dir == tmp_path / "logs"
    assert c.llm_endpoints is None and c.secrets() == []


def test_every_field_is_documented() -> None:
    for name, field in Config.model_fields.items():
        assert field.description, name
    for name, field in EndpointSettings.model_fields.items():
        assert field.description, name


def test_values_are_parsed(base: dict[str, str]) -> None:
    c = load({**base, "MAX_WORKERS": "7", "LLM_TEMPERATURE": "0", "FINALIZATION_ENABLED": "false",
              "MERGE_STRATEGY": "merge-commit", "SANDBOX_PROVIDER": "modal", "worker_timeout": "2.5"})
    assert c.max_workers == 7 and c.llm_temperature == 0 and c.finalization_enabled is False
    assert c.merge_strategy == "merge-commit" and c.sandbox_provider == "modal" and c.worker_timeout == 2.5


def test_empty_value_means_default(base: dict[str, str]) -> None:
    assert load({**base, "MAX_WORKERS": "", "CHECK_COMMANDS": ""}).max_workers == 50


def test_dotenv_is_read_and_env_mapping_wins(base: dict[str, str], tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("MAX_WORKERS=7\nWORKER_MODEL=from-dotenv\nSOMETHING_ELSE=ignored\n# comment\n")
    c = load_config({**base, "WORKER_MODEL": "from-env"}, env_file=dotenv)
    assert c.max_workers == 7
    assert c.worker_model == "from-env"
    assert load_config(base, env_file=None).max_workers == 50


def test_dotenv_alone_suffices(repo: Path, tmp_path: Path) -> None:
    dotenv = tmp_path / "settings.env"
    dotenv.write_text(f"GIT_REPO_URL={repo}\nLLM_BASE_URL=http://h:1\nLLM_MODEL=m\n")
    assert load_config({}, env_file=dotenv).model_for("worker") == "m"


def test_default_env_file_is_dotenv_in_cwd(base: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MAX_WORKERS=9\n")
    assert load_config(base).max_workers == 9


def test_env_mapping_replaces_os_environ(base: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_WORKERS", "3")
    assert load(base).max_workers == 50
    monkeypatch.setenv("GIT_REPO_URL", base["GIT_REPO_URL"])
    assert_problem(error_of({}), "GIT_REPO_URL")


def test_os_environ_is_read_without_mapping(base: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**base, "MAX_WORKERS": "3"}.items():
        monkeypatch.setenv(key, value)
    assert load_config(None, env_file=None).max_workers == 3


def test_overrides_win_and_unknown_ones_are_refused(base: dict[str, str]) -> None:
    assert load({**base, "MAX_WORKERS": "3"}, overrides={"MAX_WORKERS": 4}).max_workers == 4
    assert load(base, overrides={"max_workers": 5}).max_workers == 5
    assert_problem(error_of(base, overrides={"NO_SUCH_SETTING": 1}), "NO_SUCH_SETTING")


def test_config_is_immutable(base: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        load(base).max_workers = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "given", ["http://h:1/v1/", "http://h:1/v1", "http://h:1/", "  http://h:1  ", "http://h:1"]
)
def test_base_url_is_normalised_into_one_default_endpoint(base: dict[str, str], given: str) -> None:
    c = load({**base, "LLM_BASE_URL": given, "LLM_API_KEY": "k"})
    assert c.llm_base_url == "http://h:1"
    [ep] = c.endpoints
    assert (ep.name, ep.endpoint, ep.weight, ep.base_url) == ("default", "http://h:1", 100, "http://h:1/v1")
    assert ep.api_key.get_secret_value() == "k"
    assert c.secrets() == ["k"]


def test_base_url_without_key(base: dict[str, str]) -> None:
    [ep] = load(base).endpoints
    assert ep.api_key.get_secret_value() == ""


def test_endpoints_parse_and_win_over_base_url(base: dict[str, str]) -> None:
    raw = [
        {"name": "a", "endpoint": "https://a.example/v1/", "apiKey": "ka", "weight": 3},
        {"name": "b", "endpoint": "http://10.0.0.2:8000"},
    ]
    c = load({**base, "LLM_ENDPOINTS": json.dumps(raw), "LLM_API_KEY": "kb"})
    assert [(e.name, e.endpoint, e.weight) for e in c.endpoints] == [
        ("a", "https://a.example", 3),
        ("b", "http://10.0.0.2:8000", 100),
    ]
    assert c.endpoints[0].base_url == "https://a.example/v1"
    assert c.endpoints[1].api_key.get_secret_value() == ""
    assert sorted(c.secrets()) == ["ka", "kb"]


def test_endpoints_without_base_url(repo: Path) -> None:
    env = {"GIT_REPO_URL": str(repo), "LLM_MODEL": "m",
           "LLM_ENDPOINTS": '[{"name": "x", "endpoint": "http://x:1"}]'}
    assert [e.name for e in load(env).endpoints] == ["x"]


def test_endpoint_accepts_python_names() -> None:
    ep = EndpointSettings(name="a", endpoint="http://a", api_key="k")  # type: ignore[arg-type]
    assert ep.api_key.get_secret_value() == "k"


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[",
        "[]",
        '{"name": "a", "endpoint": "http://a"}',
        '[{"name": "a", "endpoint": "http://a", "weight": 0}]',
        '[{"name": "a", "endpoint": "http://a", "weight": -1}]',
        '[{"name": "a"}]',
        '[{"name": "a", "endpoint": "ftp://a"}]',
        '[{"endpoint": "http://a"}]',
        '[{"name": "a", "endpoint": "http://a"}, {"name": "a", "endpoint": "http://b"}]',
        '["http://a"]',
    ],
)
def test_bad_endpoints(base: dict[str, str], value: str) -> None:
    message = error_of({**base, "LLM_ENDPOINTS": value})
    assert_problem(message, "LLM_ENDPOINTS")
    assert len(message.splitlines()) == 1


def test_bad_endpoints_message_shows_a_correct_example(base: dict[str, str]) -> None:
    message = error_of({**base, "LLM_ENDPOINTS": "[]"})
    assert '"endpoint"' in message and '"weight"' in message


def test_bad_base_url(base: dict[str, str]) -> None:
    assert_problem(error_of({**base, "LLM_BASE_URL": "localhost:8000"}), "LLM_BASE_URL")


def test_no_model_server(repo: Path) -> None:
    message = error_of({"GIT_REPO_URL": str(repo), "LLM_MODEL": "m"})
    assert "set LLM_BASE_URL (and LLM_API_KEY) or LLM_ENDPOINTS" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MERGE_STRATEGY", "squash"),
        ("MAX_WORKERS", "0"),
        ("MAX_WORKERS", "abc"),
        ("LLM_TEMPERATURE", "2.5"),
        ("LLM_MAX_TOKENS", "0"),
        ("LLM_TIMEOUT", "0"),
        ("TASK_MAX_STEPS", "0"),
        ("FINALIZATION_ENABLED", "perhaps"),
        ("SANDBOX_PROVIDER", "docker"),
        ("SANDBOX_ISOLATION", "chroot"),
        ("GIT_BRANCH_PREFIX", "worker"),
        ("GIT_BRANCH_PREFIX", "main/"),
        ("GIT_BRANCH_PREFIX", "team/main/"),
        ("GIT_BRANCH_PREFIX", "-w/"),
        ("GIT_BRANCH_PREFIX", "/w/"),
        ("GIT_BRANCH_PREFIX", "a..b/"),
        ("GIT_BRANCH_PREFIX", "wor ker/"),
        ("GIT_MAIN_BRANCH", "main/"),
        ("CHECK_COMMANDS", '["pytest", '),
        ("CHECK_COMMANDS", "[1, 2]"),
    ],
)
def test_bad_value_names_the_variable(base: dict[str, str], var: str, value: str) -> None:
    message = error_of({**base, var: value})
    assert_problem(message, var)
    assert len(message.splitlines()) == 1, message


def test_merge_strategy_error_lists_the_choices(base: dict[str, str]) -> None:
    message = error_of({**base, "MERGE_STRATEGY": "squash"})
    assert all(s in message for s in ("fast-forward", "rebase", "merge-commit"))


def test_branch_prefix_in_another_namespace_is_fine(base: dict[str, str]) -> None:
    assert load({**base, "GIT_BRANCH_PREFIX": "longshot/w/"}).git_branch_prefix == "longshot/w/"
    assert load({**base, "GIT_BRANCH_PREFIX": "main/", "GIT_MAIN_BRANCH": "trunk"}).git_main_branch == "trunk"


def test_missing_repo(base: dict[str, str]) -> None:
    env = dict(base)
    del env["GIT_REPO_URL"]
    assert_problem(error_of(env), "GIT_REPO_URL")


def test_nonexistent_local_path(base: dict[str, str], tmp_path: Path) -> None:
    message = error_of({**base, "GIT_REPO_URL": str(tmp_path / "nowhere")})
    assert_problem(message, "GIT_REPO_URL")
    assert "no such path" in message and str(tmp_path / "nowhere") in message


def test_relative_repo_path_is_resolved(base: dict[str, str], repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.parent)
    assert load({**base, "GIT_REPO_URL": "repo"}).git_repo_url == str(repo)


@pytest.mark.parametrize(
    "url", ["https://github.com/a/b.git", "git@github.com:a/b.git", "ssh://git@host/x", "file:///nowhere/x"]
)
def test_repo_urls_are_kept(base: dict[str, str], url: str) -> None:
    assert load({**base, "GIT_REPO_URL": url}).git_repo_url == url


def test_role_models_default_to_llm_model(base: dict[str, str]) -> None:
    c = load(base)
    assert [c.model_for(r) for r in ROLES] == ["m"] * 4


def test_role_models_override(base: dict[str, str]) -> None:
    c = load({**base, "PLANNER_MODEL": "big", "WORKER_MODEL": "fast"})
    assert {r: c.model_for(r) for r in ROLES} == {
        "planner": "big", "subplanner": "m", "worker": "fast", "reconciler": "m"}


def test_every_role_set_needs_no_llm_model(base: dict[str, str]) -> None:
    env = {k: v for k, v in base.items() if k != "LLM_MODEL"}
    env.update({f"{r.upper()}_MODEL": r for r in ROLES})
    c = load(env)
    assert [c.model_for(r) for r in ROLES] == list(ROLES)


def test_role_without_model(base: dict[str, str]) -> None:
    env = {k: v for k, v in base.items() if k != "LLM_MODEL"}
    env.update({"PLANNER_MODEL": "p", "SUBPLANNER_MODEL": "s", "RECONCILER_MODEL": "r"})
    message = error_of(env)
    assert_problem(message, "WORKER_MODEL")
    assert "set LLM_MODEL or WORKER_MODEL" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("none", []),
        ("NONE", []),
        ("[]", []),
        ("make test", ["make test"]),
        ('["pytest -q", "npm test"]', ["pytest -q", "npm test"]),
        ("[ -f Makefile ] && make", ["[ -f Makefile ] && make"]),
    ],
)
def test_check_commands(base: dict[str, str], value: str | None, expected: list[str] | None) -> None:
    env = dict(base) if value is None else {**base, "CHECK_COMMANDS": value}
    assert load(env).check_commands == expected


def test_many_problems_are_reported_together(base: dict[str, str]) -> None:
    env = {"LLM_ENDPOINTS": "[]", "MAX_WORKERS": "0", "MERGE_STRATEGY": "squash", "GIT_BRANCH_PREFIX": "w"}
    message = error_of(env)
    for var in ("GIT_REPO_URL", "LLM_ENDPOINTS", "MAX_WORKERS", "MERGE_STRATEGY", "GIT_BRANCH_PREFIX", "WORKER_MODEL"):
        assert_problem(message, var)
    assert all(": " in line and "Fix:" in line for line in message.splitlines())
    assert "max_workers" not in message  # variable names, not field names


def test_error_is_not_chained_to_the_validation_error(base: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load({**base, "MAX_WORKERS": "0"})
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_secrets_never_shown(base: dict[str, str]) -> None:
    endpoints = json.dumps([{"name": "a", "endpoint": "http://a", "apiKey": CANARY}])
    c = load({**base, "LLM_API_KEY": CANARY, "LLM_ENDPOINTS": endpoints})
    for text in (repr(c), str(c), repr(c.endpoints), str(c.endpoints[0]), c.model_dump_json()):
        assert CANARY not in text
    assert c.secrets() == [CANARY]
    assert c.llm_api_key is not None and c.llm_api_key.get_secret_value() == CANARY


@pytest.mark.parametrize(
    "endpoints",
    [
        '[{"name": "a", "endpoint": "http://a", "apiKey": "%s", "weight": 0}]' % CANARY,
        '[{"name": "a", "endpoint": "http://a", "apiKey": "%s", "weight": 1},]' % CANARY,
        '[{"name": "a", "endpoint": "nope", "apiKey": "%s"}]' % CANARY,
        '[{"name": "a", "endpoint": "http://a", "apiKey": ["%s"]}]' % CANARY,
    ],
)
def test_secrets_never_in_errors(base: dict[str, str], endpoints: str) -> None:
    env = {**base, "LLM_API_KEY": CANARY, "LLM_ENDPOINTS": endpoints, "MAX_WORKERS": "0"}
    with pytest.raises(ConfigError) as info:
        load(env)
    assert CANARY not in str(info.value)
    assert CANARY not in repr(info.value)
    assert_problem(str(info.value), "LLM_ENDPOINTS")
