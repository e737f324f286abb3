"""`bridge` admin commands: secrets (never echoed, stdin, refusals), list commands with
aligned columns or --json, and "not found" errors that name what does exist."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.cli import main
from app.extensions import Bridge
from tests.support.databases import cli_env
from tests.support.payloads import build


@dataclass(frozen=True)
class Done:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Done]


@pytest.fixture
def cli(bridge: Bridge, encryption_key: str, tmp_path: Path) -> Cli:
    env = cli_env(bridge.database.url, encryption_key, tmp_path)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Done:
        result = runner.invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)
        done = Done(result.exit_code, result.stdout, result.stderr)
        if ok:
            assert result.exit_code == 0, result.output
        return done

    return run


def post_signed(client: FlaskClient, integration_id: str, secret: str | None) -> int:
    d = build("integration_issue_created", secret=secret)
    url = f"/api/integrations/sentry?integrationId={integration_id}"
    return client.post(url, data=d.body, headers=d.headers).status_code


# ---------------------------------------------------------------- secrets


def test_a_pasted_secret_is_never_printed_back(cli: Cli, client: FlaskClient) -> None:
    cli("service", "create", "Checkout")

    created = cli("integration", "create", "--service", "checkout", "--secret", "pasted-1")

    assert "pasted-1" not in created.stdout + created.stderr
    assert "secret" not in created.json()
    assert created.json()["has_secret"] is True
    assert post_signed(client, created.json()["id"], "pasted-1") == 202


def test_a_secret_can_come_from_stdin_for_create_and_rotate(cli: Cli, client: FlaskClient) -> None:
    cli("service", "create", "Checkout")

    created = cli(
        "integration", "create", "--service", "checkout", "--secret-stdin", stdin="from-stdin\n"
    )
    integration_id = created.json()["id"]
    rotated = cli("integration", "rotate-secret", integration_id, "--secret-stdin", stdin="two\n")

    assert "from-stdin" not in created.stdout and "two" not in rotated.stdout
    assert "secret" not in rotated.json()
    assert "previous_secret_valid_until" in rotated.json()
    assert post_signed(client, integration_id, "two") == 202
    assert post_signed(client, integration_id, "from-stdin") == 202  # the grace period
    assert post_signed(client, integration_id, "neither") == 401


def test_a_generated_secret_is_printed_once(cli: Cli, client: FlaskClient) -> None:
    cli("service", "create", "Checkout")

    created = cli("integration", "create", "--service", "checkout", "--generate-secret").json()
    rotated = cli("integration", "rotate-secret", created["id"]).json()

    assert len(created["secret"]) == 64 and len(rotated["secret"]) == 64
    assert post_signed(client, created["id"], rotated["secret"]) == 202


def test_secret_and_secret_stdin_together_are_refused(cli: Cli) -> None:
    cli("service", "create", "Checkout")

    done = cli(
        "integration", "create", "--service", "checkout", "--secret", "a", "--secret-stdin",
        stdin="b\n", ok=False,
    )  # fmt: skip

    assert done.exit_code == 2
    assert "not both" in done.stderr


def test_rotating_an_unsigned_integration_is_refused_without_force(
    cli: Cli, client: FlaskClient
) -> None:
    cli("service", "create", "Checkout")
    integration_id = cli("integration", "create", "--service", "checkout").json()["id"]

    refused = cli("integration", "rotate-secret", integration_id, ok=False)

    assert refused.exit_code == 1
    assert "has no signing secret" in refused.stderr
    assert "--force" in refused.stderr
    assert post_signed(client, integration_id, None) == 202  # unsigned senders still work

    forced = cli(
        "integration", "rotate-secret", integration_id, "--force", "--secret-stdin",
        stdin="now-signed\n",
    ).json()  # fmt: skip
    assert forced["has_secret"] is True
    assert "previous_secret_valid_until" not in forced  # there was no previous secret
    assert post_signed(client, integration_id, None) == 401
    assert post_signed(client, integration_id, "now-signed") == 202


def test_remove_secret_lets_unsigned_deliveries_in_again(cli: Cli, client: FlaskClient) -> None:
    cli("service", "create", "Checkout")
    integration_id = cli("integration", "create", "--service", "checkout", "--secret", "s").json()[
        "id"
    ]
    assert post_signed(client, integration_id, None) == 401

    removed = cli("integration", "remove-secret", integration_id)

    assert removed.json()["has_secret"] is False
    assert "keep the webhook URL private" in removed.stderr
    assert post_signed(client, integration_id, None) == 202


# ---------------------------------------------------------------- lists


def table(stdout: str) -> list[list[str]]:
    """Rows of an aligned table, split at the header's column starts."""
    lines = stdout.rstrip("\n").split("\n")
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    # Headers may hold one space ("LAST USED"): a start must follow two spaces.
    starts = [s for s in starts if s == 0 or header[s - 2 : s] == "  "]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines]


def test_service_list_prints_aligned_columns_or_json(cli: Cli) -> None:
    cli("service", "create", "Checkout")
    cli("service", "create", "Payments API", "--reopen-window-minutes", "5")
    cli("integration", "create", "--service", "checkout")
    cli("integration", "create", "--service", "checkout")

    rows = table(cli("service", "list").stdout)
    listed = cli("service", "list", "--json").json()

    assert rows[0] == ["ID", "NAME", "SLUG", "REOPEN WINDOW (MIN)", "INTEGRATIONS"]
    assert [row[1:] for row in rows[1:]] == [
        ["Checkout", "checkout", "30", "2"],
        ["Payments API", "payments-api", "5", "0"],
    ]
    assert [(s["name"], s["integrations"]) for s in listed] == [
        ("Checkout", 2),
        ("Payments API", 0),
    ]


