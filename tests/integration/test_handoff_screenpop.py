"""Handoff end to end on the real Asterisk 22, with a real redis-server and real headless Chromium.

A synthetic caller (flite voice, G.711) asks the agent for a person → the engine escalates → the
handoff desk checks the queue over AMI and announces the wait → the caller is continued into
``Queue(support)`` → the ``Local/`` member (dialplan/agent-desk.conf) answers, and its dialplan
reports the inherited variables in an AMI UserEvent → the screen-pop page, signed in in Chromium as
that member, shows the caller's context live. The screenshot is kept (path printed; set
``ARI_AGENT_TEST_ARTIFACTS`` to choose the folder).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.config import Config
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.ops.screenpop.passwords import hash_password
from ari_agent.ops.screenpop.server import ScreenPop
from ari_agent.telephony.ami import AmiClient

from .conftest import agent_config
from .conftest_redis import redis_server  # noqa: F401

pytestmark = pytest.mark.integration

DESK = "Local/support-desk@agent-desk/n"
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(os.environ.get("ARI_AGENT_TEST_ARTIFACTS", "/tmp/ari-agent-test-artifacts"))


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    async with running_demo_backend() as url:
        yield url


def handoff_config(tmp_path: Path, redis_url: str, backend_url: str, **extra: str) -> Config:
    return agent_config(
        tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url, redis__url=redis_url,
        screenpop__agents__alice__password_hash=hash_password(PASSWORD), screenpop__agents__alice__interface=DESK,
        screenpop__agents__alice__name="Alice (support desk)", **extra)


class DeskReports:
    """AMI UserEvents ``AgentDesk`` sent by the member's own dialplan: what the desk's channel saw."""

    def __init__(self, cfg: Config) -> None:
        self.ami = AmiClient(cfg.ami, events=True, event_names=("UserEvent",))
        self.seen: list[dict[str, str]] = []
        self.ami.raw_listeners.append(self._on)

    def _on(self, msg: Mapping[str, object]) -> None:
        if str(msg.get("UserEvent", "")) == "AgentDesk":
            self.seen.append({str(k): str(v) for k, v in msg.items()})


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_escalation_to_queue_member_with_screen_pop_in_chromium(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str) -> None:  # noqa: F811
    playwright = pytest.importorskip("playwright.async_api", reason="playwright is in the dev extra")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/install.sh installs it (apt-get install chromium)")
    cfg = handoff_config(tmp_path, redis_server, backend_url)
    pop = ScreenPop(cfg)
    await pop.start()
    runner = web.AppRunner(pop.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    desk = DeskReports(cfg)
    store = HandoffStore(redis_server)
    try:
        assert await pop.ami.wait_connected(10), pop.ami.last_error
        assert await desk.ami.wait_connected(10), desk.ami.last_error
        async with playwright.async_playwright() as pw, InProcessAgent(cfg) as agent:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page()
            await page.goto(base + "/")
            assert page.url.endswith("/login")
            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("text=Waiting for a caller.")
            await page.wait_for_selector("#conn:has-text('Live.')")

            assert agent.caller is not None and agent.manager is not None
            lines = ["Hi, I'd like to check the status of my order please.", "four five six seven",
                     "Can I speak to a real person please?"]
            wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in lines]
            place = asyncio.create_task(agent.caller.place_dialog(wavs, "ttt", tail_wait_s=40))
            manager = agent.manager
            await wait_for(lambda: any(o.ended_by == "handoff" for o in manager.outcomes) or place.done(), 120,
                           "the handoff")
            outcomes = [o for o in manager.outcomes if o.ended_by == "handoff"]
            assert outcomes, f"no handoff: {[(o.ended_by, o.handoff_reason) for o in manager.outcomes]}"
            outcome = outcomes[0]
            assert outcome.handoff_queue == "support"
            call_id = outcome.call_id

            # The member's own dialplan saw the inherited variables.
            await wait_for(lambda: any(d.get("CallId") == call_id for d in desk.seen), 30, "the desk's UserEvent")
            report = next(d for d in desk.seen if d.get("CallId") == call_id)
            assert report["Desk"] == "support-desk"
            print(f"desk saw: {report}")
            # The full context is in Redis under the call id, redacted.
            record = await store.get(call_id)
            assert record is not None and record["queue"] == "support", record
            print(f"redis record: {json.dumps(record)[:1500]}")
            assert record["intent"] == "order_status", record  # the task the caller was on
            assert report["Intent"] == record["intent"], report
            assert report["Reason"] == outcome.handoff_reason == record["reason"], (report, record)
            assert report["ContextKey"] == f"ari-agent:handoff:{call_id}", report
            assert "order_number=4567" in record["summary"], record  # what the agent did, for the human
            assert any(t["who"] == "caller" for t in record["transcript"]), record

            # The page updates live (no reload) to the connected call with the context.
            await page.wait_for_selector("#call[data-state='connected']", timeout=30000)
            shown = await page.inner_text("#call")
            assert record["intent"] in shown and record["reason"] in shown, shown
            assert "4567" in shown and record["verification"] in shown, shown
            assert record["caller_id"] in shown, shown
            if record["summary"]:
                assert record["summary"][:40] in shown, shown
            assert "Transcript so far" in shown
            transcript_items = await page.locator("#transcript li").count()
            assert transcript_items >= 2, shown
            await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
            shot = ARTIFACTS / "screenpop-connected.png"
            await page.screenshot(path=str(shot), full_page=True)
            await asyncio.to_thread((ARTIFACTS / "screenpop-connected.html").write_text, await page.content())
            print(f"screen-pop screenshot: {shot}  card: {json.dumps(pop.live.card(DESK))[:300]}")
            await browser.close()

            # What the agent said before the transfer: the conversation's handoff line, once. The support
            # desk was free (no wait) and is the queue asked for, so the desk had nothing to add to it.
            conv = next(s.conversation for s in manager.ended if s.call_id == call_id)
            said = [e["text"] for e in getattr(conv, "events", []) if e.get("kind") == "say"]
            assert said and "colleague" in said[-1], said  # the demo map's handoff line
            assert not any("putting you through" in t or "The wait is" in t for t in said), said
            assert agent.ari is not None
            await agent.ari.quietly(agent.ari.hangup(outcome.caller_channel))
            await place
    finally:
        await store.close()
        await desk.ami.close()
        await runner.cleanup()
        await pop.close()
