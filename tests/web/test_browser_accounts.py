"""Accounts in a real browser: a login refused for too many failures, a password changed through the
page, and a student reset, logging in with the one-time password and made to choose their own.

The instructor who changes a password is one made for this test, not `admin`: the session-wide
service's other browser tests log in as admin with Service.ADMIN_PASSWORD.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text
from web_helpers import PASSWORD, login, shots

pytestmark = pytest.mark.slow
NEW = "Velvet-Canyon-5502-oar"


def user_id(service, username: str) -> int:
    engine = create_engine(f"sqlite:///{service.tmp / 'instance' / 'torchgrade.sqlite'}")
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    engine.dispose()
    return found


def fits(widths: dict[int, int]) -> None:
    assert all(scroll <= width for width, scroll in widths.items()), widths


def test_too_many_failed_logins_are_refused_with_when_to_try_again(service, page):
    page.goto(service.url + "/login")
    for _ in range(5):  # the default limit: 5 failures a minute for one account
        page.fill("input[name=username]", "acct_locked")
        page.fill("input[name=password]", "not-the-password")
        page.click("button:has-text('Log in')")
        expect(page.locator(".flash.error")).to_contain_text("wrong username or password")
    page.fill("input[name=username]", "acct_locked")
    page.fill("input[name=password]", "not-the-password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        page.click("button:has-text('Log in')")
    assert answer.value.status == 429 and 1 <= int(answer.value.headers["retry-after"]) <= 60
    message = page.locator(".flash.error")
    expect(message).to_contain_text("Too many failed attempts for this account. Wait")
    expect(page.locator("input[name=username]")).to_have_value("acct_locked")  # the form, ready again
    fits(shots(page, "accounts_01_login_refused"))


def test_a_password_is_changed_and_a_reset_student_chooses_their_own(service, browser, page):
    service.create_user("acct_prof", "instructor")
    service.create_user("acct_student")
    student_id = user_id(service, "acct_student")
    login(page, service, "acct_prof", PASSWORD)
    page.goto(service.url + "/account/password")
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", "password123")
    page.fill("input[name=repeat]", "password123")
    page.click("button:has-text('Change password')")
    expect(page.locator(".flash.error")).to_contain_text("too easy to guess")
    fits(shots(page, "accounts_02_change_refused"))
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", NEW)
    page.fill("input[name=repeat]", NEW)
    page.click("button:has-text('Change password')")
    expect(page.locator(".flash.info")).to_contain_text("Your password was changed")

    # The reset button the student's page carries: a POST with the page's CSRF token and `next`.
    page.goto(service.url + "/instructor/")
    page.evaluate("""([id]) => {
        const f = document.createElement('form');
        f.method = 'post';
        f.action = `/instructor/users/${id}/reset-password`;
        for (const [k, v] of [['csrf_token', document.querySelector('input[name=csrf_token]').value],
                              ['next', '/instructor/roster']]) {
            const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
            f.appendChild(i);
        }
        document.body.appendChild(f);
        f.submit();
    }""", [student_id])
    expect(page.locator("h1")).to_have_text("Password reset for acct_student")
    one_time = page.inner_text("#one-time-password")
    assert len(one_time) >= 10 and page.get_attribute("#back", "href") == "/instructor/roster"
    fits(shots(page, "accounts_03_reset_result"))

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    student = context.new_page()
    student.goto(service.url + "/login")
    student.fill("input[name=username]", "acct_student")
    student.fill("input[name=password]", one_time)
    student.click("button:has-text('Log in')")
    student.wait_for_url("**/account/password")
    expect(student.locator("#must-change")).to_contain_text("one-time password")
    student.goto(service.url + "/assignments")  # every page leads back here until it is done
    student.wait_for_url("**/account/password")
    fits(shots(student, "accounts_04_change_forced"))
    student.fill("input[name=current]", one_time)
    student.fill("input[name=new]", NEW)
    student.fill("input[name=repeat]", NEW)
    student.click("button:has-text('Change password')")
    student.wait_for_url("**/assignments")
    expect(student.locator(".flash.info")).to_contain_text("Your password was changed")
    context.close()
    # The instructor logs in again with the password chosen above.
    page.click("button:has-text('Log out')")
    login(page, service, "acct_prof", NEW)
