"""GET /calendars/schedules/<token>.ics and /calendars/people/<token>.ics: on-call feeds.

Calendar apps fetch without a session or a bearer token, so the unguessable token in the
URL is the credential (like an unsigned integration's id); an unknown one is a plain 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response

from app.domain.errors import NotFound
from app.extensions import bridge
from app.services import calendar_feeds, schedules

blueprint = Blueprint("calendars", __name__, url_prefix="/calendars")


def _ics(text: str) -> Response:
    response = Response(text, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blueprint.get("/schedules/<token>.ics")
def schedule_feed(token: str) -> Response:
    with bridge().database.reading() as session:
        schedule = schedules.schedule_by_feed_token(session, token)
        if schedule is None:
            raise NotFound("No calendar at this address.")
        return _ics(calendar_feeds.schedule_feed(schedule, datetime.now(UTC)))


@blueprint.get("/people/<token>.ics")
def person_feed(token: str) -> Response:
    with bridge().database.reading() as session:
        user = schedules.user_by_feed_token(session, token)
        if user is None or not user.is_active:
            raise NotFound("No calendar at this address.")
        return _ics(calendar_feeds.person_feed(session, user, datetime.now(UTC)))
