"""Admin pages: services, integrations (secrets, test alert) and the delivery inspector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

import requests
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from app.domain.errors import InvalidInput
from app.extensions import bridge
from app.served_url import ServedUrl, served_base_url
from app.services import catalog, deliveries, escalation_policies
from app.services.alert_probe import own_webhook_base, send_test_alert
from app.services.deliveries import DeliveryFilters
from app.services.replays import replay_delivery
from app.store.models import Integration
from app.web.errors import answer_status
from app.web.views import blueprint

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403, "This page needs the admin role.")
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _served() -> ServedUrl:
    """The base the server really answers on: the same one `bridge integration create`
    prints (app/served_url.py); this page's own address where that is none to send to."""
    return served_base_url(bridge().settings, request.host_url)


def _webhook_url(integration_id: str) -> str:
    return f"{_served().url}/api/integrations/sentry?integrationId={integration_id}"


def _to(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values))  # type: ignore[return-value]


def _form_int(name: str, default: int | None = None) -> int:
    raw = request.form.get(name, "")
    if not raw.strip() and default is not None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(
            f"{name.replace('_', ' ').capitalize()} must be a whole number."
        ) from None


# ---------------------------------------------------------------- services


@blueprint.get("/admin/services")
@admin_required
def services() -> str:
    with bridge().database.transaction() as session:
        found = catalog.list_services(session)
        policies = escalation_policies.list_policies(session)
        return render_template(
            "admin/services.html",
            services=found,
            policies=policies,
            severities=("critical", "error", "warning", "info"),
        )


@blueprint.post("/admin/services")
@admin_required
def create_service() -> Response:
    with bridge().database.transaction() as session:
        service = catalog.create_service(
            session,
            request.form.get("name", ""),
            datetime.now(UTC),
            _form_int("reopen_window_minutes", 30),
        )
        name = service.name
    flash(f"Service {name} created.", "info")
    return _to("views.services")


@blueprint.post("/admin/services/<int:service_id>")
@admin_required
def update_service(service_id: int) -> Response:
    with bridge().database.transaction() as session:
        service = catalog.update_service(
            session,
            service_id,
            request.form.get("name") or None,
            _form_int("reopen_window_minutes"),
        )
        name = service.name
    flash(f"Service {name} saved.", "info")
    return _to("views.services")


@blueprint.post("/admin/services/<int:service_id>/paging")
@admin_required
def update_service_paging(service_id: int) -> Response:
    """Who is paged for the service: its escalation policy, ack timeout and threshold."""
    policy_id = request.form.get("policy_id", "").strip()
    timeout = request.form.get("ack_timeout_minutes", "").strip()
    with bridge().database.transaction() as session:
        service = catalog.get_service(session, service_id)
        escalation_policies.update_service_paging(
            session,
            service,
            policy=escalation_policies.get_policy(session, _form_int("policy_id"))
            if policy_id
            else None,
            ack_timeout_minutes=_form_int("ack_timeout_minutes") if timeout else None,
            page_min_severity=request.form.get("page_min_severity", "error"),
        )
        name = service.name
    flash(f"Paging of {name} saved.", "info")
    return _to("views.services")


# ---------------------------------------------------------------- integrations


@blueprint.get("/admin/integrations")
@admin_required
def integrations() -> str:
    with bridge().database.transaction() as session:
        found = catalog.list_integrations(session)
        for integration in found:
            _ = integration.service.name
        services_found = catalog.list_services(session)
    return render_template(
        "admin/integrations.html",
        integrations=found,
        services=services_found,
        webhook_url=_webhook_url,
        loopback_note=_served().loopback_note(),
    )


def _show_secret(integration_id: str, secret: str | None, what: str, pasted: bool = False) -> str:
    """The one page that shows a secret: right after the bridge made it, never again."""
    return render_template(
        "admin/secret.html",
        integration_id=integration_id,
        secret=secret,
        pasted=pasted,
        what=what,
        webhook_url=_webhook_url(integration_id),
        loopback_note=_served().loopback_note(),
    )


@blueprint.post("/admin/integrations")
@admin_required
def create_integration() -> str:
    mode = request.form.get("secret_mode", "none")
    with bridge().database.transaction() as session:
        service = catalog.get_service(session, _form_int("service_id"))
        created = catalog.create_integration(
            session,
            bridge().secrets,
            service,
            datetime.now(UTC),
            name=request.form.get("name") or None,
            secret=request.form.get("secret") if mode == "paste" else None,
            generate=mode == "generate",
        )
        integration_id = created.integration.id
    # Only a generated secret is shown (once); a pasted one the admin already has.
    shown = created.secret if mode == "generate" else None
    return _show_secret(integration_id, shown, "Integration created", pasted=mode == "paste")


