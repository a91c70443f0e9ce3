"""The access token and redaction: no page without the token, no secret on any page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from web.webkit import RUN, TOKEN, client, demo_logs, lines, signed_in, write_lines

from longshot.web.guard import cookie_name

PAGES = ["/", f"/runs/{RUN}", f"/runs/{RUN}/tasks/slug", f"/runs/{RUN}/replay", f"/runs/{RUN}/frame?upto=100",
         f"/runs/{RUN}/features", f"/runs/{RUN}/stream?key=run", "/static/live.js", "/runs/nope", "/nowhere"]


@pytest.mark.parametrize("path", PAGES)
def test_no_token_401_wrong_token_403(tmp_path: Path, path: str) -> None:
    with client(demo_logs(tmp_path)) as c:
        assert c.get(path).status_code == 401
        assert c.get(path, headers={"authorization": "Bearer wrong"}).status_code == 403
        c.cookies.set(cookie_name(8765), "wrong")
        assert c.get(path).status_code == 403
        c.cookies.clear()
        c.cookies.set(cookie_name(9999), TOKEN)  # another server's cookie on the same host
        assert c.get(path).status_code == 401
        wrong = c.get(path + ("&" if "?" in path else "?") + "token=wrong", follow_redirects=False)
        assert wrong.status_code == 403 and "set-cookie" not in wrong.headers


def test_token_in_the_address_becomes_a_cookie_and_leaves_the_address(tmp_path: Path) -> None:
    with client(demo_logs(tmp_path)) as c:
        answer = c.get(f"/runs/{RUN}/frame?upto=3&token={TOKEN}", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/runs/{RUN}/frame?upto=3"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get(answer.headers["location"]).json()["upto"] == 3
        assert "content-security-policy" in c.get("/").headers
    with client(tmp_path / "logs") as c:
        assert c.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


CONFIGURED = 'hunter2-"quoted"&<configured-key>'
SHAPED = {"openai": "sk-proj-Abc123def456ghi789jkl012mno", "github": "ghp_0123456789abcdefghijABCDEFGHIJ",
          "aws": "AKIAIOSFODNN7EXAMPLE", "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"}


def plant(tmp_path: Path) -> Path:
    """The demo log and a request log, with secrets planted wherever text from a run can go."""
    logs = demo_logs(tmp_path)
    records = lines(logs / f"{RUN}.ndjson")
    for r in records:
        if r["type"] == "task.created" and r["task_id"] == "slug":
            r["description"] += f" key {CONFIGURED}"
            r["acceptance"] = f"uses {SHAPED['aws']}"
        if r["type"] == "handoff.received" and r["task_id"] == "slug":
            r["handoff"]["summary"] += f" token {SHAPED['github']}"
            r["handoff"]["concerns"] = [SHAPED["openai"]]
        if r["type"] == "worker.step" and r["task_id"] == "slug":
            r["detail"] = f"curl -H 'Authorization: {SHAPED['bearer']}'"
        if r["type"] == "warning":
            r["message"] += f" {CONFIGURED} {SHAPED['openai']}"
        if r["type"] == "run.started":
            r["request"] += f" with {CONFIGURED}"
    write_lines(logs / f"{RUN}.ndjson", records)
    conversation = {"ts": 1.0, "role": "worker", "task_id": "slug", "endpoint": "default", "model": "m", "attempt": 1,
                    "messages_from": 0, "messages": [{"role": "user", "content": f"the key is {CONFIGURED}"}],
                    "response": {"role": "assistant", "content": f"echo {SHAPED['github']}"}}
    (logs / f"{RUN.replace('run-', 'requests-', 1)}.ndjson").write_text(json.dumps(conversation) + "\n")
    return logs


def test_no_page_shows_a_planted_secret(tmp_path: Path) -> None:
    logs = plant(tmp_path)
    bodies = {}
    with signed_in(client(logs, [CONFIGURED])) as c:
        for path in PAGES[:-3]:
            if "stream" not in path:
                bodies[path] = c.get(path).text
        for upto in range(0, 210, 15):
            bodies[f"frame {upto}"] = c.get(f"/runs/{RUN}/frame?upto={upto}").text
    assert "echo [REDACTED]" in bodies[f"/runs/{RUN}/tasks/slug"]  # the conversation was read, and redacted
    assert "[REDACTED]" in bodies[f"/runs/{RUN}"]
    forms = [CONFIGURED, json.dumps(CONFIGURED)[1:-1], "hunter2", *SHAPED.values(), SHAPED["bearer"].split()[1]]
    for where, body in bodies.items():
        for secret in forms:
            assert secret not in body, f"{secret!r} shown on {where}"


def test_a_streamed_body_is_redacted_across_chunks_that_split_a_character() -> None:
    """The last net decodes streamed text incrementally: a chunk ending inside a character loses nothing."""
    import asyncio

    from longshot.redaction import Redactor
    from longshot.web.guard import RedactBodies

    body = f"é {SHAPED['github']} ü".encode()
    cut = body.index("ü".encode()) + 1  # inside the two bytes of ü
    sent: list[dict] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
        await send({"type": "http.response.body", "body": body[cut:], "more_body": False})

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    asyncio.run(RedactBodies(app, Redactor())({"type": "http"}, None, send))  # type: ignore[arg-type]
    text = b"".join(m.get("body", b"") for m in sent).decode()
    assert text == "é [REDACTED] ü"
