"""Runs the README's curl walk-through, command by command, against the app.

Each `curl` in the walkthrough block is parsed (method, URL, headers, body) and sent with
httpx; a trailing `# → NNN` is the status the README promises. `VAR=$(curl … | jq -r .f)`
stores a field for later commands. So the README cannot drift from the API unnoticed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from tests.fixtures.auth import TenantHandle
from tests.fixtures.paths import ROOT

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", re.S)
ASSIGN = re.compile(r"^(\w+)=\$\((.*)\|\s*jq -r '?\.([\w.\[\]]+)'?\)$")
STEP = re.compile(r"(\w+)|\[(\d+)\]")
EXPECT = re.compile(r"\s+#\s*→\s*(\d{3})\s*$")


@dataclass
class Command:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    expect: int | None = None
    assign: tuple[str, str] | None = None


def parse(script: str) -> list[Command]:
    commands: list[Command] = []
    for raw in script.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        expect = None
        if m := EXPECT.search(line):
            expect = int(m.group(1))
            line = line[: m.start()]
        assign = None
        if m := ASSIGN.match(line):
            assign = (m.group(1), m.group(3))
            line = m.group(2)
        tokens = shlex.split(line)
        assert tokens[0] == "curl", line
        command = Command(method="GET", path="", expect=expect, assign=assign)
        i = 1
        while i < len(tokens):
            token = tokens[i]
            if token == "-X":
                command.method = tokens[i + 1]
                i += 1
            elif token == "-H":
                name, value = tokens[i + 1].split(":", 1)
                command.headers[name.strip()] = value.strip()
                i += 1
            elif token in ("-d", "--data"):
                command.body = tokens[i + 1]
                command.method = command.method if command.method != "GET" else "POST"
                i += 1
            elif token.startswith("http"):
                parts = urlsplit(token)
                command.path = parts.path + (f"?{parts.query}" if parts.query else "")
            i += 1
        commands.append(command)
    return commands


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: env[m.group(1)], value)


async def test_readme_walkthrough_runs_as_written(tenant: TenantHandle) -> None:
    match = BLOCK.search(README.read_text())
    assert match, "README has no walkthrough block"
    commands = parse(match.group(1))
    assert len(commands) >= 10
    env = {"FEEDBACK_KEY": tenant.admin_key}
    client: httpx.AsyncClient = tenant.client
    for command in commands:
        headers = {k: expand(v, env) for k, v in command.headers.items()}
        response = await client.request(
            command.method,
            expand(command.path, env),
            headers=headers,
            content=expand(command.body, env) if command.body else None,
        )
        assert command.expect is not None, f"state the expected status of {command.path}"
        assert response.status_code == command.expect, (command, response.text)
        if command.assign:
            name, path = command.assign
            value = response.json()
            for key, index in STEP.findall(path):  # e.g. items[0].id
                value = value[key] if key else value[int(index)]
            env[name] = value
