// The workbench chat page: plain JavaScript, no build step, nothing loaded from elsewhere.
// Model output is always inserted as text (textContent), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    key: sessionStorage.getItem("workbench-key") || "",
    auth: true,
    question: "",
    current: null, // the `done` event: answer, sources, trace_id, ...
    busy: false,
    sessionId: null, // the conversation: sent with every question, returned by the service
    turns: 0,
    escalated: false,
  };

  function setState(name) {
    document.body.dataset.state = name;
  }

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (state.key) h.Authorization = "Bearer " + state.key;
    return h;
  }

  function errorText(status, body) {
    const err = (body && body.error) || {};
    const msg = err.message || "HTTP " + status;
    return err.trace_id ? msg + " (trace " + err.trace_id + ")" : msg;
  }

  function showError(text) {
    const el = $("error");
    el.textContent = text;
    el.hidden = !text;
  }

  function logFeedback(text) {
    $("feedback-status").textContent = text;
    const li = document.createElement("li");
    li.textContent = text;
    $("feedback-log").appendChild(li);
  }

  // -- the conversation ----------------------------------------------------------------
  function addTurn(question, answer) {
    const li = document.createElement("li");
    const q = document.createElement("p");
    q.className = "turn-question";
    q.textContent = question;
    const a = document.createElement("p");
    a.className = "turn-answer";
    a.textContent = answer;
    li.append(q, a);
    $("conversation").appendChild(li);
  }

  function showSession() {
    $("conversation-panel").hidden = !state.sessionId;
    $("session").textContent = state.sessionId
      ? "Conversation " + state.sessionId.slice(0, 13) + "… · " + state.turns +
        (state.turns === 1 ? " answer" : " answers")
      : "";
    document.body.dataset.session = state.sessionId || "";
  }

  function newConversation() {
    if (state.busy) return;
    state.sessionId = null;
    state.turns = 0;
    state.escalated = false;
    state.current = null;
    $("conversation").replaceChildren();
    $("result").hidden = true;
    $("escalated").hidden = true;
    $("escalate").disabled = false;
    document.body.dataset.escalated = "false";
    showSession();
  }

  // -- asking ------------------------------------------------------------------------
  function resetAnswer() {
    state.current = null;
    $("result").hidden = false;
    $("answer").textContent = "";
    $("sources").replaceChildren();
    $("trace").textContent = "";
    $("controls").hidden = true;
    $("edit-panel").hidden = true;
    $("diff").hidden = true;
    $("feedback-status").textContent = "";
    $("feedback-log").replaceChildren();
    $("comment").value = "";
    for (const id of ["thumbs-up", "thumbs-down"]) $(id).setAttribute("aria-pressed", "false");
    showError("");
  }

  function setBusy(busy) {
    state.busy = busy;
    $("ask").disabled = busy;
    $("regenerate").disabled = busy;
    $("busy").hidden = !busy;
  }

  function parseEvent(raw) {
    let event = "message";
    const data = [];
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    return { event, data: data.length ? JSON.parse(data.join("\n")) : null };
  }

  function renderSources(sources) {
    const list = $("sources");
    list.replaceChildren();
    for (const s of sources) {
      const li = document.createElement("li");
      li.value = s.n;
      const name = document.createElement("span");
      name.className = "source";
      name.textContent = s.source + (s.heading ? " - " + s.heading : "");
      li.appendChild(name);
      if (s.cited) {
        const badge = document.createElement("span");
        badge.className = "cited";
        badge.textContent = "cited";
        li.appendChild(badge);
      }
      if (s.snippet) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "excerpt";
        details.appendChild(summary);
        details.appendChild(document.createTextNode(s.snippet));
        li.appendChild(details);
      }
      list.appendChild(li);
    }
  }

  function handleEvent(ev) {
    if (ev.event === "meta") {
      $("trace").textContent = "trace " + ev.data.trace_id;
    } else if (ev.event === "token") {
      $("answer").textContent += ev.data.text;
    } else if (ev.event === "done") {
      state.current = ev.data;
      if (ev.data.session_id) state.sessionId = ev.data.session_id;
      state.turns += 1;
      showSession();
      $("answer").textContent = ev.data.answer;
      renderSources(ev.data.sources);
      const model = ev.data.model ? " · " + ev.data.model : "";
      $("trace").textContent = "trace " + ev.data.trace_id + model;
      $("controls").hidden = false;
    } else if (ev.event === "error") {
      showError(errorText(0, ev.data));
    }
  }

  async function ask(question) {
    if (state.busy) return;
    // The answer on screen becomes part of the conversation above the new one.
    if (state.current) addTurn(state.question, state.current.answer);
    state.question = question;
    resetAnswer();
    setBusy(true);
    setState("streaming");
    try {
      const body = { question };
      if (state.sessionId) body.session_id = state.sessionId;
      const resp = await fetch("/ask/stream", {
        method: "POST", headers: headers(), body: JSON.stringify(body),
      });
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        showError(errorText(resp.status, body));
        if (resp.status === 401) $("key-panel").hidden = false;
        return;
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const raw = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (raw.trim()) handleEvent(parseEvent(raw));
        }
      }
    } catch (err) {
      showError("The service could not be reached: " + err.message);
    } finally {
      setBusy(false);
      setState(state.current ? "done" : "idle");
    }
  }

  // -- feedback ----------------------------------------------------------------------
  async function sendFeedback(signal) {
    if (!state.current) return null;
    // Session-level signals (escalate) name the conversation, not one answer.
    const target = signal.session_id ? {} : { trace_id: state.current.trace_id };
    const body = Object.assign(target, { source_id: "web" }, signal);
    try {
      const resp = await fetch("/feedback", {
        method: "POST", headers: headers(), body: JSON.stringify(body),
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        logFeedback("Could not record " + signal.kind + ": " + errorText(resp.status, data));
        return null;
      }
      logFeedback("Recorded " + signal.kind + " (" + data.status + ")");
      return data;
    } catch (err) {
      logFeedback("Could not record " + signal.kind + ": " + err.message);
      return null;
    }
  }

  async function thumbs(up) {
    const comment = $("comment").value.trim();
    const signal = { kind: "thumbs", value: up };
    if (comment) signal.comment = comment;
    if (await sendFeedback(signal)) {
      $("thumbs-up").setAttribute("aria-pressed", String(up));
      $("thumbs-down").setAttribute("aria-pressed", String(!up));
    }
  }

  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (err) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  async function copyAnswer() {
    if (!state.current) return;
    const text = state.current.answer;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (err) {
      ok = fallbackCopy(text);
    }
    if (ok) await sendFeedback({ kind: "copy", value: true });
    else logFeedback("Copy failed: your browser blocked the clipboard");
  }

  async function regenerate() {
    if (!state.current || state.busy) return;
    await sendFeedback({ kind: "retry", value: true });
    await ask(state.question);
  }

  // A line diff (longest common subsequence) to show what the edit changed.
  function lineDiff(before, after) {
    const a = before.split("\n");
    const b = after.split("\n");
    const dp = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
    for (let i = a.length - 1; i >= 0; i--) {
      for (let j = b.length - 1; j >= 0; j--) {
        dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
      }
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && a[i] === b[j]) { out.push(["same", a[i]]); i++; j++; }
      else if (i < a.length && (j >= b.length || dp[i + 1][j] >= dp[i][j + 1])) { out.push(["del", a[i]]); i++; }
      else { out.push(["add", b[j]]); j++; }
    }
    return out;
  }

  function showDiff(before, after) {
    const pre = $("diff");
    pre.replaceChildren();
    for (const [kind, line] of lineDiff(before, after)) {
      const span = document.createElement("span");
      span.className = kind;
      span.textContent = (kind === "add" ? "+ " : kind === "del" ? "- " : "  ") + line + "\n";
      pre.appendChild(span);
    }
    pre.hidden = false;
  }

  function openEditor() {
    if (!state.current) return;
    $("edit-text").value = state.current.answer;
    $("edit-panel").hidden = false;
    $("edit-text").focus();
  }

  async function saveEdit() {
    const edited = $("edit-text").value;
    if (!edited.trim() || !state.current) return;
    if (await sendFeedback({ kind: "edit", value: edited })) {
      showDiff(state.current.answer, edited);
      $("edit-panel").hidden = true;
    }
  }

  async function escalate() {
    if (!state.sessionId || state.escalated) return;
    if (await sendFeedback({ kind: "escalate", value: true, session_id: state.sessionId })) {
      state.escalated = true;
      $("escalate").disabled = true;
      $("escalated").hidden = false;
      document.body.dataset.escalated = "true";
    }
  }

  // -- setup -------------------------------------------------------------------------
  async function init() {
    try {
      const info = await (await fetch("/info")).json();
      document.title = info.title;
      $("title").textContent = info.title;
      $("subtitle").textContent = "Answers from the \u201c" + info.collection + "\u201d collection";
      state.auth = info.auth;
      $("question").maxLength = info.max_question_chars;
    } catch (err) {
      showError("The service could not be reached: " + err.message);
    }
    $("key-panel").hidden = !state.auth;
    $("key").value = state.key;
    $("save-key").addEventListener("click", () => {
      state.key = $("key").value.trim();
      sessionStorage.setItem("workbench-key", state.key);
      showError("");
    });
    $("ask-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = $("question").value.trim();
      if (q) ask(q);
    });
    $("thumbs-up").addEventListener("click", () => thumbs(true));
    $("thumbs-down").addEventListener("click", () => thumbs(false));
    $("copy").addEventListener("click", copyAnswer);
    $("regenerate").addEventListener("click", regenerate);
    $("edit").addEventListener("click", openEditor);
    $("save-edit").addEventListener("click", saveEdit);
    $("cancel-edit").addEventListener("click", () => { $("edit-panel").hidden = true; });
    $("escalate").addEventListener("click", escalate);
    $("new-conversation").addEventListener("click", newConversation);
    setState("idle");
  }

  init();
})();
