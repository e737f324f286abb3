"""Which payload links become links on the pages (issue 13)."""

from __future__ import annotations

import pytest

from app.domain.links import is_sentry_link, may_replace_link, plain_web_url

SELF_HOSTED = "https://sentry.example.com"


@pytest.mark.parametrize(
    "url",
    [
        "https://acme-gmbh.sentry.io/issues/4512345678/",
        "https://sentry.io/organizations/acme-gmbh/issues/4512345678/",
        "https://SENTRY.IO/issues/1/",
        "https://sentry.example.com/organizations/acme/issues/1/",
        "http://sentry.example.com:9000/organizations/acme/issues/1/",
    ],
)
def test_sentry_pages_are_links(url: str) -> None:
    assert is_sentry_link(url, SELF_HOSTED)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://evil.example/issues/1/",
        "https://sentry.io.evil.example/issues/1/",
        "https://evilsentry.io/issues/1/",
        "https://sentry.io@evil.example/",
        "https://evil.example\\@sentry.io/",
        "https://sentry.io/\nSet-Cookie",
        "//sentry.io/issues/1/",
        "/issues/1/",
        "ftp://sentry.io/",
        "https://sentry.io:99999/",
        "https://[::1/",
        "https://sentry.io/" + "a" * 2000,
        "",
        None,
    ],
)
def test_anything_else_is_text(url: str | None) -> None:
    assert not is_sentry_link(url, SELF_HOSTED)


def test_only_the_configured_self_hosted_sentry_counts() -> None:
    assert not is_sentry_link("https://sentry.example.com/issues/1/", "https://sentry.io")


def test_a_later_link_may_not_move_the_incident_to_another_host() -> None:
    good = "https://acme-gmbh.sentry.io/issues/1/"

    assert may_replace_link(None, good)
    assert may_replace_link(good, "https://acme-gmbh.sentry.io/issues/1/?project=2")
    assert not may_replace_link(good, "https://evil.example/issues/1/")
    assert not may_replace_link(good, "javascript:alert(1)")
    assert plain_web_url("javascript:alert(1)") is None


def test_every_whitespace_control_character_and_backslash_is_refused_anywhere_in_a_link() -> None:
    # The rule, one code point at a time, against the one search the function makes.
    refused = [
        ch
        for ch in map(chr, range(0x110000))
        if ch == "\\" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F
    ]
    assert len(refused) > 40  # the Unicode spaces too, not only ASCII
    for ch in refused:
        assert plain_web_url(f"https://sentry.io/issues/1{ch}2/") is None, repr(ch)
    assert plain_web_url("https://sentry.io/issues/1\u00e92/") is not None  # é is fine
