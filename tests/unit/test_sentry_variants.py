"""What real Sentry sends beyond its docs (SPEC 3.4, 4.1, 4.3, 4.4): old payloads, archived
substatuses, Seer and activity alerts, resources that never page, legacy plugin variants.
Fixtures are in tests/fixtures/sentry (provenance in HEADERS.md there)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.alerts import Format, Intent, read_alert
from tests.support.payloads import load

ISSUE_KEY = "sentry-4512345678"
EVENT_ID = "5f0c2b8e9a7d4c3b8e1f6a2d9c4b7e10"


def read(name: str, *, with_header: bool = True) -> Any:
    resource, payload = load(name)
    return read_alert(payload, resource if with_header else None)


# ------------------------------------------------------------------ Sentry's event ids


@pytest.mark.parametrize(
    "name",
    [
        "integration_error_created",
        "integration_event_alert_triggered",
        "integration_event_alert_triggered_2021",
        "legacy_webhooks_plugin",
        "opsknight_event",
    ],
)
def test_event_formats_carry_the_sentry_event_id_that_retries_repeat(name: str) -> None:
    resource, payload = load(name)

    alert = read_alert(payload, resource)

    member = payload.get("data", {}).get("error") or payload.get("data", {}).get("event")
    assert alert.event_id == (member or payload["event"])["event_id"]


@pytest.mark.parametrize(
    "name", ["integration_issue_created", "opsknight_issue", "integration_metric_alert_critical"]
)
def test_deliveries_without_an_event_carry_no_event_id(name: str) -> None:
    assert read(name).event_id is None


def test_sentry9_event_with_only_an_integer_id_uses_it_as_the_event_id() -> None:
    _, payload = load("legacy_webhooks_plugin_sentry9")
    del payload["event"]["event_id"]

    alert = read_alert(payload)

    assert alert.event_id == "84501927733"
    assert alert.dedup_key == "sentry-1288734105"  # the issue still comes first


# ------------------------------------------------------------------ old event payloads


def test_event_alert_before_2022_finds_its_issue_in_issue_url() -> None:
    alert = read("integration_event_alert_triggered_2021")

    assert alert.issue_id == "4512345678"
    assert alert.dedup_key == ISSUE_KEY
    assert alert.dedup_key != f"sentry-{EVENT_ID}"


def test_error_before_2022_finds_its_issue_in_the_event_web_url() -> None:
    _, payload = load("integration_error_created_2021")
    assert "issue_url" not in payload["data"]["error"]

    alert = read_alert(payload, "error")

    assert alert.dedup_key == ISSUE_KEY


def test_event_naming_no_issue_anywhere_is_keyed_by_its_event_id() -> None:
    _, payload = load("integration_error_created_2021")
    del payload["data"]["error"]["web_url"]

    alert = read_alert(payload, "error")

    assert alert.dedup_key == f"sentry-{EVENT_ID}"


def test_issue_id_in_a_url_of_another_kind_is_not_taken_for_an_issue() -> None:
    _, payload = load("integration_error_created_2021")
    payload["data"]["error"]["web_url"] = "https://sentry.io/organizations/acme/issues/?query=x"

    assert read_alert(payload, "error").dedup_key == f"sentry-{EVENT_ID}"


def test_legacy_plugin_without_id_finds_the_issue_in_its_url() -> None:
    _, payload = load("legacy_webhooks_plugin")
    del payload["id"]

    alert = read_alert(payload)

    assert alert.dedup_key == "sentry-4512399001"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("integration_event_alert_triggered", ("data", "event", "issue_id")),
        ("integration_comment_created", ("data", "issue_id")),
        ("integration_seer_root_cause_completed", ("data", "group_id")),
        ("legacy_webhooks_plugin", ("id",)),
        ("integration_issue_created", ("data", "issue", "id")),
    ],
)
@pytest.mark.parametrize("as_int", [True, False], ids=["integer", "string"])
def test_integer_and_string_issue_ids_are_the_same_key(
    name: str, path: tuple[str, ...], as_int: bool
) -> None:
    resource, payload = load(name)
    holder = payload
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = 4512399777 if as_int else "4512399777"

    assert read_alert(payload, resource).dedup_key == "sentry-4512399777"


# ------------------------------------------------------------------ the envelope's issue.created


def test_enveloped_issue_created_cannot_reopen() -> None:
    assert read("integration_issue_created").can_reopen is False


@pytest.mark.parametrize(
    "name",
    [
        "integration_issue_unresolved",
        "integration_issue_unresolved_escalating",
        "integration_event_alert_triggered",
        "integration_error_created",
        "opsknight_issue",  # hand-written (curl): `created` keeps reopening
        "opsknight_event",
    ],
)
def test_every_other_trigger_can_reopen(name: str) -> None:
    assert read(name).can_reopen is True


# ------------------------------------------------------------------ substatus


@pytest.mark.parametrize(
    "substatus", ["archived_until_escalating", "archived_until_condition_met", "archived_forever"]
)
def test_archived_issue_acknowledges_and_keeps_its_substatus(substatus: str) -> None:
    resource, payload = load("integration_issue_archived_until_escalating")
    payload["data"]["issue"]["substatus"] = substatus

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.ACKNOWLEDGE
    assert alert.substatus == substatus


@pytest.mark.parametrize(
    ("name", "substatus"),
    [
        ("integration_issue_unresolved", "regressed"),
        ("integration_issue_unresolved_escalating", "escalating"),
    ],
)
def test_unresolved_issue_triggers_and_says_why(name: str, substatus: str) -> None:
    alert = read(name)

    assert alert.intent is Intent.TRIGGER
    assert alert.action == "unresolved"
    assert alert.substatus == substatus


# ------------------------------------------------------------------ activity alerts and Seer


@pytest.mark.parametrize("with_header", [True, False], ids=["header", "inferred"])
def test_activity_alert_is_a_note_never_an_issue_webhook(with_header: bool) -> None:
    alert = read("integration_activity_alert_triggered", with_header=with_header)

    assert alert.resource == "activity_alert"
    assert alert.intent is Intent.COMMENT
    assert alert.dedup_key == ISSUE_KEY
    assert alert.note_kind == "sentry_activity"
    assert alert.comment is not None
    assert "Seer-Ergebnisse → Incident Bridge" in alert.comment
    assert "veralteten API-Schlüssel" in alert.comment
    assert alert.note_data is not None
    assert alert.note_data["links"] == [
        "https://acme-gmbh.sentry.io/organizations/acme-gmbh/monitors/alerts/6021/"
    ]


@pytest.mark.parametrize("marker", ["activity", "alert"])
def test_either_activity_or_alert_beside_data_issue_marks_an_activity_alert(marker: str) -> None:
    _, payload = load("integration_activity_alert_triggered")
    del payload["data"]["alert" if marker == "activity" else "activity"]

    assert read_alert(payload).resource == "activity_alert"


def test_activity_alert_of_a_pull_request_links_it() -> None:
    resource, payload = load("integration_activity_alert_triggered")
    payload["data"]["activity"] = {
        "type": "seer_pr_created",
        "details": {
            "pull_requests": [
                {"repo_name": "acme/payments-api", "url": "https://github.com/acme/p/pull/7"},
                {"repo_name": "acme/evil", "url": "javascript:alert(1)"},
            ]
        },
    }

    alert = read_alert(payload, resource)

    assert alert.note_data is not None
    assert "https://github.com/acme/p/pull/7" in alert.note_data["links"]
    assert all(link.startswith("https://") for link in alert.note_data["links"])
    assert "javascript:" not in (alert.comment or "")


def test_activity_alert_without_an_issue_is_ignored_with_a_reason_not_refused() -> None:
    resource, payload = load("integration_activity_alert_triggered")
    del payload["data"]["issue"]

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason is not None
    assert "never drive incidents" in alert.reason


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("integration_seer_root_cause_completed", "Seer root cause: Der PSP-Client"),
        ("integration_seer_solution_completed", "Seer solution: Den API-Schlüssel"),
        ("integration_seer_pr_created", "https://github.com/acme/payments-api/pull/1432"),
    ],
)
def test_seer_findings_are_a_note_on_the_issue_of_group_id(name: str, expected: str) -> None:
    alert = read(name)

    assert alert.intent is Intent.COMMENT
    assert alert.dedup_key == ISSUE_KEY
    assert alert.note_kind == "seer"
    assert alert.comment is not None
    assert expected in alert.comment


def test_seer_root_cause_names_the_most_important_step_and_its_file() -> None:
    comment = read("integration_seer_root_cause_completed").comment

    assert "Key step: gateway.authorize()" in comment
    assert "acme/payments-api: payments/gateway.py" in comment
    assert "Checkout sendet" not in comment  # only the step Seer marked as most important


def test_seer_pull_request_link_is_kept_in_the_note_data() -> None:
    alert = read("integration_seer_pr_created")

    assert alert.note_data == {
        "seer_action": "pr_created",
        "run_id": "771204",
        "links": ["https://github.com/acme/payments-api/pull/1432"],
    }


def test_seer_coding_completed_lists_the_changes() -> None:
    resource, payload = load("integration_seer_pr_created")
    payload["action"] = "coding_completed"
    payload["data"]["changes"] = [
        {"repo_name": "payments-api", "title": "fix: reload the key", "branch_name": "seer/key"}
    ]

    comment = read_alert(payload, resource).comment

    assert "fix: reload the key in payments-api, branch seer/key" in comment


@pytest.mark.parametrize(
    "action", ["root_cause_started", "solution_started", "coding_started", "triage_completed"]
)
def test_seer_progress_notices_are_ignored_with_a_reason(action: str) -> None:
    resource, payload = load("integration_seer_root_cause_started")
    payload["action"] = action

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason is not None
    assert action in alert.reason


def test_seer_without_group_id_is_ignored_with_a_reason_not_refused() -> None:
    resource, payload = load("integration_seer_solution_completed")
    del payload["data"]["group_id"]

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason is not None


# ------------------------------------------------------------------ resources that never page


@pytest.mark.parametrize(
    ("resource", "action"),
    [
        ("preprod_artifact", "size_analysis_completed"),
        ("preprod_artifact", "build_distribution_completed"),
        ("size_analysis", "completed"),
        ("uptime_monitor", "triggered"),  # any resource Sentry adds later
    ],
)
def test_resources_that_do_not_drive_incidents_are_ignored_with_a_reason(
    resource: str, action: str
) -> None:
    _, payload = load("integration_preprod_artifact_size_analysis_completed")
    payload["action"] = action

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason == f"resource {resource!r} does not drive incidents"


def test_preprod_artifact_is_recognised_without_its_header() -> None:
    alert = read("integration_preprod_artifact_size_analysis_completed", with_header=False)

    assert (alert.resource, alert.intent) == ("preprod_artifact", Intent.IGNORE)


def test_unknown_resource_with_issue_like_data_never_triggers() -> None:
    _, payload = load("integration_issue_created")

    alert = read_alert(payload, "issue_digest")

    assert alert.intent is Intent.IGNORE


# ------------------------------------------------------------------ legacy WebHooks plugin


def test_legacy_plugin_with_an_empty_message_takes_the_event_title() -> None:
    alert = read("legacy_webhooks_plugin_exception")

    assert alert.title == "PaymentDeclined: カードが拒否されました"


def test_sentry9_plugin_event_without_title_takes_the_exception_value() -> None:
    alert = read("legacy_webhooks_plugin_sentry9")

    assert alert.format is Format.LEGACY_WEBHOOKS
    assert alert.title == "RefundRejected: Erstattung abgelehnt: Betrag übersteigt die Zahlung"


def test_sentry9_plugin_event_without_exception_takes_the_culprit() -> None:
    _, payload = load("legacy_webhooks_plugin_sentry9")
    del payload["event"]["sentry.interfaces.Exception"]

    assert read_alert(payload).title == "payments.refunds in issue_refund"


def test_sentry9_plugin_event_with_a_message_interface_takes_its_message() -> None:
    _, payload = load("legacy_webhooks_plugin_sentry9")
    del payload["event"]["sentry.interfaces.Exception"]
    payload["event"]["sentry.interfaces.Message"] = {"message": "Erstattung hängt"}

    assert read_alert(payload).title == "Erstattung hängt"


def test_legacy_plugin_source_is_the_project_name_and_keeps_the_slug() -> None:
    alert = read("legacy_webhooks_plugin_sentry9")

    assert alert.source == "Sentry - Payments API"
    assert (alert.project, alert.project_name) == ("payments-api", "Payments API")


# ------------------------------------------------------------------ project names


@pytest.mark.parametrize(
    "name",
    [
        "integration_event_alert_triggered",
        "integration_error_created",
        "integration_metric_alert_critical",
    ],
)
def test_slug_only_deliveries_carry_the_slug_for_the_learned_name(name: str) -> None:
    alert = read(name)

    assert (alert.project, alert.project_name) == ("payments-api", None)
    assert alert.source == "Sentry - payments-api"  # until ingest finds the learned name


@pytest.mark.parametrize(
    "name", ["integration_issue_created", "opsknight_issue", "opsknight_event"]
)
def test_deliveries_naming_the_project_carry_both_slug_and_name(name: str) -> None:
    alert = read(name)

    assert alert.project_name == "Payments API"
    assert alert.source == "Sentry - Payments API"


# ------------------------------------------------------------------ metric alerts


def test_metric_alert_title_is_the_alerts_title_not_the_rule_name() -> None:
    resource, payload = load("integration_metric_alert_critical")
    payload["data"]["metric_alert"]["title"] = "Fehlerrate Checkout"

    assert read_alert(payload, resource).title == "Fehlerrate Checkout"


def test_metric_alert_without_title_takes_the_description_title() -> None:
    resource, payload = load("integration_metric_alert_critical")
    del payload["data"]["metric_alert"]["title"]

    title = read_alert(payload, resource).title

    assert title == "Critical: Zahlungsfehler-Rate zu hoch (Überwachung)"


def test_metric_alert_source_names_the_alert_rules_project() -> None:
    resource, payload = load("integration_metric_alert_critical")
    payload["data"]["metric_alert"]["alert_rule"]["projects"] = ["checkout-web"]

    alert = read_alert(payload, resource)

    assert (alert.source, alert.project) == ("Sentry - checkout-web", "checkout-web")


def test_metric_alert_rule_without_projects_names_the_alerts_project() -> None:
    resource, payload = load("integration_metric_alert_critical")
    del payload["data"]["metric_alert"]["alert_rule"]["projects"]

    assert read_alert(payload, resource).project == "payments-api"
