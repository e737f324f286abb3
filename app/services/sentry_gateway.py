"""Flows that talk to Sentry: install, refresh, enrich, write back.

A departure from "one transaction per edge", on purpose: each flow here reads in one short
transaction, calls Sentry with none open, and writes in another, because STYLE forbids a
transaction held across outbound HTTP and wants a rotated refresh token saved in a short
transaction of its own before it is used. The edges (the OAuth views, the jobs) call one
flow each; every database step is a session-taking function of the other services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from app.sentry.client import SentryClient
from app.sentry.enrichment import summarise
from app.sentry.errors import (
    SentryError,
    SentryGrantRejected,
    SentryNotConfigured,
    SentryResourceMissing,
    SentryUnauthorized,
)
from app.services import sentry_installations as installs
from app.services import sentry_jobs as jobs
from app.services import sentry_tokens as tokens
from app.services.sentry_installations import ClaimOutcome
from app.services.sentry_tokens import Credentials
from app.store.database import Database
from app.store.encryption import SecretBox
from app.store.installations import InstallationStatus
from app.store.models import Incident, SentryInstallation
from app.store.sentry_outbox import JobKind
from config.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
# A claimed exchange that has not finished in this long is presumed dead and re-tried.
EXCHANGE_LEASE = timedelta(seconds=60)


class ExchangeInProgress(SentryError):
    """Another request is trading this grant code right now; ask again shortly."""

    code = "sentry_exchange_in_progress"


@dataclass(frozen=True)
class InstallationResult:
    installation_id: int
    status: str
    org_slug: str | None
    outcome: str  # what this call did: exchanged, verified, already_installed, in_progress


def make_client(settings: Settings) -> SentryClient:
    """The Sentry client configured from settings (one requests.Session per process)."""
    return SentryClient(
        settings.sentry_base_url,
        timeout=float(settings.sentry_timeout_seconds),
        max_retries=settings.sentry_max_retries,
        max_wait_seconds=float(settings.sentry_max_wait_seconds),
    )


class SentryGateway:
    """The bridge's side of every conversation with Sentry, one flow per method."""

    def __init__(
        self,
        database: Database,
        secrets: SecretBox,
        client: SentryClient,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.secrets = secrets
        self.client = client
        self.settings = settings
        self.clock = clock

    # ------------------------------------------------------------ app credentials

    def _app_credentials(self) -> tuple[str, str]:
        client_id, client_secret = (
            self.settings.sentry_client_id,
            self.settings.sentry_client_secret,
        )
        if not client_id or not client_secret:
            raise SentryNotConfigured(
                "The bridge has no SENTRY_CLIENT_ID / SENTRY_CLIENT_SECRET, so it cannot "
                "complete installations of the public Sentry integration."
            )
        return client_id, client_secret

    # ------------------------------------------------------------ installation

    def complete_installation(
        self,
        *,
        uuid: str,
        code: str,
        org_slug: str | None,
        integration_id: str | None = None,
        user_id: int | None = None,
        app_uuid: str | None = None,
    ) -> InstallationResult:
        """One grant code → one exchange, stored tokens, a verified install (idempotent)."""
        client_id, client_secret = self._app_credentials()
        with self.database.transaction() as session:
            claim = installs.claim_grant(
                session,
                uuid=uuid,
                code=code,
                org_slug=org_slug,
                integration_id=integration_id,
                user_id=user_id,
                app_uuid=app_uuid or self.settings.sentry_app_uuid,
                now=self.clock(),
                lease=EXCHANGE_LEASE,
            )
        installation_id = claim.installation_id
        if claim.outcome is ClaimOutcome.DONE:
            return self._result(installation_id, "already_installed")
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            return self._result(installation_id, "in_progress")
        if claim.outcome is ClaimOutcome.EXCHANGE:
            try:
                grant = self.client.exchange_grant(uuid, code, client_id, client_secret)
            except SentryGrantRejected:
                # Single-use codes: if the other path traded it meanwhile, that is success.
                current = self._result(installation_id, "already_installed")
                if current.status == InstallationStatus.INSTALLED.value:
                    return current
                self._record_failure(installation_id, "Sentry refused the grant code")
                raise
            except SentryError as error:
                self._record_failure(installation_id, error.message)
                raise
            with self.database.transaction() as session:
                installs.store_grant(session, self.secrets, installation_id, grant, self.clock())
        with self.database.transaction() as session:
            credentials = tokens.load_credentials(session, self.secrets, installation_id)
        try:
            self.client.verify_installation(uuid, credentials.token)
        except SentryError as error:
            self._record_failure(installation_id, f"verification failed: {error.message}")
            raise
        with self.database.transaction() as session:
            installs.mark_installed(session, installation_id, self.clock())
        log.info("sentry installation %s (org %s) is installed", uuid, org_slug)
        outcome = "exchanged" if claim.outcome is ClaimOutcome.EXCHANGE else "verified"
        return self._result(installation_id, outcome)

    def _result(self, installation_id: int, outcome: str) -> InstallationResult:
        with self.database.transaction() as session:
            found = installs.get_installation(session, installation_id)
            return InstallationResult(found.id, found.status, found.org_slug, outcome)

    def _record_failure(self, installation_id: int, message: str) -> None:
        with self.database.transaction() as session:
            installs.record_failure(session, installation_id, message, self.clock())

    # ------------------------------------------------------------ tokens

    def _credentials(self, installation_id: int) -> Credentials:
        with self.database.transaction() as session:
            return tokens.load_credentials(session, self.secrets, installation_id)

    def refresh(self, stale: Credentials) -> Credentials:
        """Rotate the pair; the new one is stored (atomically, in its own transaction) first."""
        if stale.refresh_token is None or stale.uuid is None:
            raise SentryUnauthorized(
                f"Sentry installation {stale.installation_id} has no refresh token; "
                "store a new token for it."
            )
        client_id, client_secret = self._app_credentials()
        try:
            grant = self.client.refresh(stale.uuid, stale.refresh_token, client_id, client_secret)
        except SentryGrantRejected:
            current = self._credentials(stale.installation_id)
            if current.version != stale.version:
                return current  # someone rotated it meanwhile; theirs is the valid pair
            self._record_failure(
                stale.installation_id, "Sentry refused the refresh token; reconnect the org"
            )
            raise
        now = self.clock()
        with self.database.transaction() as session:
            stored = tokens.store_rotated_pair(
                session, self.secrets, stale.installation_id, stale.version, grant, now
            )
        if not stored:
            return self._credentials(stale.installation_id)
        log.info("refreshed the token of sentry installation %s", stale.installation_id)
        return self._credentials(stale.installation_id)

    def call(self, installation_id: int, request: Callable[[Credentials], T]) -> T:
        """Run one Sentry call with a fresh token: refresh ahead of expiry, and once on 401."""
        credentials = self._credentials(installation_id)
        if credentials.expires_within(self.clock(), timedelta(minutes=1)):
            credentials = self.refresh(credentials)
        try:
            return request(credentials)
        except SentryUnauthorized:
            if credentials.refresh_token is None:
                raise
            log.info("sentry said 401 for installation %s; refreshing once", installation_id)
            credentials = self.refresh(credentials)
            return request(credentials)

    def refresh_expiring(self) -> tuple[int, int]:
        """Refresh every token that expires within the margin; returns (refreshed, failed)."""
        margin = timedelta(minutes=self.settings.sentry_token_refresh_margin_minutes)
        with self.database.transaction() as session:
            due = tokens.installations_expiring(session, self.clock() + margin)
        refreshed = failed = 0
        for installation_id in due:
            try:
                self.refresh(self._credentials(installation_id))
                refreshed += 1
            except SentryError as error:
                failed += 1
                log.warning(
                    "could not refresh sentry installation %s: %s", installation_id, error.code
                )
        return refreshed, failed

    # ------------------------------------------------------------ jobs

    def run(self, job: jobs.JobView) -> str | None:
        """Do one claimed job; returns a note for the job row. Raises SentryError to retry."""
        if job.kind == JobKind.ENRICH.value:
            return self.enrich(job)
        if job.kind == JobKind.WRITE_BACK.value:
            return self.write_back(job)
        if job.kind == JobKind.EXCHANGE_GRANT.value:
            return self.exchange_from_webhook(job)
        raise ValueError(f"unknown job kind {job.kind!r}")

    def _connection(self, job: jobs.JobView) -> tuple[SentryInstallation | None, Incident | None]:
        with self.database.transaction() as session:
            incident = session.get(Incident, job.incident_id) if job.incident_id else None
            connection = installs.find_connection(
                session, job.integration_id, job.installation_uuid
            )
            if connection is not None:
                session.expunge(connection)
            if incident is not None:
                session.expunge(incident)
            return connection, incident

    def enrich(self, job: jobs.JobView) -> str | None:
        """Fetch the issue and its latest event; store the summary on the incident."""
        connection, incident = self._connection(job)
        if incident is None:
            return "incident no longer exists"
        if connection is None or not connection.org_slug:
            return "no connected Sentry organisation for this integration"
        issue_id = incident.sentry_issue_id
        if not issue_id:
            return "incident names no Sentry issue"
        org = connection.org_slug

        def fetch(credentials: Credentials) -> tuple[dict[str, Any], dict[str, Any] | None]:
            issue = self.client.get_issue(credentials.token, org, issue_id)
            try:
                event = self.client.get_latest_event(credentials.token, org, issue_id)
            except SentryResourceMissing:
                event = None  # an issue whose events were deleted still has details
            return issue, event

        issue, event = self.call(connection.id, fetch)
        summary = summarise(issue, event)
        with self.database.transaction() as session:
            jobs.apply_enrichment(session, incident.id, summary, self.clock())
        return None

    def write_back(self, job: jobs.JobView) -> str | None:
        """Resolve or ignore the Sentry issue, as a person did to the incident."""
        connection, _incident = self._connection(job)
        if connection is None or not connection.org_slug:
            return "no connected Sentry organisation for this integration"
        status = str(job.payload.get("status"))
        issue_id = str(job.payload.get("issue_id"))
        org = connection.org_slug
        self.call(
            connection.id,
            lambda credentials: self.client.update_issue_status(
                credentials.token, org, issue_id, status
            ),
        )
        return None

    def exchange_from_webhook(self, job: jobs.JobView) -> str | None:
        """installation.created: the same exchange as the setup redirect's."""
        ciphertext = job.payload.get("code_ciphertext")
        if not isinstance(ciphertext, str) or not job.installation_uuid:
            return "installation webhook without a code"
        result = self.complete_installation(
            uuid=job.installation_uuid,
            code=self.secrets.decrypt(ciphertext),
            org_slug=job.payload.get("org_slug"),
            integration_id=job.integration_id,
            app_uuid=job.payload.get("app_uuid"),
        )
        if result.outcome == "in_progress":
            raise ExchangeInProgress("the setup redirect is trading this code right now")
        return f"installation {result.outcome}"
