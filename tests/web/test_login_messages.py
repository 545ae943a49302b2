"""The sign-in page speaks to every refusal the sign-in routes can give."""

from __future__ import annotations

from gateway.access.service import SignInRefused
from gateway.web.login_pages import LOGIN_ERRORS

def test_the_sign_in_page_explains_every_refusal_code_in_chinese() -> None:
    # Every code the sign-in routes redirect with has its own message on the page, not the generic one.
    assert set(SignInRefused.CODES) | {"csrf"} <= set(LOGIN_ERRORS)
