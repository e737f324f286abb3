"""/api/users and /api/tokens: admins deactivate people, change passwords, revoke tokens.

Each of these ends access at once: a revoked token is refused from the next request, and
deactivation or a password change ends every browser session the person has
(app/web/sessions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, jsonify
from marshmallow import Schema, fields, validate

from app.extensions import bridge
from app.services import accounts
from app.services.accounts import Role
from app.web.api import blueprint
from app.web.api.docs import documented, json_body
from app.web.auth import requires

ADMIN_ERRORS = (401, 403)


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    active = fields.Boolean(attribute="is_active")
    created_at = fields.DateTime()


class UserUpdateSchema(Schema):
    active = fields.Boolean(required=True)


class PasswordInputSchema(Schema):
    password = fields.String(
        required=True, validate=validate.Length(min=accounts.MIN_PASSWORD_LENGTH, max=1000)
    )


class TokenSchema(Schema):
    """A token's record; the token itself was shown once, when it was made."""

    id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


@blueprint.get("/users")
@requires(Role.ADMIN)
@documented(summary="List users", tag="admin", response=UserSchema(many=True), errors=ADMIN_ERRORS)
def list_users() -> Response:
    with bridge().database.reading() as session:
        return jsonify(UserSchema(many=True).dump(accounts.list_users(session)))


@blueprint.patch("/users/<int:user_id>")
@requires(Role.ADMIN)
@documented(
    summary="Deactivate or reactivate a user (deactivating ends their sessions)",
    tag="admin",
    body=UserUpdateSchema,
    response=UserSchema,
    errors=(*ADMIN_ERRORS, 404, 422),
)
def update_user(user_id: int) -> Response:
    data = json_body(UserUpdateSchema())
    with bridge().database.transaction() as session:
        user = accounts.set_active(session, accounts.get_user(session, user_id), data["active"])
        return jsonify(UserSchema().dump(user))


@blueprint.post("/users/<int:user_id>/password")
@requires(Role.ADMIN)
@documented(
    summary="Set a user's password (ends their browser sessions)",
    tag="admin",
    body=PasswordInputSchema,
    response=UserSchema,
    errors=(*ADMIN_ERRORS, 404, 422),
)
def set_password(user_id: int) -> Response:
    data = json_body(PasswordInputSchema())
    with bridge().database.transaction() as session:
        user = accounts.change_password(
            session, accounts.get_user(session, user_id), data["password"]
        )
        return jsonify(UserSchema().dump(user))


@blueprint.get("/tokens")
@requires(Role.ADMIN)
@documented(
    summary="List API tokens (never the tokens themselves)",
    tag="admin",
    response=TokenSchema(many=True),
    errors=ADMIN_ERRORS,
)
def list_tokens() -> Response:
    with bridge().database.reading() as session:
        return jsonify(TokenSchema(many=True).dump(accounts.list_tokens(session)))


@blueprint.delete("/tokens/<int:token_id>")
@requires(Role.ADMIN)
@documented(
    summary="Revoke an API token",
    tag="admin",
    response=TokenSchema,
    errors=(*ADMIN_ERRORS, 404),
)
def revoke_token(token_id: int) -> Response:
    with bridge().database.transaction() as session:
        record = accounts.revoke_token(session, token_id, datetime.now(UTC))
        return jsonify(TokenSchema().dump(record))
