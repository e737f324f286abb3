"""The incident list (with live updates) and the incident page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.domain.lifecycle import HumanAction
from app.extensions import bridge
from app.services import accounts, catalog, incidents
from app.services.incidents import IncidentFilters
from app.web.security import same_site_path
from app.web.views import blueprint

# Open (triggered and acknowledged) is what an on-call engineer works, so it is the default.
TABS = ("open", "triggered", "acknowledged", "resolved", "all")
DEFAULT_TAB = "open"
SEVERITIES = ("critical", "error", "warning", "info")
SORTS = {
    "urgency": "On fire first",
    "-severity": "Severity",
    "-id": "Newest",
    "-last_event_at": "Last event",
    "id": "Oldest",
}
DEFAULT_SORT = "urgency"
PAGE_SIZE = 25
TEST_FILTERS = ("hide", "only")
BULK_ACTIONS = {
    "acknowledge": (HumanAction.ACKNOWLEDGE, "Acknowledged"),
    "resolve": (HumanAction.RESOLVE, "Resolved"),
}


def _list_state() -> dict[str, Any]:
    """The filters of the list, read from the query string (bad values fall back)."""
    args = request.args
    tab = args.get("status", DEFAULT_TAB)
    severity = args.get("severity") or None
    sort = args.get("sort", DEFAULT_SORT)
    return {
        "status": tab if tab in TABS else DEFAULT_TAB,
        "service": args.get("service") or None,
        "severity": severity if severity in SEVERITIES else None,
        "q": (args.get("q") or "").strip()[:200] or None,
        "sort": sort if sort in SORTS else DEFAULT_SORT,
        "cursor": args.get("cursor") or None,
        # Only the incidents assigned to the person looking (mine=1).
        "mine": "1" if args.get("mine") == "1" else None,
        # The bridge's test alerts: shown unless test=hide (or only them, test=only).
        "test": args.get("test") if args.get("test") in TEST_FILTERS else None,
    }


def _page(state: dict[str, Any]) -> tuple[incidents.Page, list[Any], int]:
    filters = IncidentFilters(
        status=None if state["status"] == "all" else state["status"],
        severity=state["severity"],
        service=state["service"],
        text=state["q"],
        sort=state["sort"],
        assignee=current_user.email if state.get("mine") else None,
        test=state.get("test") or "show",
    )
    with bridge().database.reading() as session:
        page = incidents.list_incidents(session, filters, PAGE_SIZE, state["cursor"])
        services = catalog.list_services(session)
        triggered = incidents.count_triggered(session)
        # Touch what the template reads while the session is open.
        for incident in page.items:
            _ = incident.service.name
        return page, services, triggered


def _query(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The query string of the list with `changes`; defaults are left out of the URL."""
    merged = {**state, **changes}
    defaults = {"status": DEFAULT_TAB, "sort": DEFAULT_SORT}
    return {key: value for key, value in merged.items() if value and defaults.get(key) != value}


@blueprint.get("/")
@login_required
def home() -> Response:
    return redirect(url_for("views.incident_list"))  # type: ignore[return-value]


@blueprint.get("/incidents")
@login_required
def incident_list() -> str:
    state = _list_state()
    page, services, triggered = _page(state)
    return render_template(
        "incidents/list.html",
        page=page,
        services=services,
        state=state,
        tabs=TABS,
        severities=SEVERITIES,
        sorts=SORTS,
        query=_query,
        triggered_count=triggered,
    )


@blueprint.get("/incidents/rows")
@login_required
def incident_rows() -> str:
    """The list's rows alone, for the page's live refresh (same filters, same page)."""
    state = _list_state()
    page, _services, triggered = _page(state)
    return render_template(
        "incidents/_rows.html", page=page, state=state, query=_query, triggered_count=triggered
    )


