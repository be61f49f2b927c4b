"""Supervisor takeover on the real Asterisk 22, real redis-server and real headless Chromium.

A synthetic caller asks the voice agent about an order; while the agent waits for the order number,
a supervisor signed in to the screen-pop sees the call in the "With the voice agent" table (published
by the agent process through Redis), chooses their own phone (``Local/supervisor-desk@agent-desk/n``)
and takes the call over. The agent hands the caller off (reason ``supervisor_takeover``) through the
dialplan's ``takeover`` extension; the supervisor desk's own dialplan reports the inherited variables;
both sides wrote an audit record. Screenshots: ``/work/shared/artifacts/issue10/supervisor.png``
(``ARI_AGENT_SUPERVISOR_ARTIFACTS`` overrides the folder)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.ops.screenpop.passwords import hash_password
from ari_agent.ops.screenpop.server import ScreenPop

from .conftest_redis import redis_server  # noqa: F401
from .test_handoff_screenpop import PASSWORD, DeskReports, backend_url, handoff_config, wait_for  # noqa: F401

pytestmark = pytest.mark.integration

BOSS_PHONE = "Local/supervisor-desk@agent-desk/n"
ARTIFACTS = Path(os.environ.get("ARI_AGENT_SUPERVISOR_ARTIFACTS", "/work/shared/artifacts/issue10"))


async def test_a_supervisor_takes_a_live_call_over_from_the_agent_in_chromium(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str) -> None:  # noqa: F811
    playwright = pytest.importorskip("playwright.async_api", reason="playwright is in the dev extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/install.sh installs it (apt-get install chromium)")
    audit_log = tmp_path / "audit.jsonl"
    cfg = handoff_config(tmp_path, redis_server, backend_url,
                         screenpop__agents__boss__password_hash=hash_password(PASSWORD),
                         screenpop__agents__boss__interface=BOSS_PHONE, screenpop__agents__boss__role="supervisor",
                         screenpop__agents__boss__name="Sam (supervisor)", supervision__refresh_s="0.5",
                         governance__audit_log=str(audit_log))
    pop = ScreenPop(cfg)
    await pop.start()
    runner = web.AppRunner(pop.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    desk = DeskReports(cfg)
    store = HandoffStore(redis_server)
    try:
        assert await desk.ami.wait_connected(10), desk.ami.last_error
        await asyncio.wait_for(pop.supervisors.watching.wait(), 10)
        async with playwright.async_playwright() as pw, InProcessAgent(cfg) as agent:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            await page.goto(base + "/login")
            await page.fill("#username", "boss")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.goto(base + "/supervisor")
            await page.wait_for_selector("#conn:has-text('Live.')")
            await page.wait_for_selector("text=No calls with the voice agent.")

            assert agent.caller is not None and agent.manager is not None
            wav = synthesize_caller("Hi, I'd like to check the status of my order please.", "flite:rms", voice_dir)
            place = asyncio.create_task(agent.caller.place_dialog([wav], "t", tail_wait_s=60))
            manager = agent.manager
            # The agent has the call and is asking for the order number: the supervisor sees it live.
            row = page.locator("#agent-calls tbody tr[data-call]")
            await row.first.wait_for(timeout=60000)
            await page.wait_for_selector("#agent-calls td:has-text('order_status')", timeout=60000)
            call_id = await row.first.get_attribute("data-call")
            assert call_id is not None and call_id in manager.sessions, (call_id, list(manager.sessions))
            shown = await page.inner_text("#agent-calls")
            assert "order_status" in shown and "Take over" in shown, shown
            await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
            shot = ARTIFACTS / "supervisor.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"supervisor screenshot: {shot}")

            await page.select_option(f"#agent-calls tr[data-call='{call_id}'] select",
                                     f"interface:{BOSS_PHONE}")
            await page.click(f"#agent-calls tr[data-call='{call_id}'] button")
            await page.wait_for_selector("#notice:has-text('Done: handed to')", timeout=30000)
            await page.screenshot(path=str(ARTIFACTS / "supervisor-after-takeover.png"), full_page=True)

            # The caller left the agent for the supervisor's phone, with the context.
            await wait_for(lambda: any(o.call_id == call_id for o in manager.outcomes), 30, "the session's end")
            outcome = next(o for o in manager.outcomes if o.call_id == call_id)
            assert (outcome.ended_by, outcome.handoff_reason, outcome.handoff_queue) == \
                ("handoff", "supervisor_takeover", "takeover"), outcome
            await wait_for(lambda: any(d.get("CallId") == call_id for d in desk.seen), 30, "the supervisor desk")
            report = next(d for d in desk.seen if d.get("CallId") == call_id)
            print(f"supervisor desk saw: {report}")
            assert report["Desk"] == "supervisor-desk" and report["Reason"] == "supervisor_takeover", report
            assert report["Intent"] == "order_status", report
            record = await store.get(call_id)
            assert record is not None and record["reason"] == "supervisor_takeover", record
            assert record["intent"] == "order_status" and record["transcript"], record
            # The caller was told before being moved (prompts.takeover), and it played out on the line.
            session = next(s for s in manager.ended if s.call_id == call_id)
            takeover_line = session.conversation.engine.map.spec.prompts.takeover  # type: ignore[attr-defined]
            assert record["transcript"][-1] == {"who": "agent", "text": takeover_line}, record["transcript"]
            announced = [e for e in getattr(session.conversation, "events", ()) if e["kind"] == "handoff_announced"]
            assert announced and announced[0]["played"] and announced[0]["ms"] > 1000, announced
            # The call is gone from the supervisor's list (the agent removed its card).
            await page.wait_for_selector("text=No calls with the voice agent.", timeout=15000)
            await browser.close()
            assert agent.ari is not None
            await agent.ari.quietly(agent.ari.hangup(outcome.caller_channel))
            await place
        assert pop.supervisors.audit is not None  # the agent's audit was closed (written) with the agent
        pop.supervisors.audit.flush()
        records = [json.loads(line) for line in audit_log.read_text().splitlines()]
        kinds = {(r["kind"], r["data"].get("call_id"), r["data"].get("ok")) for r in records}
        assert ("takeover", call_id, True) in kinds and ("takeover_request", call_id, True) in kinds, kinds
    finally:
        await store.close()
        await desk.ami.close()
        await runner.cleanup()
        await pop.close()
