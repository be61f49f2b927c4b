"""The human leg of a transferred call, from the ACD's queue events (AMI), into its call record.

``human_leg(event)`` reads one ``telephony.ami_events.QueueEvent`` of a caller who came from the agent
(``ARI_AGENT_CALL_ID`` on the channel): ``AgentConnect`` says a person answered after ``HoldTime``
seconds in the queue; ``AgentComplete`` adds the ``TalkTime`` they handled it; ``QueueCallerAbandon``
says the caller gave up after ``HoldTime`` seconds. ``apply_queue_event(store, event)`` stores it
(``CallRecordStore.report_human_leg``), which the SLA adherence KPI and the human handling time use.
Other events, and callers that did not come from the agent, are ignored.

``AcdFollower(store, ami_cfg)`` does it live (``ari-agent records follow-acd``): one AMI login with queue
events, each human leg stored from a worker thread. The agent writes a call's record when its own leg
ends, which can be after the queue answered: a leg whose record is not there yet is retried every
second for ``wait_for_record_s``, then dropped (logged).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ari_agent.config import AmiConfig
from ari_agent.records.store import CallRecordStore
from ari_agent.telephony.ami import AmiClient
from ari_agent.telephony.ami_events import QueueEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HumanLeg:
    call_id: str
    answered: bool
    wait_s: float | None
    handle_s: float | None = None


def human_leg(event: QueueEvent) -> HumanLeg | None:
    if event.call_id is None:
        return None
    wait = None if event.hold_time_s is None else float(event.hold_time_s)
    if event.kind == "agent_connect":
        return HumanLeg(event.call_id, True, wait)
    if event.kind == "agent_complete":
        return HumanLeg(event.call_id, True, wait, None if event.talk_time_s is None else float(event.talk_time_s))
    if event.kind == "caller_abandon":
        return HumanLeg(event.call_id, False, wait)
    return None


def apply_queue_event(store: CallRecordStore, event: QueueEvent) -> bool:
    """Store what ``event`` says about a transferred call's human leg; False when it says nothing or the
    call has no record (yet)."""
    leg = human_leg(event)
    if leg is None:
        return False
    return store.report_human_leg(leg.call_id, answered=leg.answered, wait_s=leg.wait_s, handle_s=leg.handle_s)


class AcdFollower:
    def __init__(self, store: CallRecordStore, ami: AmiConfig, *, wait_for_record_s: float = 120.0) -> None:
        self.store = store
        self.ami = AmiClient(ami, events=True)
        self.ami.listeners.append(self._on_event)
        self.wait_for_record_s = wait_for_record_s
        self.stored = 0  # human legs stored
        self.dropped = 0  # legs whose call never got a record (or that could not be stored)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, connect_timeout_s: float = 10.0) -> bool:
        """Log in to AMI (it keeps reconnecting by itself); whether it is connected within the timeout."""
        return await self.ami.wait_connected(connect_timeout_s)

    async def close(self) -> None:
        await self.ami.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_event(self, event: QueueEvent) -> None:
        leg = human_leg(event)
        if leg is not None:
            task = asyncio.get_running_loop().create_task(self._store(leg), name=f"acd-{leg.call_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _store(self, leg: HumanLeg) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_for_record_s
        while True:
            try:
                if await asyncio.to_thread(self.store.report_human_leg, leg.call_id, answered=leg.answered,
                                           wait_s=leg.wait_s, handle_s=leg.handle_s):
                    self.stored += 1
                    return
            except Exception as exc:  # the database is down: retried like a record not written yet
                log.warning("call %s: human leg not stored yet: %s", leg.call_id, exc.__class__.__name__)
            if loop.time() >= deadline:
                self.dropped += 1
                log.warning("call %s: no call record within %.0fs; its human leg (answered=%s) is dropped",
                            leg.call_id, self.wait_for_record_s, leg.answered)
                return
            await asyncio.sleep(1.0)
