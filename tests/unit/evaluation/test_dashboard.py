"""The KPI dashboard on a real HTTP server over a records database filled by a real eval run:
sign-in with the screen-pop's scrypt accounts, both views, filters, ``/metrics`` scraped and parsed,
and the page rendered in real headless Chromium (screenshot kept: ``ARI_AGENT_TEST_ARTIFACTS``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ari_agent.evaluation.dashboard import KpiDashboard
from ari_agent.ops.screenpop.passwords import hash_password
from ari_agent.records.kpi import CostInputs, SlaTargets
from ari_agent.records.model import CallRecord
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


# Live-call records with the service-level and recognition facts (answers known: see test_kpi.py's SLA_RECORDS).
DAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _live(call_id: str, hours: float, outcome: str, **kw: object) -> CallRecord:
    start = DAY + dt.timedelta(hours=hours)
    return CallRecord(call_id, start, start + dt.timedelta(minutes=3), outcome=outcome, intents=["account_unlock"],
                      **kw)  # type: ignore[arg-type]


LIVE = [
    _live("l1", 0, "resolved", answer_s=1.2, heard=["my account is locked", "uh", "yes"], no_match_turns=1),
    _live("l2", 1, "resolved", answer_s=4.0, heard=["mumble"], no_match_turns=1),
    _live("l3", 2, "transferred", transfer_queue="support", transfer_reason="restricted", answer_s=0.8,
          human_answered=True, human_wait_s=15.0, heard=["locked out"]),
    _live("l4", 3, "transferred", transfer_queue="billing", transfer_reason="restricted", answer_s=1.0,
          human_answered=True, human_wait_s=25.0),
    _live("l5", 4, "transferred", transfer_queue="support", transfer_reason="restricted", answer_s=1.0,
          human_answered=False, human_wait_s=40.0),
]


@pytest.fixture
async def live_dashboard(tmp_path: Path) -> AsyncIterator[str]:
    store = CallRecordStore(f"sqlite:///{tmp_path / 'live.sqlite3'}")
    for r in LIVE:
        store.add(r)
    dash = KpiDashboard(store, {"dana": hash_password(PASSWORD, n=2**10)},
                        sla=SlaTargets(answer_s=3.0, queue_answer_s=20.0, per_queue={"billing": 30.0}),
                        today=lambda: DAY.date())
    runner = web.AppRunner(dash.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        store.close()


async def test_sla_adherence_and_no_match_rate_on_the_page_and_in_metrics(live_dashboard: str) -> None:
    base = live_dashboard
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for 127.0.0.1
        async with http.post(f"{base}/login", data={"username": "dana", "password": PASSWORD}) as r:
            assert r.status == 200
            page = await r.text()
        assert "<div class='tile' id='kpi-SLA-adherence'>SLA adherence<b>60.0%</b>" in page
        assert "<div class='tile' id='kpi-recognition-no-match'>recognition no-match<b>40.0%</b>" in page
        assert ("SLA targets: the agent's first prompt within 3 s (80.0% of 5 calls); a person answers a transfer "
                "within 20 s, billing 30 s (66.7% of 3 reported transfers).") in page
        assert "alt='Service level (SLA) by target'" in page and "sla_queue_answer_by_queue" in page
        async with http.get(f"{base}/metrics") as r:
            families = {f.name: f for f in text_string_to_metric_families(await r.text())}
    assert families["ari_agent_kpi_sla_adherence_ratio"].samples[0].value == pytest.approx(0.6)
    by_target = {s.labels["target"]: s.value for s in families["ari_agent_kpi_sla_answer_ratio"].samples}
    assert by_target == pytest.approx({"agent_answer": 0.8, "queue_answer": 2 / 3})
    by_queue = {s.labels["queue"]: s.value for s in families["ari_agent_kpi_sla_queue_answer_ratio"].samples}
    assert by_queue == pytest.approx({"billing": 1.0, "support": 0.5})
    assert families["ari_agent_kpi_recognition_no_match_ratio"].samples[0].value == pytest.approx(0.4)


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
        # text-mode evaluations measure neither service level nor recognition: no figure rather than a wrong one
        assert "ari_agent_kpi_sla_adherence_ratio" not in families
        assert "ari_agent_kpi_recognition_no_match_ratio" not in families
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


@contextlib.asynccontextmanager
async def signed_in_page(base: str) -> AsyncIterator[Any]:
    """A real headless Chromium page signed in to the dashboard at ``base``."""
    playwright = pytest.importorskip("playwright.async_api", reason="playwright is in the dev extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/install.sh installs it (apt-get install chromium)")
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(f"{base}/")
            await page.fill("input[name=username]", "dana")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_selector("#kpi-calls")
            yield page
        finally:
            await browser.close()


async def _screenshot(page: Any, name: str) -> Path:
    await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}-{dt.date.today():%Y%m%d}.png"
    await page.screenshot(path=str(shot), full_page=True)
    return shot


@pytest.mark.integration
async def test_the_dashboard_in_headless_chromium(dashboard: tuple[str, CallRecordStore]) -> None:
    base, store = dashboard
    async with signed_in_page(base) as page:
        assert (await page.inner_text("#kpi-calls b")) == str(store.count())
        images = await page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert len(images) >= 2 and all(w > 100 for w in images)  # the charts decoded and rendered
        assert (await page.inner_text("#kpi-SLA-adherence b")) == "–"  # text mode measures no service level
        print(f"KPI dashboard screenshot: {await _screenshot(page, 'kpi-dashboard')}")


@pytest.mark.integration
async def test_the_sla_and_no_match_figures_in_headless_chromium(live_dashboard: str) -> None:
    async with signed_in_page(live_dashboard) as page:
        assert (await page.inner_text("#kpi-SLA-adherence b")) == "60.0%"
        assert (await page.inner_text("#kpi-recognition-no-match b")) == "40.0%"
        assert "billing 30 s" in await page.inner_text("#sla-targets")
        widths = await page.eval_on_selector_all("img[alt='Service level (SLA) by target']",
                                                 "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 1 and widths[0] > 100
        print(f"KPI dashboard (SLA) screenshot: {await _screenshot(page, 'kpi-dashboard-sla')}")
