"""The admin view in a real browser: halt and resume a symbol, the price band editor (an edit
survives the list's refresh), a member's kill switch, a KYC approval and a new user."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import ADMIN_PASSWORD
from .helpers import BrokerRest, log_in


def test_admin_halts_resumes_and_approves_kyc(page: Page, server: BrokerRest) -> None:
    pending = server.customer("Pending Person", kyc=None)
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_test_id("nav-admin").click()
    expect(page.get_by_test_id("admin-view")).to_be_visible()

    aapl = page.locator("[data-testid=instrument-row][data-symbol=AAPL]")
    expect(aapl).to_have_attribute("data-phase", "continuous")
    aapl.get_by_test_id("instrument-halt").click()
    expect(aapl).to_have_attribute("data-phase", "halted")
    expect(aapl.get_by_test_id("instrument-phase")).to_have_text("halted")
    halted = {
        i["symbol"]: i["phase"]
        for i in server.check(server.http.get("/api/admin/venue/instruments", headers=server.admin))
    }
    assert halted["AAPL"] == "halted" and halted["MSFT"] == "continuous"
    aapl.get_by_test_id("instrument-resume").click()
    expect(aapl).not_to_have_attribute("data-phase", "halted")
    expect(aapl.get_by_test_id("instrument-halt")).to_be_visible()

    # price band: 500 bps, pause
    aapl.get_by_test_id("band-bps").fill("500")
    aapl.get_by_test_id("band-action").select_option("pause")
    aapl.get_by_test_id("band-save").click()
    expect(page.get_by_test_id("admin-venue-message")).to_contain_text("AAPL: band 500 bps, pause")
    aapl.get_by_test_id("band-bps").fill("5%")
    aapl.get_by_test_id("band-save").click()
    expect(page.get_by_test_id("admin-venue-message")).to_contain_text("whole number of basis")

    # the list is re-rendered (every 5 s, or on Reload): what is being typed stays, and "Set"
    # sends it, not the band the row was first drawn with
    band = aapl.get_by_test_id("band-bps")
    band.fill("300")
    band.evaluate("(input) => { input.dataset.old = 'yes'; }")
    page.locator("[data-reload=venue]").click()
    page.wait_for_function(
        "() => !document.querySelector("
        "'[data-testid=instrument-row][data-symbol=AAPL] [data-testid=band-bps]').dataset.old"
    )
    expect(band).to_have_value("300")
    aapl.get_by_test_id("band-save").click()
    expect(page.get_by_test_id("admin-venue-message")).to_contain_text("AAPL: band 300 bps, pause")

    # kill switch of a member, confirmed in the page's dialog, then released
    member = page.locator("[data-testid=member-row][data-member=MEMBER1]")
    member.get_by_test_id("kill-switch-toggle").click()
    page.get_by_test_id("confirm-yes").click()
    expect(member).to_have_attribute("data-kill-switch", "true")
    member.get_by_test_id("kill-switch-toggle").click()
    expect(member).to_have_attribute("data-kill-switch", "false")

    # KYC approval
    customer = page.locator(f"[data-testid=customer-row][data-customer-id='{pending}']")
    expect(customer).to_have_attribute("data-kyc", "pending")
    customer.get_by_test_id("kyc-approve").click()
    expect(customer).to_have_attribute("data-kyc", "approved")
    expect(page.get_by_test_id("admin-customers-message")).to_contain_text("KYC approved")
    customers = server.check(server.http.get("/api/customers", headers=server.admin))
    assert next(c for c in customers if c["id"] == pending)["kyc_status"] == "approved"

    # a new user for that customer; a short password is refused before it is sent, a
    # password the server's policy refuses is answered with its message and code
    form = page.get_by_test_id("user-form")
    form.locator("[name=username]").fill("ivan")
    form.locator("[name=password]").fill("short")
    form.locator("[name=customer_id]").select_option(pending)
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("admin-users-message")).to_contain_text("at least 10 characters")
    form.locator("[name=password]").fill("Ivan-pass-12345")  # the server's policy refuses it
    form.locator("button[type=submit]").click()
    message = page.get_by_test_id("admin-users-message")
    expect(message).to_contain_text("password must not contain the username (42210000)")
    form.locator("[name=password]").fill("Trader-pass-12345")
    form.locator("button[type=submit]").click()
    expect(message).to_contain_text("User ivan (trader) created.")
    expect(page.locator("[data-testid=user-row][data-username=ivan]")).to_have_attribute(
        "data-role", "trader"
    )
