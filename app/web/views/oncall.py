"""The schedules page: who is on call now and next, two weeks ahead with gaps flagged;
admins create schedules, overrides and escalation policies here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Response, flash, render_template, request, url_for
from flask_login import current_user, login_required

from app.domain import schedule as domain
from app.domain.errors import InvalidInput
from app.extensions import bridge
from app.services import escalation_policies, schedules
from app.store.models import Schedule
from app.web.views import blueprint
from app.web.views.admin import _form_int, _to, admin_required

VIEW_LENGTH = timedelta(days=14)


@dataclass(frozen=True)
class Row:
    """One line of the two-week view, in the schedule's own zone."""

    person: str | None
    start: datetime
    end: datetime

    @property
    def is_gap(self) -> bool:
        return self.person is None


@dataclass(frozen=True)
class ScheduleView:
    schedule: Schedule
    now: domain.OnCall
    next: domain.OnCall | None
    rows: list[Row]
    feed_url: str | None

    @property
    def zone(self) -> ZoneInfo:
        return domain.load_zone(self.schedule.timezone)

    @property
    def has_gaps(self) -> bool:
        return any(row.is_gap for row in self.rows)


def _rows(model: domain.Schedule, now: datetime) -> list[Row]:
    """Stretches of the next two weeks; consecutive shifts of one person read as one."""
    rows: list[Row] = []
    for stretch in domain.stretches(model, now, now + VIEW_LENGTH):
        assert stretch.start is not None and stretch.end is not None
        start, end = stretch.start.astimezone(model.zone), stretch.end.astimezone(model.zone)
        if rows and rows[-1].person == stretch.person:
            rows[-1] = Row(stretch.person, rows[-1].start, end)
        else:
            rows.append(Row(stretch.person, start, end))
    return rows


def _feed(endpoint: str, token: str) -> str:
    return url_for(f"calendars.{endpoint}", token=token, _external=True)


def _form_time(name: str, required: bool = True) -> datetime | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        if required:
            raise InvalidInput(f"{name.capitalize()} is needed.", fields={name: ["required"]})
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name.capitalize()} is not a date and time.") from None


@blueprint.get("/schedules")
@login_required
def schedules_page() -> str:
    now = datetime.now(UTC)
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        views = []
        for schedule in schedules.list_schedules(session):
            model = schedules.as_domain(schedule)
            token = app_bridge.secrets.decrypt(schedule.feed_token_ciphertext)
            views.append(
                ScheduleView(
                    schedule,
                    domain.on_call_at(model, now),
                    domain.next_different(model, now),
                    _rows(model, now),
                    _feed("schedule_feed", token) if current_user.is_admin else None,
                )
            )
        user = schedules.find_user(session, current_user.email)
        my_feed = _feed("person_feed", schedules.user_feed_token(session, app_bridge.secrets, user))
        policies = [
            (policy, escalation_policies.step_texts(policy))
            for policy in escalation_policies.list_policies(session)
        ]
        return render_template(
            "oncall/schedules.html",
            views=views,
            my_feed=my_feed,
            policies=policies,
            zone_names=sorted(domain.available_zones()),
        )


@blueprint.post("/admin/schedules")
@admin_required
def create_schedule() -> Response:
    now = datetime.now(UTC)
    timezone = request.form.get("timezone", "").strip()
    shift_hours = request.form.get("shift_hours", "").strip()
    with bridge().database.transaction() as session:
        spec = schedules.layer_spec(
            timezone,
            request.form.get("members", "").split(","),
            now,
            None if shift_hours else request.form.get("rotation", "weekly"),
            _form_int("shift_hours") if shift_hours else None,
            request.form.get("handoff") or None,
            _form_time("start", required=False),
        )
        created = schedules.create_schedule(
            session, bridge().secrets, request.form.get("name", ""), timezone, spec, now
        )
        name = created.schedule.name
    flash(f"Schedule {name} created.", "info")
    return _to("views.schedules_page")


@blueprint.post("/admin/schedules/<int:schedule_id>/overrides")
@admin_required
def create_override(schedule_id: int) -> Response:
    with bridge().database.transaction() as session:
        schedule = schedules.get_schedule(session, schedule_id)
        start, end = _form_time("from"), _form_time("until")
        assert start is not None and end is not None
        schedules.add_override(
            session,
            schedule,
            request.form.get("user", ""),
            schedules.in_zone(start, schedule.timezone),
            schedules.in_zone(end, schedule.timezone),
            datetime.now(UTC),
        )
        name = schedule.name
    flash(f"Override added to {name}.", "info")
    return _to("views.schedules_page")


@blueprint.post("/admin/policies")
@admin_required
def create_policy() -> Response:
    steps = [line.strip() for line in request.form.get("steps", "").splitlines() if line.strip()]
    repeat_after = request.form.get("repeat_after_minutes", "").strip()
    with bridge().database.transaction() as session:
        policy = escalation_policies.create_policy(
            session,
            request.form.get("name", ""),
            steps,
            datetime.now(UTC),
            _form_int("repeat", 0),
            _form_int("repeat_after_minutes") if repeat_after else None,
        )
        name = policy.name
    flash(f"Escalation policy {name} created.", "info")
    return _to("views.schedules_page")
