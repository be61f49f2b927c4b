"""Where a handed-off caller goes, decided from the queues' state: pure, so every branch is unit-tested.

Rules (``handoff.queues`` in the service config):

- candidates are the requested queue, then its ``fallback``, then that one's fallback, ... (no repeats);
- with loop prevention on, a queue the caller already came back from (``ARI_AGENT_TRIED`` on the
  channel) is skipped: the caller is never sent round again;
- a candidate is good when AMI says it has a logged-in, available member and its estimated wait is
  within ``max_wait_s``; the first good one wins;
- no AMI answer at all (unreachable, timed out, check disabled) → the first untried candidate unchecked:
  an unchecked transfer beats stranding the caller;
- no good candidate → the ``exhausted`` extension: the dialplan says so and offers what the site
  defines, instead of ringing an empty queue;
- a destination that is not a queue (``handoff.destinations``: voicemail, callback, a supervisor's
  takeover) is not checked and has no fallback: the caller goes there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ari_agent.config import HandoffConfig, HandoffQueueConfig
from ari_agent.telephony.ami_events import QueueSummary

_DEFAULT = HandoffQueueConfig()


@dataclass(frozen=True)
class QueueVerdict:
    queue: str
    problem: str | None  # None: good; else no_such_queue | no_members | none_available | wait_over_limit
    wait_s: int | None = None


@dataclass(frozen=True)
class HandoffPlan:
    requested: str
    target: str  # a queue, or HandoffConfig.exhausted_extension
    checked: bool  # False: AMI gave no answer; target is the requested queue unchecked
    exhausted: bool = False
    wait_s: int | None = None
    verdicts: tuple[QueueVerdict, ...] = ()
    skipped: tuple[str, ...] = ()  # already tried (loop prevention)

    @property
    def rerouted(self) -> bool:
        return self.target != self.requested

    @property
    def why(self) -> str:
        """Why the caller does not go where the conversation asked ("" when it does)."""
        if not self.rerouted:
            return ""
        if self.requested in self.skipped:
            return "already_tried"
        first = next((v for v in self.verdicts if v.queue == self.requested), None)
        return first.problem or "" if first else ""


def settings_for(cfg: HandoffConfig, queue: str) -> HandoffQueueConfig:
    return cfg.queues.get(queue, _DEFAULT)


def candidates(cfg: HandoffConfig, requested: str) -> list[str]:
    out = [requested]
    nxt = settings_for(cfg, requested).fallback
    while nxt and nxt not in out:
        out.append(nxt)
        nxt = settings_for(cfg, nxt).fallback
    return out


def judge(cfg: HandoffConfig, queue: str, summary: QueueSummary | None) -> QueueVerdict:
    if summary is None:
        return QueueVerdict(queue, "no_such_queue")
    if summary.logged_in == 0:
        return QueueVerdict(queue, "no_members", summary.estimated_wait_s)
    if summary.available == 0:
        return QueueVerdict(queue, "none_available", summary.estimated_wait_s)
    wait = summary.estimated_wait_s
    if wait > settings_for(cfg, queue).max_wait_s:
        return QueueVerdict(queue, "wait_over_limit", wait)
    return QueueVerdict(queue, None, wait)


def tried_queues(marker: str) -> tuple[str, ...]:
    """The queues in an ``ARI_AGENT_TRIED`` marker (comma-separated; junk ignored)."""
    return tuple(q for q in (p.strip() for p in marker.split(",")) if q and len(q) <= 80)


def plan_handoff(cfg: HandoffConfig, requested: str, summaries: Mapping[str, QueueSummary | None] | None,
                 tried: Sequence[str] = ()) -> HandoffPlan:
    """``summaries``: AMI's answer per candidate queue, or None when AMI could not be asked."""
    if requested in cfg.destinations:
        return HandoffPlan(requested, requested, checked=False)
    chain = candidates(cfg, requested)
    skipped = tuple(q for q in chain if cfg.loop_prevention and q in tried)
    open_ = [q for q in chain if q not in skipped]
    if not open_:
        return HandoffPlan(requested, cfg.exhausted_extension, checked=summaries is not None, exhausted=True,
                           skipped=skipped)
    if summaries is None:
        return HandoffPlan(requested, open_[0], checked=False, skipped=skipped)
    verdicts: list[QueueVerdict] = []
    for queue in open_:
        if queue not in summaries:  # not asked (AMI failed mid-way): go there unchecked
            return HandoffPlan(requested, queue, checked=False, verdicts=tuple(verdicts), skipped=skipped)
        verdict = judge(cfg, queue, summaries[queue])
        verdicts.append(verdict)
        if verdict.problem is None:
            return HandoffPlan(requested, queue, checked=True, wait_s=verdict.wait_s, verdicts=tuple(verdicts),
                               skipped=skipped)
    return HandoffPlan(requested, cfg.exhausted_extension, checked=True, exhausted=True, verdicts=tuple(verdicts),
                       skipped=skipped)


# --- what the caller hears ------------------------------------------------------------------------------

_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "thirteen", "fourteen", "fifteen")


def wait_words(wait_s: int) -> str:
    if wait_s < 60:
        return "under a minute"
    minutes = round(wait_s / 60)
    spoken = _NUMBERS[minutes] if minutes < len(_NUMBERS) else str(minutes)
    return f"about {spoken} minute" + ("s" if minutes != 1 else "")


def team_name(cfg: HandoffConfig, queue: str) -> str:
    return settings_for(cfg, queue).team or queue.replace("_", " ").replace("-", " ")


def announcement(cfg: HandoffConfig, plan: HandoffPlan, *, told: bool = False) -> str | None:
    """What the agent says just before the transfer, or None (``announce: false``).

    ``told``: the caller has just heard the conversation's own handoff line ("Let me connect you with a
    colleague who can help."). Then only what that line could not know is said: another team than the
    one asked for, every team busy, or a wait above nothing. A second line saying the same thing again
    only keeps the caller from the person (two espeak lines took ~7 s)."""
    if plan.exhausted:
        return "I'm sorry, all of our teams are busy right now."
    if plan.target in cfg.destinations or not settings_for(cfg, plan.target).announce:
        return None
    rerouted = plan.rerouted and plan.why != "already_tried"
    wait_s = plan.wait_s if plan.checked else None  # unchecked: no wait to tell
    if told and not rerouted:
        return f"The wait is {wait_words(wait_s)}." if wait_s else None
    team = f"our {team_name(cfg, plan.target)} team"
    lead = f"Our {team_name(cfg, plan.requested)} team can't take calls right now, so " if rerouted else ""
    text = f"{lead}I'm putting you through to {team}"
    if wait_s is None:
        return text + "."
    return text + ("; someone should answer shortly." if wait_s == 0 else f"; the wait is {wait_words(wait_s)}.")
