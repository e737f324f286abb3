"""/api/incidents: list, show, and work incidents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify

from app.domain.lifecycle import HumanAction
from app.extensions import bridge
from app.services import incidents
from app.services.incidents import IncidentFilters
from app.web.api import blueprint
from app.web.api.docs import documented, json_body, query_args
from app.web.auth import actor_name, requires
from app.web.errors import error_fields, status_for
from app.web.schemas import (
    AssignInputSchema,
    BulkActionInputSchema,
    BulkActionResultSchema,
    IncidentDeliverySchema,
    IncidentDetailSchema,
    IncidentListQuerySchema,
    IncidentPageSchema,
    IncidentSchema,
    NoteInputSchema,
    TimelineEntrySchema,
)


@blueprint.get("/incidents")
@requires()
@documented(
    summary="List incidents (keyset pagination: pass next_cursor back as cursor)",
    tag="incidents",
    query=IncidentListQuerySchema,
    response=IncidentPageSchema,
    errors=(401, 422),
    description="`status=open` is triggered and acknowledged together. `sort`: `-id` "
    "(newest first, the default), `id`, `-last_event_at`, `last_event_at`, `urgency` (on fire "
    "first: triggered, then acknowledged, then resolved; critical first within each; then "
    "newest), `-severity` (critical first, then newest) or `severity` (the reverse). "
    "`since`/`until` bound last_event_at; `q` searches title, source, dedup key and Sentry "
    "short id (part of any, any case) and the Sentry issue id (whole); `assignee=me` lists "
    "the incidents assigned to the token's user (or give a user's email); `test=hide` leaves "
    "out the bridge's test alerts, `test=only` lists just them (default `show`).",
)
def list_incidents() -> Response:
    args = query_args(IncidentListQuerySchema())
    filters = IncidentFilters(
        status=args.get("status"),
        severity=args.get("severity"),
        service=args.get("service"),
        dedup_key=args.get("dedup_key"),
        text=args.get("q"),
        since=args.get("since"),
        until=args.get("until"),
        sort=args["sort"],
        assignee=actor_name() if args.get("assignee") == "me" else args.get("assignee"),
        test=args.get("test", "show"),
    )
    with bridge().database.reading() as session:
        page = incidents.list_incidents(session, filters, args["limit"], args.get("cursor"))
        return jsonify(IncidentPageSchema().dump(page))


@blueprint.get("/incidents/<int:incident_id>")
@requires()
@documented(
    summary="One incident with its timeline and the deliveries that touched it",
    tag="incidents",
    response=IncidentDetailSchema,
    errors=(401, 404),
)
def show_incident(incident_id: int) -> Response:
    with bridge().database.reading() as session:
        incident = incidents.get_incident(session, incident_id)
        document = IncidentDetailSchema().dump(incident)
        document["timeline"] = TimelineEntrySchema(many=True).dump(
            incidents.incident_timeline(session, incident_id)
        )
        document["deliveries"] = IncidentDeliverySchema(many=True).dump(
            incidents.incident_deliveries(session, incident_id)
        )
        return jsonify(document)


def _act(incident_id: int, action: HumanAction) -> Response:
    with bridge().database.transaction() as session:
        incident = incidents.act_on_incident(
            session, incident_id, action, actor_name(), datetime.now(UTC)
        )
        return jsonify(IncidentSchema().dump(incident))


@blueprint.post("/incidents/<int:incident_id>/acknowledge")
@requires()
@documented(
    summary="Acknowledge a triggered incident",
    tag="incidents",
    response=IncidentSchema,
    errors=(401, 404, 409),
)
def acknowledge_incident(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.ACKNOWLEDGE)


@blueprint.post("/incidents/<int:incident_id>/resolve")
@requires()
@documented(
    summary="Resolve an open incident",
    tag="incidents",
    response=IncidentSchema,
    errors=(401, 404, 409),
)
def resolve_incident(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.RESOLVE)


@blueprint.post("/incidents/<int:incident_id>/reopen")
@requires()
@documented(
    summary="Reopen a resolved incident (refused while another is open for the key)",
    tag="incidents",
    response=IncidentSchema,
    errors=(401, 404, 409),
)
def reopen_incident(incident_id: int) -> Response:
    return _act(incident_id, HumanAction.REOPEN)


@blueprint.post("/incidents/<int:incident_id>/notes")
@requires()
@documented(
    summary="Add a note to the incident's timeline",
    tag="incidents",
    body=NoteInputSchema,
    response=TimelineEntrySchema,
    status=201,
    errors=(401, 404, 422),
)
def add_note(incident_id: int) -> tuple[Response, int]:
    data = json_body(NoteInputSchema())
    with bridge().database.transaction() as session:
        entry = incidents.add_note(
            session, incident_id, actor_name(), data["text"], datetime.now(UTC)
        )
        return jsonify(TimelineEntrySchema().dump(entry)), 201


@blueprint.post("/incidents/<int:incident_id>/assign")
@requires()
@documented(
    summary="Assign the incident to a user (by email), or unassign it with null",
    tag="incidents",
    body=AssignInputSchema,
    response=IncidentSchema,
    errors=(401, 404, 422),
    description=(
        'Body `{"user": "alice@example.com"}` (or the part before the @ when only one user '
        'has it), `{"user": null}` to unassign. The timeline says who assigned whom; an '
        "unknown or deactivated user is refused with 422 naming them."
    ),
)
def assign_incident(incident_id: int) -> Response:
    data = json_body(AssignInputSchema())
    with bridge().database.transaction() as session:
        incident = incidents.assign_incident(
            session, incident_id, data["user"], actor_name(), datetime.now(UTC)
        )
        return jsonify(IncidentSchema().dump(incident))


@blueprint.post("/incidents/bulk")
@requires()
@documented(
    summary="Acknowledge or resolve several incidents at once, with a result per id",
    tag="incidents",
    body=BulkActionInputSchema,
    response=BulkActionResultSchema,
    errors=(401, 422),
    description="Each id is changed as its single action would change it (same rules, "
    "timeline entries and notifications), in its own transaction, in the order given "
    "(repeats are dropped). One that cannot be changed does not stop the others: its result "
    "has `ok: false` and the error the single action answers (404 `not_found`, 409 "
    "`illegal_transition` with the same message). The answer is 200 whatever each id came to.",
)
def bulk_act() -> Response:
    data = json_body(BulkActionInputSchema())
    action = HumanAction(data["action"])
    outcomes = incidents.act_on_incidents(
        bridge().database, data["ids"], action, actor_name(), datetime.now(UTC)
    )
    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.error is None:
            dumped = IncidentSchema().dump(outcome.incident)
            results.append(
                {"id": outcome.incident_id, "ok": True, "incident": dumped, "error": None}
            )
            continue
        error = outcome.error
        body = error_fields(status_for(error), error.code, error.message, error.details)
        results.append({"id": outcome.incident_id, "ok": False, "incident": None, "error": body})
    changed = sum(1 for result in results if result["ok"])
    return jsonify(
        {
            "action": action.value,
            "results": results,
            "changed": changed,
            "failed": len(results) - changed,
        }
    )
