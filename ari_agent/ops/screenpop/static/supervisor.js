// ari-agent supervisor view: live calls over server-sent events. DOM nodes and textContent only.
"use strict";
(function () {
  const conn = document.getElementById("conn");
  const main = document.querySelector("main");
  const agentSection = document.getElementById("agent-calls");
  const csrf = main ? main.dataset.csrf || "" : "";
  let targets = [];
  try { targets = JSON.parse(agentSection.dataset.targets || "[]"); } catch (err) { targets = []; }
  const queueStates = { ringing: "Ringing a member", connected: "With a member" };
  let pending = null;
  const chosen = {};  // call id -> the destination picked, kept across redraws

  function setText(el, text) { if (el) { el.textContent = text == null ? "" : String(text); } }
  function cell(text) { const td = document.createElement("td"); setText(td, text); return td; }
  function since(started, now) {
    const s = Math.max(0, Math.floor(now - Number(started || now)));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function lastWords(card) {
    return (card.transcript || []).slice(-2).map(function (t) {
      return (t.who === "agent" ? "Agent: " : "Caller: ") + (t.text || "");
    }).join(" / ");
  }
  function hidden(name, value) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value; return input;
  }
  function takeoverForm(callId) {
    const form = document.createElement("form");
    form.method = "post"; form.action = "/supervisor/takeover"; form.className = "takeover";
    form.append(hidden("call_id", callId), hidden("csrf", csrf));
    const label = document.createElement("label"); label.htmlFor = "to-" + callId; setText(label, "Send to");
    const select = document.createElement("select"); select.id = "to-" + callId; select.name = "target";
    targets.forEach(function (t) { const o = document.createElement("option"); o.value = t[0]; setText(o, t[1]); select.append(o); });
    if (chosen[callId]) { select.value = chosen[callId]; }
    const button = document.createElement("button"); button.type = "submit"; setText(button, "Take over");
    form.append(label, document.createTextNode(" "), select, document.createTextNode(" "), button);
    return form;
  }
  function fill(section, rows, empty, columns) {
    const body = section.querySelector("tbody");
    body.replaceChildren();
    setText(section.querySelector(".count"), rows.length);
    if (!rows.length) {
      const tr = document.createElement("tr"); const td = cell(empty); td.colSpan = columns; tr.append(td); body.append(tr);
      return;
    }
    rows.forEach(function (tr) { body.append(tr); });
  }
  function render(snapshot) {
    const now = snapshot.now || Date.now() / 1000;
    fill(agentSection, (snapshot.with_agent || []).map(function (c) {
      const tr = document.createElement("tr"); tr.dataset.call = c.call_id;
      tr.append(cell(c.caller_id || "unknown"), cell(since(c.started_at, now)), cell(c.intent || "(not yet known)"),
                cell(c.phase), cell(c.verification), cell(lastWords(c)));
      const td = document.createElement("td"); td.append(takeoverForm(c.call_id)); tr.append(td);
      return tr;
    }), "No calls with the voice agent.", 7);
    fill(document.getElementById("queue-calls"), (snapshot.in_queues || []).map(function (c) {
      const tr = document.createElement("tr");
      tr.append(cell(c.queue), cell(c.member), cell(queueStates[c.state] || c.state), cell(c.caller_id),
                cell(c.intent), cell(c.reason));
      return tr;
    }), "No calls in the queues.", 6);
  }
  function busy() { return agentSection.contains(document.activeElement) && document.activeElement.tagName === "SELECT"; }
  agentSection.addEventListener("change", function (e) {
    const form = e.target.closest("form.takeover");
    if (form && e.target.name === "target") { chosen[form.elements.call_id.value] = e.target.value; }
  });
  agentSection.addEventListener("focusout", function () {
    setTimeout(function () { if (pending && !busy()) { const s = pending; pending = null; render(s); } }, 0);
  });
  const source = new EventSource("/supervisor/events");
  source.addEventListener("open", function () { setText(conn, "Live."); });
  source.addEventListener("error", function () { setText(conn, "Reconnecting…"); });
  source.addEventListener("calls", function (e) {
    let snapshot;
    try { snapshot = JSON.parse(e.data); } catch (err) { setText(conn, "Could not read an update."); return; }
    if (busy()) { pending = snapshot; return; }  // the supervisor is choosing a destination: redraw after
    render(snapshot);
  });
})();