@blueprint.post("/incidents/bulk")
@login_required
def bulk_action() -> Response:
    """Acknowledge or resolve the selected rows (or the one row whose button was pressed),
    each through the single action's path; then back to the list with what happened."""
    form = request.form
    one = form.get("row_action", "")
    if one:
        name, _, id_text = one.partition(":")
        raw_ids = [id_text]
    else:
        name = form.get("action", "")
        raw_ids = form.getlist("ids")
    back = same_site_path(form.get("next")) or url_for("views.incident_list")
    if name not in BULK_ACTIONS:
        flash("Choose Acknowledge or Resolve.", "error")
        return redirect(back)  # type: ignore[return-value]
    ids = [int(value) for value in raw_ids if value.isdigit() and len(value) < 10]
    if not ids:
        flash("Select at least one incident first.", "error")
        return redirect(back)  # type: ignore[return-value]
    action, done = BULK_ACTIONS[name]
    outcomes = incidents.act_on_incidents(
        bridge().database, ids, action, current_user.email, datetime.now(UTC)
    )
    changed = [outcome for outcome in outcomes if outcome.error is None]
    if changed:
        numbers = ", ".join(f"#{outcome.incident_id}" for outcome in changed)
        flash(f"{done} {_incidents(len(changed))}: {numbers}.", "info")
    for outcome in outcomes:
        if outcome.error is not None:
            flash(f"Incident #{outcome.incident_id}: {outcome.error.message}", "error")
    return redirect(back)  # type: ignore[return-value]


def _incidents(count: int) -> str:
    return "1 incident" if count == 1 else f"{count} incidents"


@blueprint.get("/incidents/<int:incident_id>")
@login_required
def incident_detail(incident_id: int) -> str:
    with bridge().database.reading() as session:
        incident = incidents.get_incident(session, incident_id)
        _ = incident.service.name
        timeline = incidents.incident_timeline(session, incident_id)
        deliveries = incidents.incident_deliveries(session, incident_id)
        users = [user.email for user in accounts.list_users(session) if user.is_active]
    return render_template(
        "incidents/detail.html",
        incident=incident,
        timeline=timeline,
        deliveries=deliveries,
        users=users,
    )


def _act(incident_id: int, action: HumanAction, done: str) -> Response:
    with bridge().database.transaction() as session:
        incidents.act_on_incident(
            session, incident_id, action, current_user.email, datetime.now(UTC)
        )
    flash(done, "info")
    return redirect(url_for("views.incident_detail", incident_id=incident_id))  # type: ignore[return-value]


@blueprint.post("/incidents/<int:incident_id>/acknowledge")
@login_required
def acknowledge(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.ACKNOWLEDGE, "Acknowledged.")


@blueprint.post("/incidents/<int:incident_id>/resolve")
@login_required
def resolve(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.RESOLVE, "Resolved.")


@blueprint.post("/incidents/<int:incident_id>/reopen")
@login_required
def reopen(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.REOPEN, "Reopened.")


@blueprint.post("/incidents/<int:incident_id>/notes")
@login_required
def add_note(incident_id: int) -> Response:
    with bridge().database.transaction() as session:
        incidents.add_note(
            session,
            incident_id,
            current_user.email,
            request.form.get("text", ""),
            datetime.now(UTC),
        )
    flash("Note added.", "info")
    return redirect(url_for("views.incident_detail", incident_id=incident_id) + "#timeline")  # type: ignore[return-value]


@blueprint.post("/incidents/<int:incident_id>/assign")
@login_required
def assign(incident_id: int) -> Response:
    """Assign to the chosen user (empty: unassign); "me" is the person asking."""
    chosen = (request.form.get("user") or "").strip()
    user = current_user.email if chosen == "me" else (chosen or None)
    with bridge().database.transaction() as session:
        incident = incidents.assign_incident(
            session, incident_id, user, current_user.email, datetime.now(UTC)
        )
        assignee = incident.assignee
    flash(f"Assigned to {assignee}." if assignee else "Unassigned.", "info")
    return redirect(url_for("views.incident_detail", incident_id=incident_id))  # type: ignore[return-value]