def test_integration_list_tells_same_names_apart(cli: Cli) -> None:
    cli("service", "create", "Checkout")
    cli("service", "create", "Payments")
    one = cli("integration", "create", "--service", "checkout", "--name", "Sentry").json()
    two = cli(
        "integration", "create", "--service", "payments", "--name", "Sentry", "--secret", "x"
    ).json()

    rows = table(cli("integration", "list").stdout)
    only = cli("integration", "list", "--service", "payments", "--json").json()

    assert rows[0] == ["ID", "SERVICE", "NAME", "ENABLED", "SIGNED"]
    assert rows[1:] == [
        [one["id"], "Checkout", "Sentry", "yes", "no"],
        [two["id"], "Payments", "Sentry", "yes", "yes"],
    ]
    assert [i["id"] for i in only] == [two["id"]]
    assert only[0]["webhook_url"] == (
        f"https://bridge.example.com/api/integrations/sentry?integrationId={two['id']}"
    )
    assert "secret" not in only[0]


def test_user_and_token_lists(cli: Cli) -> None:
    cli("user", "create", "zoe@example.com", "--admin")
    cli("user", "create", "al@example.com")
    token = cli("token", "create", "al@example.com", "--name", "laptop").json()

    users = table(cli("user", "list").stdout)
    users_json = cli("user", "list", "--json").json()
    tokens = table(cli("token", "list").stdout)
    tokens_json = cli("token", "list", "al@example.com", "--json").json()
    cli("token", "revoke", str(token["id"]))
    revoked = table(cli("token", "list", "al@example.com").stdout)

    assert users[0] == ["ID", "EMAIL", "ROLE", "ACTIVE"]
    assert [row[1:] for row in users[1:]] == [
        ["al@example.com", "responder", "yes"],
        ["zoe@example.com", "admin", "yes"],
    ]
    assert [u["email"] for u in users_json] == ["al@example.com", "zoe@example.com"]
    assert tokens[0] == ["ID", "EMAIL", "NAME", "CREATED (UTC)", "LAST USED", "REVOKED"]
    assert tokens[1][:3] == [str(token["id"]), "al@example.com", "laptop"]
    assert tokens[1][4:] == ["—", "—"]
    assert [t["name"] for t in tokens_json] == ["laptop"]
    assert token["token"] not in json.dumps(tokens_json)
    assert revoked[1][5] != "—"


def test_an_empty_list_is_just_the_header(cli: Cli) -> None:
    assert cli("integration", "list").stdout == "ID  SERVICE  NAME  ENABLED  SIGNED\n"
    assert cli("service", "list", "--json").json() == []


# ---------------------------------------------------------------- unknown names


def test_an_unknown_service_lists_the_services(cli: Cli) -> None:
    empty = cli("integration", "create", "--service", "nope", ok=False)
    cli("service", "create", "Checkout")
    cli("service", "create", "Payments")

    done = cli("integration", "create", "--service", "chekout", ok=False)

    assert "No service named 'nope'; services: none yet" in empty.stderr
    assert done.exit_code == 1
    assert "No service named 'chekout'; services: Checkout, Payments." in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_user_lists_the_users(cli: Cli) -> None:
    cli("user", "create", "al@example.com")

    done = cli("token", "create", "bob@example.com", ok=False)
    deactivate = cli("user", "deactivate", "bob@example.com", ok=False)

    assert "No user with email bob@example.com; users: al@example.com." in done.stderr
    assert "users: al@example.com" in deactivate.stderr


def test_an_unknown_integration_lists_names_and_id_prefixes_only(cli: Cli) -> None:
    cli("service", "create", "Checkout")
    made = cli("integration", "create", "--service", "checkout", "--name", "Prod").json()

    done = cli("integration", "disable", "nope", ok=False)

    assert f"integrations: Prod — Checkout ({made['id'][:6]}…)" in done.stderr
    assert made["id"] not in done.stderr  # the id is a credential: a prefix only
    assert "bridge integration list" in done.stderr


# ---------------------------------------------------------------- the printed webhook URL


def test_create_prints_the_running_servers_port_without_port_set(
    bridge: Bridge, encryption_key: str, tmp_path: Path
) -> None:
    """`PORT=8081 make run` in one shell, the CLI in another: its URL has port 8081."""
    from app.served_url import record_listening

    env = cli_env(
        bridge.database.url, encryption_key, tmp_path, BRIDGE_PUBLIC_URL="", PORT="", HOST=""
    )
    runner = CliRunner()
    runner.invoke(main, ["service", "create", "Checkout"], env=env, catch_exceptions=False)
    before = runner.invoke(main, ["integration", "create", "--service", "checkout"], env=env)
    record_listening(tmp_path, [("127.0.0.1", 8081)], os.getpid())

    after = runner.invoke(main, ["integration", "create", "--service", "checkout"], env=env)

    assert json.loads(before.stdout)["webhook_url"].startswith("http://127.0.0.1:8000/")
    created = json.loads(after.stdout)
    assert created["webhook_url"] == (
        f"http://127.0.0.1:8081/api/integrations/sentry?integrationId={created['id']}"
    )
    assert "http://127.0.0.1:8081 is a loopback address" in after.stderr
    assert "Sentry's cloud cannot deliver to it" in after.stderr
    assert "BRIDGE_PUBLIC_URL" in after.stderr
    listed = runner.invoke(main, ["integration", "list", "--json"], env=env)
    assert json.loads(listed.stdout)[1]["webhook_url"] == created["webhook_url"]


def test_create_with_a_public_url_prints_no_loopback_note(cli: Cli) -> None:
    cli("service", "create", "Checkout")

    created = cli("integration", "create", "--service", "checkout")

    assert created.json()["webhook_url"].startswith("https://bridge.example.com/api/")
    assert "loopback" not in created.stderr
