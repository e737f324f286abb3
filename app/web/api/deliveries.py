"""/api/deliveries: the delivery inspector and replay (admins)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, jsonify

from app.extensions import bridge
from app.services import deliveries
from app.services.accounts import Role
from app.services.deliveries import DeliveryFilters
from app.services.replays import replay_delivery
from app.web.api import blueprint
from app.web.api.docs import documented, query_args
from app.web.auth import actor_name, requires
from app.web.errors import answer_status
from app.web.schemas import (
    DeliveryDetailSchema,
    DeliveryListQuerySchema,
    DeliveryPageSchema,
    ReplayResultSchema,
)


@blueprint.get("/deliveries")
@requires(Role.ADMIN)
@documented(
    summary="List deliveries, newest first (keyset pagination)",
    tag="deliveries",
    query=DeliveryListQuerySchema,
    response=DeliveryPageSchema,
    errors=(401, 403, 422),
)
def list_deliveries() -> Response:
    args = query_args(DeliveryListQuerySchema())
    filters = DeliveryFilters(
        integration_id=args.get("integration_id"),
        decision=args.get("decision"),
        since=args.get("since"),
        until=args.get("until"),
    )
    with bridge().database.reading() as session:
        page = deliveries.list_deliveries(session, filters, args["limit"], args.get("cursor"))
        return jsonify(DeliveryPageSchema().dump(page))


@blueprint.get("/deliveries/<int:delivery_id>")
@requires(Role.ADMIN)
@documented(
    summary="One delivery: headers that matter, body, signature outcome, decision",
    tag="deliveries",
    response=DeliveryDetailSchema,
    errors=(401, 403, 404),
)
def show_delivery(delivery_id: int) -> Response:
    with bridge().database.reading() as session:
        return jsonify(DeliveryDetailSchema().dump(deliveries.get_delivery(session, delivery_id)))


@blueprint.post("/deliveries/<int:delivery_id>/replay")
@requires(Role.ADMIN)
@documented(
    summary="Apply a stored delivery again through the same ingest path",
    tag="deliveries",
    response=ReplayResultSchema,
    errors=(401, 403, 404, 409),
    description="The replay is a new delivery; `error` says why it was refused, if it was.",
)
def replay(delivery_id: int) -> Response:
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        outcome = replay_delivery(
            session,
            delivery_id,
            actor_name(),
            app_bridge.secrets,
            app_bridge.settings.max_body_bytes,
            datetime.now(UTC),
            answer_status=answer_status,
        )
        return jsonify(ReplayResultSchema().dump(outcome))
