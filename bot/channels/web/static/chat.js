// The web chat page: talks to shopbot's JSON API, shows replies as they are written (server-sent events).
// Every text from the model, the shop's staff or the visitor goes into the page as text (textContent), never HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const log = $("log"), input = $("message"), status = $("status");
  const pending = new Map(); // the page's message id -> the reply bubble being written for it
  const finished = new Set(); // ids whose reply is shown in full
  // Catching up after the event stream was down: the newest stored message the page has checked against the server,
  // and what it has shown live since (events carry no stored ids), so those are not shown a second time.
  let known = 0, missed = false;
  const unconfirmed = []; // {role, text, id}: id is the page's id of a visitor's message
  let texts = {}, limit = 4096, showSentiment = false;

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
    let response;
    try {
      response = await fetch(path, {credentials: "same-origin", ...init});
    } catch (err) {
      throw new Error(texts.error || "The chat cannot be reached.");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || texts.error);
    return data;
  }

  function newId() { // crypto.randomUUID needs HTTPS; this works on plain HTTP too
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function add(role, text, sentiment) {
    const item = document.createElement("div");
    item.className = "msg " + role;
    const who = document.createElement("span");
    who.className = role === "note" ? "visually-hidden" : "who";
    who.textContent = {customer: texts.you, bot: texts.shop, operator: texts.operator, note: texts.shop}[role] + ":";
    const body = document.createElement("p");
    body.textContent = text;
    item.append(who, body);
    if (sentiment) mood(item, sentiment);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function mood(item, sentiment) {
    if (!showSentiment || !sentiment) return;
    const line = item.querySelector(".mood") || item.appendChild(document.createElement("span"));
    line.className = "mood";
    line.textContent = `${sentiment.label} ${sentiment.confidence.toFixed(2)}`;
  }

  function writing(id) {
    const bubble = add("bot", "");
    bubble.classList.add("writing");
    bubble.setAttribute("aria-busy", "true"); // screen readers read the reply once, when it is finished
    pending.set(id, bubble);
    return bubble;
  }

  function partial(id, text) {
    const bubble = pending.get(id);
    if (bubble) bubble.querySelector("p").textContent = text;
    log.scrollTop = log.scrollHeight;
  }

  function finish(id, data, mine) { // called twice for the visitor's own message: by the event and the answer
    if (mine && data.sentiment) mood(mine, data.sentiment);
    if (finished.has(id)) return;
    if (!pending.has(id)) return catchUp(); // its message came while the stream was down: both are stored
    if (data.reply) unconfirmed.push({role: "bot", text: data.reply});
    complete(id, data.reply);
  }

  function complete(id, reply) { // the reply bubble for `id` shows the whole reply
    finished.add(id);
    const bubble = pending.get(id);
    pending.delete(id);
    bubble.classList.remove("writing");
    bubble.removeAttribute("aria-busy");
    if (reply) bubble.querySelector("p").textContent = reply;
    else bubble.remove(); // no reply due: a person has the chat, or the visitor is sending too fast
  }

  let catching = Promise.resolve();
  function catchUp() { // one at a time: two at once would both add what is missing
    catching = catching.then(showMissed, showMissed); // one failing does not stop the next
    return catching;
  }

  async function showMissed() { // the stored messages newer than `known` that the page does not show yet
    let session;
    try {
      session = await api("api/session");
    } catch (err) {
      return; // the next reconnect tries again
    }
    let answered = null; // a visitor's message on screen whose reply may be stored already but not shown
    for (const m of session.messages.filter((m) => m.id > known)) {
      known = m.id;
      const i = unconfirmed.findIndex((u) => u.role === m.role && u.text === m.text);
      if (i >= 0) {
        if (m.role === "customer") answered = unconfirmed[i].id;
        unconfirmed.splice(i, 1);
      } else if (m.role === "bot" && pending.has(answered)) {
        complete(answered, m.text); // the reply its bubble was waiting for; its event was missed
      } else {
        add(m.role, m.text, m.sentiment);
        if (m.role === "customer") answered = null;
      }
    }
  }

  async function send(text) {
    const command = text.trim().toLowerCase();
    if (command === "/forget") return askForget();
    if (command === "/reset") {
      input.value = "";
      return reset();
    }
    if (text.length > limit) {
      status.textContent = texts.too_long.replace("{limit}", limit);
      return;
    }
    status.textContent = "";
    input.value = "";
    const id = newId();
    const mine = add("customer", text);
    mine.dataset.id = id;
    unconfirmed.push({role: "customer", text, id});
    writing(id);
    try {
      finish(id, await api("api/messages", {id, text}), mine);
    } catch (err) {
      pending.get(id)?.remove();
      pending.delete(id);
      mine.classList.add("failed");
      status.textContent = err.message;
      input.value = input.value || text; // nothing typed is lost
    }
  }

  async function reset() {
    try {
      add("note", (await api("api/reset", {})).reply);
    } catch (err) {
      status.textContent = err.message;
    }
  }

  function askForget() {
    $("confirm").hidden = false;
    $("forget-no").focus();
  }

  function closeConfirm() {
    $("confirm").hidden = true;
    input.focus();
  }

  async function forget() {
    $("confirm").hidden = true;
    stopEvents(); // the "forgotten" event is for the visitor's other pages, not this one
    try {
      const data = await api("api/forget", {});
      log.replaceChildren();
      known = 0; // a new visitor: nothing stored yet
      unconfirmed.length = 0;
      add("note", data.reply);
    } catch (err) {
      status.textContent = err.message;
    }
    restartEvents(); // as the visitor the cookie now names: a new one, unless forgetting failed
    input.focus();
  }

  let events = null;
  // A stream whose request gets an error status instead of a dropped connection (a reverse proxy's 502/503/504 for
  // the seconds shopbot restarts) is given up for good by EventSource (readyState CLOSED): the page opens a new one
  // itself, waiting longer each time so a long outage costs the server little.
  const RETRY_FIRST_MS = 2000, RETRY_MAX_MS = 30000;
  let retryDelay = RETRY_FIRST_MS, retryTimer = null;

  function stopEvents() {
    clearTimeout(retryTimer);
    if (events) events.close();
  }

  function restartEvents() {
    stopEvents();
    const source = events = new EventSource("api/events");
    // The stream dropped (network change, server restart, a page too slow to read): the browser reconnects by
    // itself, and the page then fetches what it missed meanwhile.
    source.addEventListener("error", () => {
      missed = true;
      if (source.readyState === EventSource.CLOSED) retryLater(source);
    });
    source.addEventListener("open", () => {
      retryDelay = RETRY_FIRST_MS;
      if (missed) catchUp();
      missed = false;
    });
    const on = (name, handle) => events.addEventListener(name, (e) => handle(JSON.parse(e.data)));
    on("customer", (d) => { // sent from another tab or window of this visitor
      if (!log.querySelector(`[data-id="${CSS.escape(d.id || "")}"]`) && !pending.has(d.id)) {
        add("customer", d.text).dataset.id = d.id;
        unconfirmed.push({role: "customer", text: d.text, id: d.id});
        writing(d.id);
      }
    });
    on("partial", (d) => partial(d.id, d.text));
    on("reply", (d) => finish(d.id, d));
    on("operator", (d) => {
      add("operator", d.text);
      unconfirmed.push({role: "operator", text: d.text});
    });
    on("forgotten", () => location.reload());
  }

  function retryLater(source) {
    const delay = retryDelay;
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    const current = () => events === source; // not restarted meanwhile ("Forget me" opens its own)
    retryTimer = setTimeout(async () => {
      // Refused: as before this change, the page goes on without the stream (replies come as the answers to sends).
      if (current() && !(await refused()) && current()) restartEvents();
    }, delay);
  }

  // Whether the server refuses the stream for good: 401, no visitor cookie (a widget whose browser blocks the shop's
  // cookie), which waiting cannot fix. EventSource hides the status, so a fetch of the same address asks, and is
  // dropped as soon as its status is in. A fetch of api/session could not tell (it answers a visitor without a
  // cookie too, with a new one), and giving up after a few failures would also give up on a long restart while a
  // customer waits for an operator. Anything but 401 (502, 503, 504, no network) may improve: try again.
  async function refused() {
    const abort = new AbortController();
    try {
      return (await fetch("api/events", {credentials: "same-origin", signal: abort.signal})).status === 401;
    } catch (err) {
      return false;
    } finally {
      abort.abort();
    }
  }

  function label(id, text) { $(id).textContent = text; }

  async function start() {
    const lang = params.get("lang");
    let session;
    try {
      session = await api("api/session" + (lang ? "?lang=" + encodeURIComponent(lang) : ""));
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    texts = session.texts;
    limit = session.max_message_chars;
    showSentiment = session.show_sentiment;
    document.documentElement.lang = session.language;
    document.title = texts.title;
    label("title", texts.title);
    label("new-chat", texts.new_chat);
    label("forget", texts.forget);
    label("close-label", texts.close_chat);
    label("confirm-text", texts.forget_confirm);
    label("forget-yes", texts.forget_yes);
    label("forget-no", texts.forget_no);
    label("message-label", texts.input_label);
    label("send", texts.send);
    input.placeholder = texts.placeholder;
    input.maxLength = limit;
    if (!session.messages.length) add("note", texts.greeting);
    for (const m of session.messages) add(m.role, m.text, m.sentiment);
    known = session.messages.length ? session.messages.at(-1).id : 0;
    restartEvents();
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) send(input.value);
  });
  input.addEventListener("keydown", (e) => { // Enter sends; Shift+Enter is a new line
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", reset);
  $("forget").addEventListener("click", askForget);
  $("forget-yes").addEventListener("click", forget);
  $("forget-no").addEventListener("click", closeConfirm);
  $("confirm").addEventListener("keydown", (e) => { if (e.key === "Escape") closeConfirm(); });
  if (params.has("widget")) { // inside the widget's frame: the close button (and Escape) closes the corner chat
    const close = () => parent.postMessage("shopbot:close", "*");
    $("close").hidden = false;
    $("close").addEventListener("click", close);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && $("confirm").hidden) close(); });
  }
  start();
})();
