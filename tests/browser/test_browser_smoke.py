"""The browser itself works here: Chromium opens the live server's login page."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_page_opens_in_chromium(page_for, screenshots):
    page = page_for()
    response = page.goto("/admin/login/")
    assert response is not None and response.status == 200
    assert page.locator("input[name=username]").count() == 1
    page.screenshot(path=str(screenshots / "login.png"))
    assert (screenshots / "login.png").stat().st_size > 0
