// ari-agent screen-pop: live call card over server-sent events. Values are set with textContent only.
"use strict";
(function () {
  const titles = { ringing: "Incoming call", connected: "On a call", completed: "Call ended", abandoned: "Caller hung up" };
  const conn = document.getElementById("conn");
  function setText(el, text) { if (el) { el.textContent = text == null ? "" : String(text); } }
  function render(card) {
    const section = document.getElementById("call");
    if (!section) { return; }
    section.dataset.state = card.state || "idle";
    setText(document.getElementById("call-title"), titles[card.state] || "No call");
    setText(document.getElementById("status"), card.has_context ? "" : "This caller did not come through the voice agent: no context.");
    setText(document.getElementById("rerouted"), card.rerouted_because ? "Sent here from " + card.requested_queue + " (" + card.rerouted_because + ")." : "");
    section.querySelectorAll("[data-field]").forEach(function (dd) { setText(dd, card[dd.dataset.field]); });
    const body = document.querySelector("#slots tbody");
    body.replaceChildren();
    Object.entries(card.slots || {}).forEach(function (kv) {
      const tr = document.createElement("tr");
      const th = document.createElement("th"); th.scope = "row"; setText(th, kv[0]);
      const td = document.createElement("td"); setText(td, kv[1]);
      tr.append(th, td); body.append(tr);
    });
    const list = document.getElementById("transcript");
    list.replaceChildren();
    (card.transcript || []).forEach(function (t) {
      const li = document.createElement("li");
      const agent = t.who === "agent";
      li.className = agent ? "agent" : "caller";
      const who = document.createElement("span"); who.className = "who"; setText(who, agent ? "Agent:" : "Caller:");
      li.append(who, document.createTextNode(" " + (t.text || ""))); list.append(li);
    });
  }
  const source = new EventSource("/events");
  source.addEventListener("open", function () { setText(conn, "Live."); });
  source.addEventListener("error", function () { setText(conn, "Reconnecting…"); });
  source.addEventListener("card", function (e) {
    try { render(JSON.parse(e.data)); } catch (err) { setText(conn, "Could not read an update."); }
  });
})();
