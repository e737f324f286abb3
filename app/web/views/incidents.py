"""The incident list (with live updates) and the incident page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.domain.lifecycle import HumanAction
from app.extensions import bridge
from app.services import catalog, incidents
from app.services.incidents import IncidentFilters
from app.web.views import blueprint

TABS = ("triggered", "acknowledged", "resolved", "all")
SEVERITIES = ("critical", "error", "warning", "info")
SORTS = {"-id": "Newest", "-last_event_at": "Last event", "id": "Oldest"}
PAGE_SIZE = 25


def _list_state() -> dict[str, Any]:
    """The filters of the list, read from the query string (bad values fall back)."""
    args = request.args
    tab = args.get("status", "triggered")
    severity = args.get("severity") or None
    sort = args.get("sort", "-id")
    return {
        "status": tab if tab in TABS else "triggered",
        "service": args.get("service") or None,
        "severity": severity if severity in SEVERITIES else None,
        "q": (args.get("q") or "").strip()[:200] or None,
        "sort": sort if sort in SORTS else "-id",
        "cursor": args.get("cursor") or None,
    }


def _page(state: dict[str, Any]) -> tuple[incidents.Page, list[Any]]:
    filters = IncidentFilters(
        status=None if state["status"] == "all" else state["status"],
        severity=state["severity"],
        service=state["service"],
        text=state["q"],
        sort=state["sort"],
    )
    with bridge().database.reading() as session:
        page = incidents.list_incidents(session, filters, PAGE_SIZE, state["cursor"])
        services = catalog.list_services(session)
        # Touch what the template reads while the session is open.
        for incident in page.items:
            _ = incident.service.name
        return page, services


def _query(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    merged = {**state, **changes}
    return {key: value for key, value in merged.items() if value}


@blueprint.get("/")
@login_required
def home() -> Response:
    return redirect(url_for("views.incident_list"))  # type: ignore[return-value]


@blueprint.get("/incidents")
@login_required
def incident_list() -> str:
    state = _list_state()
    page, services = _page(state)
    return render_template(
        "incidents/list.html",
        page=page,
        services=services,
        state=state,
        tabs=TABS,
        severities=SEVERITIES,
        sorts=SORTS,
        query=_query,
    )


@blueprint.get("/incidents/rows")
@login_required
def incident_rows() -> str:
    """The list's rows alone, for the page's live refresh (same filters, same page)."""
    state = _list_state()
    page, _services = _page(state)
    return render_template("incidents/_rows.html", page=page, state=state, query=_query)


@blueprint.get("/incidents/<int:incident_id>")
@login_required
def incident_detail(incident_id: int) -> str:
    with bridge().database.reading() as session:
        incident = incidents.get_incident(session, incident_id)
        _ = incident.service.name
        timeline = incidents.incident_timeline(session, incident_id)
        deliveries = incidents.incident_deliveries(session, incident_id)
    return render_template(
        "incidents/detail.html", incident=incident, timeline=timeline, deliveries=deliveries
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
