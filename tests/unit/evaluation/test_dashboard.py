"""The KPI dashboard on a real HTTP server over a records database filled by a real eval run:
sign-in with the screen-pop's scrypt accounts, both views, filters, ``/metrics`` scraped and parsed,
and the page rendered in real headless Chromium (screenshot kept: ``ARI_AGENT_TEST_ARTIFACTS``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ari_agent.evaluation.dashboard import KpiDashboard
from ari_agent.ops.screenpop.passwords import hash_password
from ari_agent.records.kpi import CostInputs
from ari_agent.records.store import CallRecordStore

ARTIFACTS = Path(os.environ.get("ARI_AGENT_TEST_ARTIFACTS", "/tmp/ari-agent-test-artifacts"))
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Records of the per-intent and red-team suites, written by ``ari-agent eval --records``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('kpi') / 'records.sqlite3'}"
    from ari_agent.cli import main

    assert main(["eval", "per-intent", "red-team", "--lexical", "--quiet", "--records", url]) == 0
    return url


@pytest.fixture
async def dashboard(filled_db: str) -> AsyncIterator[tuple[str, CallRecordStore]]:
    store = CallRecordStore(filled_db)
    dash = KpiDashboard(store, {"dana": hash_password(PASSWORD, n=2**10)},
                        costs=CostInputs(telephony_per_min=0.01, human_per_min=0.6, baseline_minutes=7))
    runner = web.AppRunner(dash.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", store
    finally:
        await runner.cleanup()
        store.close()


async def test_sign_in_views_filters_and_metrics(dashboard: tuple[str, CallRecordStore]) -> None:
    base, store = dashboard
    calls = store.count()
    assert calls == 62
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for 127.0.0.1
        async with http.get(f"{base}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        async with http.post(f"{base}/login", data={"username": "dana", "password": "wrong"}) as r:
            assert r.status == 401
        async with http.post(f"{base}/login", data={"username": "dana", "password": PASSWORD}) as r:
            assert r.status == 200 and r.url.path == "/"
            page = await r.text()
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert f"<div class='tile' id='kpi-calls'>calls<b>{calls}</b>" in page
        assert "Engineering view" in page and "tool_failure_rate" in page and "transfer_rate_by_reason" in page
        assert len(re.findall(r"src='data:image/png;base64,", page)) >= 2
        assert not re.search(r"(src|href)=['\"]https?:", page)
        async with http.get(f"{base}/", params={"intent": "bill_payment"}) as r:
            assert "<div class='tile' id='kpi-containment'>containment<b>0.0%</b>" in await r.text()
        async with http.get(f"{base}/", params={"from": "2001-01-01", "to": "2001-02-01"}) as r:
            assert "<div class='tile' id='kpi-calls'>calls<b>0</b>" in await r.text()
        async with http.get(f"{base}/", params={"from": "yesterday"}) as r:
            assert r.status == 400 and "not a date" in await r.text()
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 200
            families = {f.name: f for f in text_string_to_metric_families(await r.text())}
        assert families["ari_agent_kpi_calls"].samples[0].value == calls
        reasons = {s.labels["reason"] for s in families["ari_agent_kpi_transfer_ratio"].samples}
        assert {"restricted", "verification_failed", "caller_request"} <= reasons
        assert 0 < families["ari_agent_kpi_containment_ratio"].samples[0].value < 1
        async with http.post(f"{base}/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{base}/", allow_redirects=False) as r:
            assert r.status == 303


async def test_repeated_failed_sign_ins_lock_the_account(dashboard: tuple[str, CallRecordStore]) -> None:
    base, _ = dashboard
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for 127.0.0.1
        for _ in range(5):
            async with http.post(f"{base}/login", data={"username": "dana", "password": "nope"}) as r:
                assert r.status == 401
        async with http.post(f"{base}/login", data={"username": "dana", "password": PASSWORD}) as r:
            assert r.status == 429


@pytest.mark.integration
async def test_the_dashboard_in_headless_chromium(dashboard: tuple[str, CallRecordStore]) -> None:
    playwright = pytest.importorskip("playwright.async_api", reason="playwright is in the dev extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/install.sh installs it (apt-get install chromium)")
    base, store = dashboard
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(f"{base}/")
            await page.fill("input[name=username]", "dana")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_selector("#kpi-calls")
            assert (await page.inner_text("#kpi-calls b")) == str(store.count())
            images = await page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            assert len(images) >= 2 and all(w > 100 for w in images)  # the charts decoded and rendered
            await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
            shot = ARTIFACTS / f"kpi-dashboard-{dt.date.today():%Y%m%d}.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"KPI dashboard screenshot: {shot}")
        finally:
            await browser.close()
