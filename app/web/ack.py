"""/ack/<token>: the acknowledge link of a notification, without login (the token is the
credential, so this blueprint is exempt from the session CSRF check: a forged POST would
need the token itself)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, flash, make_response, redirect, render_template, url_for

from app.domain import ack_link
from app.domain.errors import BridgeError
from app.extensions import bridge
from app.services import ack_links
from app.web.errors import status_for

blueprint = Blueprint("ack", __name__)


def _key() -> bytes:
    return ack_link.link_key(bridge().session_secret)


@blueprint.get("/ack/<token>")
def confirm(token: str) -> str:
    with bridge().database.reading() as session:
        view = ack_links.describe_link(session, _key(), token, datetime.now(UTC))
        _ = view.incident.service.name
    return render_template("ack.html", view=view, token=token)


@blueprint.post("/ack/<token>")
def acknowledge(token: str) -> Response:
    with bridge().database.transaction() as session:
        incident = ack_links.acknowledge_by_link(session, _key(), token, datetime.now(UTC))
        title = incident.title
    flash(f"Acknowledged: {title}", "info")
    return redirect(url_for("ack.confirm", token=token))  # type: ignore[return-value]


@blueprint.errorhandler(BridgeError)
def _refused(error: BridgeError) -> Response:
    # A person followed a link: answer with a page that says why, in the error table's status.
    status = status_for(error)
    return make_response(
        render_template("error.html", status=status, message=error.message), status
    )
