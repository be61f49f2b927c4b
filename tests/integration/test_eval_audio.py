"""Audio-mode evaluation on the real Asterisk: the voice-smoke suite (four calls by voice) through the
CLI's code path, judged from the call records and the caller-side recordings alone; then the records
those real calls wrote feed the KPI dashboard (real headless Chromium, a screenshot) and its /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.conversation.nlu import build_classifier
from ari_agent.evaluation.audio_run import evaluate_audio
from ari_agent.evaluation.scenario import resolve_suite_path
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.records.store import CallRecordStore

from .conftest_redis import redis_server  # noqa: F401

pytestmark = pytest.mark.integration


async def test_voice_smoke_suite_is_judged_from_records_and_recordings(pbx: LocalPbx, tmp_path: Path,
                                                                      redis_server: str) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    env = {"ARI_AGENT__REDIS__URL": redis_server, "ARI_AGENT__TTS__CACHE_DIR": "/tmp/ari-agent-test-state/prompt-cache",
           # the cheap engines (CI time): stt/tts "auto" would load whisper and Piper where they are prepared
           "ARI_AGENT__STT__ENGINE": "pocketsphinx", "ARI_AGENT__TTS__ENGINE": "espeak-ng"}
    result = await evaluate_audio([resolve_suite_path("voice-smoke")], lambda m: build_classifier(m.nlu_intents()),
                                  records_url=url, work_dir=tmp_path / "work", env=env)
    (suite,) = result.suites
    by_id = {v.scenario.id: v for v in suite.verdicts}
    failures = {k: v.failures for k, v in by_id.items() if not v.passed}
    transcripts = "\n\n".join("\n".join(v.trace.transcript) for v in suite.verdicts)
    assert not failures, f"{failures}\n{transcripts}"
    assert suite.metrics.get("transfer_correctness") == 1.0 and suite.metrics.get("pass_rate") == 1.0
    assert suite.text_metrics is not None and suite.text_metrics.passed == 4  # the same scenarios, text mode
    # The transfers were judged with their context: the reason on the caller's channel, the Redis record.
    human = by_id["smoke-human"].trace
    assert human.queue == "support" and human.reason == "caller_request" and human.context_problems == []
    assert by_id["smoke-bill-payment"].trace.queue == "billing"
    # Caller-side response times and the agent's stages were measured; the recogniser's words were scored.
    assert suite.speech is not None and suite.speech.calls == 4
    assert suite.speech.latency_ms["response_caller_side"]["n"] >= 2
    assert "stt_final" in suite.speech.latency_ms and suite.speech.wer is not None
    assert set(suite.speech.per_voice) == {"flite:rms", "flite:slt", "flite:awb", "flite:kal16"}
    # One record per real call, written by the agent; transfers labelled by the evaluation.
    store = CallRecordStore(url)
    try:
        records = store.between(result.started_at.replace(year=2000), result.started_at.replace(year=2100))
    finally:
        store.close()
    assert len(records) == 4 and all(r.source == "call" for r in records)
    assert {r.outcome for r in records} == {"transferred", "resolved", "caller_hung_up"}
    assert all(r.transfer_correct is True for r in records if r.outcome == "transferred")

    await _dashboard_of_real_calls(url, len(records))


async def _dashboard_of_real_calls(url: str, calls: int) -> None:
    """The KPI dashboard over the records those real calls wrote: /metrics scraped and parsed, the page
    signed in and rendered in real headless Chromium (screenshot: ``ARI_AGENT_TEST_ARTIFACTS``)."""
    import asyncio
    import os
    import shutil

    import aiohttp
    from aiohttp import web
    from prometheus_client.parser import text_string_to_metric_families

    from ari_agent.evaluation.dashboard import KpiDashboard
    from ari_agent.ops.screenpop.passwords import hash_password

    playwright = pytest.importorskip("playwright.async_api", reason="playwright is in the dev extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/install.sh installs it (apt-get install chromium)")
    artifacts = Path(os.environ.get("ARI_AGENT_TEST_ARTIFACTS", "/tmp/ari-agent-test-artifacts"))
    password = "correct horse battery"
    store = CallRecordStore(url)
    runner = web.AppRunner(KpiDashboard(store, {"dana": hash_password(password, n=2**10)}).app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
            assert r.status == 200
            families = {f.name: f for f in text_string_to_metric_families(await r.text())}
        assert families["ari_agent_kpi_calls"].samples[0].value == calls
        reasons = {s.labels["reason"] for s in families["ari_agent_kpi_transfer_ratio"].samples}
        assert {"restricted", "caller_request"} <= reasons
        # Service level and recognition from the real calls: the agent's first prompt was timed on every call,
        # and the recogniser's utterances were counted (no ACD follower runs here: no human legs, no queue figure).
        agent_sla = {s.labels["target"]: s.value for s in families["ari_agent_kpi_sla_answer_ratio"].samples}
        assert set(agent_sla) == {"agent_answer"} and 0 <= agent_sla["agent_answer"] <= 1
        assert 0 <= families["ari_agent_kpi_recognition_no_match_ratio"].samples[0].value <= 1
        print(f"real calls: agent's first prompt within 3 s: {agent_sla['agent_answer']:.1%}; recognition no-match "
              f"{families['ari_agent_kpi_recognition_no_match_ratio'].samples[0].value:.1%}")
        async with playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(base + "/")
            assert page.url.endswith("/login")
            await page.fill("input[name=username]", "dana")
            await page.fill("input[name=password]", password)
            await page.click("button:has-text('Sign in')")
            await page.wait_for_selector("#kpi-calls")
            assert str(calls) in await page.inner_text("#kpi-calls")
            assert "Engineering view" in await page.content()
            assert (await page.inner_text("#kpi-SLA-adherence b")).endswith("%")
            await asyncio.to_thread(artifacts.mkdir, parents=True, exist_ok=True)
            shot = artifacts / "dashboard-real-calls.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"KPI dashboard of {calls} real calls: {shot}")
            await browser.close()
    finally:
        await runner.cleanup()
        store.close()