@blueprint.post("/admin/integrations/<integration_id>/secret")
@admin_required
def rotate_secret(integration_id: str) -> str:
    settings = bridge().settings
    pasted = request.form.get("secret") if request.form.get("secret_mode") == "paste" else None
    with bridge().database.transaction() as session:
        secret = catalog.rotate_secret(
            session,
            bridge().secrets,
            integration_id,
            datetime.now(UTC),
            timedelta(seconds=settings.secret_grace_seconds),
            pasted,
        )
    hours = settings.secret_grace_seconds / 3600
    return _show_secret(
        integration_id,
        None if pasted else secret,
        f"Secret rotated (the previous one works for {hours:g} more hours)",
        pasted=bool(pasted),
    )


@blueprint.post("/admin/integrations/<integration_id>/enabled")
@admin_required
def set_enabled(integration_id: str) -> Response:
    enabled = request.form.get("enabled") == "1"
    with bridge().database.transaction() as session:
        integration = catalog.update_integration(
            session, integration_id, datetime.now(UTC), enabled=enabled
        )
        name = integration.name
    flash(f"{name} {'enabled' if enabled else 'disabled'}.", "info")
    return _to("views.integrations")


@blueprint.post("/admin/integrations/<integration_id>/test-alert")
@admin_required
def test_alert(integration_id: str) -> Response:
    with bridge().database.transaction() as session:
        secret = catalog.integration_secret(session, bridge().secrets, integration_id)
    # Sent after the transaction: no database transaction stays open across HTTP.
    with requests.Session() as http:
        try:
            result = send_test_alert(
                http, _test_alert_url(integration_id), integration_id, secret, datetime.now(UTC)
            )
        except requests.RequestException as error:
            flash(f"The test alert could not reach the endpoint: {type(error).__name__}.", "error")
            return _to("views.integrations")
    if 200 <= result.status < 300:
        flash(
            f"Test alert accepted ({result.status}). The delivery inspector shows what it did.",
            "info",
        )
    else:
        flash(
            f"Test alert refused ({result.status}). The delivery inspector shows why, if it "
            "reached the bridge; otherwise check BRIDGE_PUBLIC_URL.",
            "error",
        )
    return _to("views.integrations")


def _test_alert_url(integration_id: str) -> str:
    settings = bridge().settings
    base = own_webhook_base(settings.public_base_url, settings.host, settings.port)
    return f"{base}/api/integrations/sentry?integrationId={integration_id}"


# ---------------------------------------------------------------- deliveries


@blueprint.get("/admin/deliveries")
@admin_required
def delivery_list() -> str:
    args = request.args
    filters = DeliveryFilters(
        integration_id=args.get("integration_id") or None, decision=args.get("decision") or None
    )
    with bridge().database.transaction() as session:
        page = deliveries.list_deliveries(session, filters, 50, args.get("cursor") or None)
        found = _integration_labels(session)
    return render_template("admin/deliveries.html", page=page, integrations=found, filters=filters)


@dataclass(frozen=True)
class IntegrationLabel:
    """An integration as the inspector names it: two may share a name, so its service and
    an id prefix (never the whole id, the credential of an unsigned one) tell them apart."""

    id: str
    name: str
    service: str

    @property
    def prefix(self) -> str:
        return f"{self.id[:6]}…"

    @property
    def label(self) -> str:
        return f"{self.name} — {self.service} ({self.prefix})"


def _integration_labels(session: Session) -> dict[str, IntegrationLabel]:
    return {
        found.id: IntegrationLabel(found.id, found.name, found.service.name)
        for found in catalog.list_integrations(session)
    }


@blueprint.get("/admin/deliveries/<int:delivery_id>")
@admin_required
def delivery_detail(delivery_id: int) -> str:
    with bridge().database.transaction() as session:
        delivery = deliveries.get_delivery(session, delivery_id)
        found = session.get(Integration, delivery.integration_id)
        integration = IntegrationLabel(found.id, found.name, found.service.name) if found else None
    return render_template("admin/delivery.html", delivery=delivery, integration=integration)


@blueprint.post("/admin/deliveries/<int:delivery_id>/replay")
@admin_required
def replay(delivery_id: int) -> Response:
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        outcome = replay_delivery(
            session,
            delivery_id,
            current_user.email,
            app_bridge.secrets,
            app_bridge.settings.max_body_bytes,
            datetime.now(UTC),
            answer_status=answer_status,
        )
        new_id = outcome.delivery.id
    if outcome.error is not None:
        flash(f"Replay refused: {outcome.error.message}", "error")
    else:
        flash(f"Replayed as delivery {new_id}: {outcome.action}.", "info")
    return _to("views.delivery_detail", delivery_id=new_id)
