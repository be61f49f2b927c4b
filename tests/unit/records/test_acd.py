"""A transferred call's human leg from the ACD's queue events (AMI headers as Asterisk 22 sends them),
stored in its record on a real SQLite file, and counted by the SLA adherence KPI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ari_agent.records.acd import HumanLeg, apply_queue_event, human_leg
from ari_agent.records.kpi import SlaTargets, compute_kpis
from ari_agent.records.model import CallRecord
from ari_agent.records.store import CallRecordStore
from ari_agent.telephony.ami_events import parse_queue_event

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def event(name: str, call_id: str | None, **headers: str) -> dict[str, object]:
    h: dict[str, object] = {"Event": name, "Queue": "support", "Channel": "PJSIP/caller-00000001",
                            "Uniqueid": "1700000000.1", **headers}
    if call_id is not None:
        h["ChanVariable"] = [f"ARI_AGENT_CALL_ID={call_id}", "OTHER=x"]
    return h


def test_queue_events_give_the_human_leg() -> None:
    connect = parse_queue_event(event("AgentConnect", "c1", HoldTime="12", RingTime="3"))
    complete = parse_queue_event(event("AgentComplete", "c1", HoldTime="12", TalkTime="185", Reason="caller"))
    abandon = parse_queue_event(event("QueueCallerAbandon", "c2", HoldTime="41", Position="1"))
    assert connect is not None and complete is not None and abandon is not None
    assert human_leg(connect) == HumanLeg("c1", True, 12.0)
    assert human_leg(complete) == HumanLeg("c1", True, 12.0, 185.0)
    assert human_leg(abandon) == HumanLeg("c2", False, 41.0)
    join = parse_queue_event(event("QueueCallerJoin", "c1", Position="1"))
    not_ours = parse_queue_event(event("AgentConnect", None, HoldTime="5"))
    assert join is not None and human_leg(join) is None
    assert not_ours is not None and human_leg(not_ours) is None


def test_the_human_leg_lands_in_the_record_and_the_sla(tmp_path: Path) -> None:
    store = CallRecordStore(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    try:
        for cid in ("c1", "c2"):
            store.add(CallRecord(cid, T0, T0 + dt.timedelta(minutes=4), outcome="transferred",
                                 transfer_queue="support", answer_s=0.5))
        for name, cid, headers in (("AgentConnect", "c1", {"HoldTime": "12"}),
                                   ("AgentComplete", "c1", {"HoldTime": "12", "TalkTime": "185"}),
                                   ("QueueCallerAbandon", "c2", {"HoldTime": "41"})):
            ev = parse_queue_event(event(name, cid, **headers))
            assert ev is not None and apply_queue_event(store, ev)
        gone = parse_queue_event(event("AgentConnect", "no-such-call", HoldTime="1"))
        assert gone is not None and not apply_queue_event(store, gone)
        c1, c2 = store.get("c1"), store.get("c2")
        assert c1 is not None and (c1.human_answered, c1.human_wait_s, c1.human_handle_s) == (True, 12.0, 185.0)
        assert c2 is not None and (c2.human_answered, c2.human_wait_s, c2.human_handle_s) == (False, 41.0, None)
        k = compute_kpis(store.kpi_window(T0, T0 + dt.timedelta(days=1)), T0, T0 + dt.timedelta(days=1),
                         sla=SlaTargets(queue_answer_s=20.0))
        assert (k.sla_queue_reported, k.sla_queue_answer, k.sla_adherence, k.aht_human_s) == (2, 0.5, 0.5, 185.0)
    finally:
        store.close()
