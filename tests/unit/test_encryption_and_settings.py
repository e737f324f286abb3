"""Secrets at rest (SecretBox, the key file) and reading settings from the environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.store.encryption import SecretBox, SecretUnreadable, load_or_create_key_file
from config.settings import DEFAULT_INSTANCE_PATH, SettingsError, load_settings

PLAINTEXT = "sntrys_refresh-token-Überweisung-💳"


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


# ------------------------------------------------------------------ SecretBox


def test_secret_box_round_trips_unicode() -> None:
    box = SecretBox([new_key()])

    ciphertext = box.encrypt(PLAINTEXT)

    assert ciphertext != PLAINTEXT
    assert "refresh-token" not in ciphertext
    assert box.decrypt(ciphertext) == PLAINTEXT


def test_secret_box_encrypts_the_same_text_differently_each_time() -> None:
    box = SecretBox([new_key()])

    assert box.encrypt(PLAINTEXT) != box.encrypt(PLAINTEXT)


def test_secret_box_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        SecretBox([])


def test_old_key_still_decrypts_after_a_new_key_is_put_first() -> None:
    old, new = new_key(), new_key()
    stored = SecretBox([old]).encrypt(PLAINTEXT)

    assert SecretBox([new, old]).decrypt(stored) == PLAINTEXT


def test_new_primary_key_encrypts_new_secrets() -> None:
    old, new = new_key(), new_key()

    stored = SecretBox([new, old]).encrypt(PLAINTEXT)

    assert SecretBox([new]).decrypt(stored) == PLAINTEXT
    with pytest.raises(SecretUnreadable):
        SecretBox([old]).decrypt(stored)


def test_decrypting_with_a_wrong_key_raises_secret_unreadable() -> None:
    stored = SecretBox([new_key()]).encrypt(PLAINTEXT)

    with pytest.raises(SecretUnreadable) as caught:
        SecretBox([new_key()]).decrypt(stored)

    assert PLAINTEXT not in str(caught.value)
    assert "BRIDGE_ENCRYPTION_KEYS" in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_secret_read_again_is_not_decrypted_again_and_a_bad_one_never_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = SecretBox([new_key()])
    stored, foreign = box.encrypt(PLAINTEXT), SecretBox([new_key()]).encrypt(PLAINTEXT)
    calls: list[bytes] = []
    decrypt = box._fernet.decrypt

    def counted(token: bytes) -> bytes:
        calls.append(token)
        return decrypt(token)

    monkeypatch.setattr(box._fernet, "decrypt", counted)

    assert [box.decrypt(stored) for _ in range(3)] == [PLAINTEXT] * 3
    assert len(calls) == 1
    for _ in range(2):
        with pytest.raises(SecretUnreadable):
            box.decrypt(foreign)
    assert len(calls) == 3  # tried each time: a failure is not remembered


@pytest.mark.parametrize("ciphertext", ["", "not-a-fernet-token", "gAAAAABtruncated"])
def test_decrypting_garbage_raises_secret_unreadable(ciphertext: str) -> None:
    with pytest.raises(SecretUnreadable):
        SecretBox([new_key()]).decrypt(ciphertext)


# ------------------------------------------------------------------ key file


def test_key_file_is_created_once_with_owner_only_mode(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    key = load_or_create_key_file(instance)

    path = instance / "encryption.key"
    assert path.read_text(encoding="ascii") == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox([key]).decrypt(SecretBox([key]).encrypt("x")) == "x"


def test_key_file_returns_the_same_key_next_time(tmp_path: Path) -> None:
    first = load_or_create_key_file(tmp_path)
    stored = SecretBox([first]).encrypt(PLAINTEXT)

    second = load_or_create_key_file(tmp_path)

    assert second == first
    assert SecretBox([second]).decrypt(stored) == PLAINTEXT


def test_key_file_leaves_no_temporary_files(tmp_path: Path) -> None:
    load_or_create_key_file(tmp_path)

    assert sorted(os.listdir(tmp_path)) == ["encryption.key"]


def test_existing_key_file_is_read_without_trailing_newline(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "encryption.key").write_text(f"{key}\n", encoding="ascii")

    assert load_or_create_key_file(tmp_path) == key


# ------------------------------------------------------------------ settings


def test_settings_defaults() -> None:
    settings = load_settings({})

    assert settings.port == 8000
    assert settings.host == "127.0.0.1"
    assert settings.instance_path == DEFAULT_INSTANCE_PATH
    assert settings.database_url == f"sqlite:///{DEFAULT_INSTANCE_PATH / 'bridge.db'}"
    assert settings.encryption_keys == ()
    assert settings.public_base_url is None
    assert settings.log_level == "INFO"
    assert settings.sql_echo is False


def test_default_database_is_sqlite_under_the_instance_path(tmp_path: Path) -> None:
    settings = load_settings({"BRIDGE_INSTANCE_PATH": str(tmp_path)})

    assert settings.instance_path == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path}/bridge.db"


def test_environment_overrides_defaults(tmp_path: Path) -> None:
    environ = {
        "BRIDGE_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql+psycopg://bridge@db.internal/bridge",
        "HOST": "0.0.0.0",  # noqa: S104 - a value under test, not a bind
        "PORT": "9090",
        "WEB_CONCURRENCY": "2",
        "BRIDGE_PUBLIC_URL": "https://bridge.acme.example",
        "BRIDGE_MAX_BODY_BYTES": "2048",
        "BRIDGE_SECRET_GRACE_SECONDS": "0",
        "BRIDGE_DELIVERY_RETENTION_DAYS": "7",
        "BRIDGE_PRUNE_INTERVAL_MINUTES": "5",
        "BRIDGE_ENCRYPTION_KEYS": " key-new , ,key-old ",
        "LOG_LEVEL": "debug",
        "BRIDGE_SQL_ECHO": "true",
    }

    settings = load_settings(environ)

    assert settings.database_url == "postgresql+psycopg://bridge@db.internal/bridge"
    assert settings.host == "0.0.0.0"  # noqa: S104 - a value under test, not a bind
    assert settings.port == 9090
    assert settings.workers == 2
    assert settings.public_base_url == "https://bridge.acme.example"
    assert settings.max_body_bytes == 2048
    assert settings.secret_grace_seconds == 0
    assert settings.delivery_retention_days == 7
    assert settings.prune_interval_minutes == 5
    assert settings.encryption_keys == ("key-new", "key-old")
    assert settings.log_level == "DEBUG"
    assert settings.sql_echo is True


def test_empty_port_means_the_default() -> None:
    assert load_settings({"PORT": ""}).port == 8000


def test_mapping_given_is_the_only_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "not-a-number")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")

    settings = load_settings({})

    assert settings.port == 8000
    assert settings.database_url.startswith("sqlite:///")


def test_load_settings_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")

    assert load_settings().port == 8123


@pytest.mark.parametrize("port", ["eighty", "80.5", "8000x", "0", "-1"])
def test_unusable_port_raises_settings_error_naming_it(port: str) -> None:
    with pytest.raises(SettingsError, match="PORT"):
        load_settings({"PORT": port})


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_unreadable_ciphertexts_raise_secret_unreadable_not_crypto_errors() -> None:
    from cryptography.fernet import Fernet

    from app.store.encryption import SecretBox, SecretUnreadable

    box = SecretBox([Fernet.generate_key().decode()])
    stranger = SecretBox([Fernet.generate_key().decode()]).encrypt("x")
    for garbage in ("ünïcode", "not-a-token", stranger):
        with pytest.raises(SecretUnreadable):
            box.decrypt(garbage)


def test_integration_ids_are_long_url_safe_and_never_look_like_options() -> None:
    import re

    from app.services.catalog import new_integration_id

    ids = [new_integration_id() for _ in range(3000)]

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{31}", value) for value in ids)


def test_admission_backlog_defaults_to_64_and_refuses_a_negative_count() -> None:
    assert load_settings({}).admission_backlog == 64
    assert load_settings({"BRIDGE_ADMISSION_BACKLOG": "0"}).admission_backlog == 0
    with pytest.raises(SettingsError, match="BRIDGE_ADMISSION_BACKLOG must be at least 0"):
        load_settings({"BRIDGE_ADMISSION_BACKLOG": "-1"})


def test_the_sender_deadline_is_sentrys_second_unless_set_and_never_below_300_ms() -> None:
    assert load_settings({}).sender_deadline_ms == 1000
    assert load_settings({"BRIDGE_SENDER_DEADLINE_MS": "5000"}).sender_deadline_ms == 5000
    with pytest.raises(SettingsError, match="BRIDGE_SENDER_DEADLINE_MS must be at least 300"):
        load_settings({"BRIDGE_SENDER_DEADLINE_MS": "100"})
