"""The dashboard in a real browser (Playwright driving Debian's chromium) against real node
processes of a health network (``tests.health.dashboard_net``).

The story, through the dashboards of the nodes each party uses: the patient logs in on her
own node, sees her glucose chart and consents to the endocrinologist; the endocrinologist
logs in on Hospital 0's node, sees her chart and time in range, and adds a dose to her care
plan; Hospital 1 votes a proposal through on its node and looks at the network; the
patient sees the new reminder, waits for it to come due, and marks it taken. An uncaught
error in the page or a Content-Security-Policy violation fails the test. A screenshot of
each view goes to ``out/dashboard-<view>.png`` (``out/dashboard-failure.png`` on a failure).

It needs ``/usr/bin/chromium`` (``.ci/run`` installs Debian's package) and is skipped with
the reason otherwise; ``-m "not browser"`` leaves it out.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.health.dashboard_net import MINUTE_MS, PASSPHRASE, PATIENT_NODE, Cast, DashboardNet

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT: Final = Path(__file__).resolve().parents[2] / "out"
VIEWPORT: Final[ViewportSize] = {"width": 1360, "height": 1000}
STEP_TIMEOUT_MS: Final = 60_000
"""A page waiting for a committed transaction or a decryption on a busy machine."""
DUE_TIMEOUT_MS: Final = 180_000
"""The new reminder coming due (its time is the next minute at least 20 s ahead when the plan
is saved: it may come due before the patient looks, or while she does)."""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent (Debian's chromium package: apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardNet, Cast]]:
    net = DashboardNet.create_health(tmp_path_factory.mktemp("dashboard") / "net")
    try:
        net.start_all()
        yield net, net.prepare()
    finally:
        net.stop_all()


@pytest.fixture
def browser() -> Iterator[BrowserContext]:
    """Chromium with a fresh profile, in UTC (the plan's zone)."""
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            timezone_id="UTC",
            locale="en-GB",
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def log_in(page: Page, url: str, keystore: str) -> None:
    """Open the node's dashboard and unlock ``keystore`` there."""
    page.goto(f"{url}/dashboard/")
    page.locator("#login-form, #logout").first.wait_for()
    if page.locator("#logout").count():
        log_out(page)
    page.fill("#keystore", keystore)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    expect(page.locator(".who-name")).to_have_text(keystore)


def log_out(page: Page) -> None:
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()


def toast(page: Page, text: str) -> None:
    """Wait for the confirmation of a committed action; fail at once on an error."""
    answer = page.locator(".toast-error").or_(page.locator(".toast-ok", has_text=text)).first
    answer.wait_for()
    assert "toast-ok" in (answer.get_attribute("class") or ""), answer.inner_text()


def shoot(page: Page, view: str) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"dashboard-{view}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def chart_readings(page: Page, card: str) -> int:
    """How many readings the glucose chart of ``card`` draws, once it draws some."""
    chart = page.locator(f"{card} .chart[data-readings]")
    expect(chart).not_to_have_attribute("data-readings", "0")
    expect(chart.locator("canvas")).to_be_visible()
    return int(chart.get_attribute("data-readings") or 0)


def next_due_minute(margin_ms: int) -> tuple[str, int]:
    """A time of day (HH:MM, UTC) at least ``margin_ms`` ahead, and its time in ms."""
    due = (int(time.time() * 1000) + margin_ms + MINUTE_MS - 1) // MINUTE_MS * MINUTE_MS
    minutes = due // MINUTE_MS % 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}", due


def test_the_story_through_every_view(
    network: tuple[DashboardNet, Cast], browser: BrowserContext
) -> None:
    net, cast = network
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        story(page, net, cast)
    except Exception:
        shoot(page, "failure")  # what the page showed, for the failure's report
        raise
    assert not errors, errors


def story(page: Page, net: DashboardNet, cast: Cast) -> None:
    """The steps of the module docstring."""
    patient, endo = cast.id("patient-0"), cast.id("dr-endo")

    # The patient, on her own node: her chart; she consents to the endocrinologist.
    log_in(page, net.url(PATIENT_NODE), "patient-0")
    expect(page.locator("#main")).to_have_attribute("data-view", "patient")
    assert chart_readings(page, "#glucose-card") >= 1
    expect(page.locator("#grants")).to_contain_text("Dr Sam Green")
    page.select_option("#grant-grantee", endo)
    page.click("#grant-submit")
    toast(page, "Consent granted")
    grant_row = page.locator("#grants tr", has_text="Dr Ada Endo")
    expect(grant_row).to_contain_text("active")
    expect(grant_row.locator("button[data-revoke]")).to_be_visible()
    log_out(page)

    # The endocrinologist, on Hospital 0's node: the patient, her chart and time in range;
    # a dose is added to her plan, due within the next minute and a half.
    log_in(page, net.url("validator-0"), "dr-endo")
    expect(page.locator("#main")).to_have_attribute("data-view", "practitioner")
    page.locator(f'button[data-patient="{patient}"]').click()
    assert chart_readings(page, "#practitioner-glucose") >= 1
    expect(page.locator("#tir .tir-bar")).to_be_visible()
    in_range = page.locator('#tir .tir-value[data-range="in_range_pct"]')
    assert re.fullmatch(r"\d+%", in_range.inner_text())
    expect(page.locator("#plan")).to_contain_text("Version 1")
    clock, due_ms = next_due_minute(margin_ms=20_000)
    page.click("#plan-add")
    new_row = page.locator("#plan tbody tr").last
    new_item = new_row.get_attribute("data-item")
    new_row.locator(".plan-kind").select_option("dose")
    new_row.locator(".plan-times").fill(clock)
    page.click("#plan-save")
    toast(page, "Care plan saved")
    expect(page.locator("#plan")).to_contain_text("Version 2")
    expect(page.locator("#stats")).to_contain_text("Mean")
    shoot(page, "practitioner")
    log_out(page)

    # Hospital 1, on its node: its vote passes proposal 1; then the network.
    log_in(page, net.url("validator-1"), "hospital-1")
    expect(page.locator("#main")).to_have_attribute("data-view", "dao")
    expect(page.locator("#proposals")).to_contain_text("2 / 0 / 0")
    page.click(f'[data-vote="{cast.proposal}:yes"]')
    toast(page, f"Voted yes on #{cast.proposal}")
    expect(page.locator("#decided")).to_contain_text("passed")
    expect(page.locator(f'[data-vote^="{cast.open_proposal}:"]').first).to_be_visible()
    shoot(page, "dao")
    page.click('#nav a[data-view="network"]')
    expect(page.locator("#network-validators")).to_contain_text("Hospital 3")
    expect(page.locator("#blocks-chart canvas")).to_be_visible()
    shoot(page, "network")
    log_out(page)

    # The patient again: the new reminder, then due; she marks it taken. The audit log
    # shows the endocrinologist's reads.
    log_in(page, net.url(PATIENT_NODE), "patient-0")
    reminder = f"{new_item}:{due_ms}"
    expect(page.locator(f'[data-upcoming="{reminder}"], [data-ack="{reminder}"]')).to_have_count(1)
    expect(page.locator("#audit")).to_contain_text("Dr Ada Endo")
    taken = page.locator(f'[data-ack="{reminder}"]')
    taken.wait_for(timeout=DUE_TIMEOUT_MS)
    taken.click()
    toast(page, "Marked as taken")
    expect(page.locator(f'[data-reminder="{reminder}"]')).to_have_attribute("data-status", "done")
    shoot(page, "patient")
    log_out(page)
