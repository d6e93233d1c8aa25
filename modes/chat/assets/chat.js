// The live chat page: one WebSocket to /ws, speaking the JSON protocol of the crate README.
// Everything a visitor typed is put on the page with textContent, never as HTML.
"use strict";

(function () {
  const STORE_KEY = "onionhost-chat";
  const MAX_LINES = 1000;
  const MAX_RETRY_MS = 30000;
  // The most names the people list shows; the server sends the first 100 of a large room.
  const MAX_LISTED = 100;

  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const log = $("log");
  const members = $("members");
  const count = $("count");
  const statusLine = $("status");
  const sendForm = $("send-form");
  const text = $("text");
  const sendButton = $("send-button");
  const renameForm = $("rename-form");
  const nameInput = $("name");
  const renameButton = $("rename-button");
  const people = $("people");
  const peopleStale = $("people-stale");
  const encoder = new TextEncoder();
  // On a touch screen Enter makes a new line and the button sends (chat.css hides the hint).
  const touch = window.matchMedia("(hover: none) and (pointer: coarse)").matches;

  let saved = load();
  let me = null;
  // The names this page knows to be here (a large room's first ones, and arrivals since),
  // and how many are here in all.
  let roster = [];
  let present = 0;
  let socket = null;
  let retries = 0;
  let retryTimer = null;
  let maxBytes = 4096;
  let lastSent = "";
  // Whether this page was in the room before: a welcome after that is a reconnect.
  let wasIn = false;

  // The name and resume token live in this tab's sessionStorage (memory only in Tor
  // Browser), so a reconnect or a reload keeps the name.
  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE_KEY)) || {};
    } catch (e) {
      return {};
    }
  }

  function save() {
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(saved));
    } catch (e) {
      // Storage may be disabled; the name then survives reconnects but not reloads.
    }
  }

  // The notice above the room: `kind` is "info" or "error"; an empty message hides it.
  // `reload` adds a button that reloads the page.
  function setStatus(message, kind, reload) {
    statusLine.replaceChildren(message);
    statusLine.className = kind === "error" ? "note error" : "note";
    if (reload) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Reload";
      button.addEventListener("click", () => location.reload());
      statusLine.append(" ", button);
    }
    statusLine.hidden = message === "";
  }

  // While disconnected the people list is the last one known, and says so.
  function setStale(stale) {
    people.classList.toggle("stale", stale);
    peopleStale.hidden = !stale;
  }

  function setEnabled(on) {
    for (const el of [text, sendButton, nameInput, renameButton]) {
      el.disabled = !on;
    }
  }

  function time() {
    const now = new Date();
    return String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0");
  }

  // Adds a line; the list follows it when the visitor was reading the end (or sent it), and
  // stays put when they scrolled up to read.
  function append(li, follow) {
    const atBottom = follow || log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const stamp = document.createElement("time");
    stamp.textContent = time();
    li.prepend(stamp, " ");
    log.append(li);
    while (log.children.length > MAX_LINES) {
      log.firstElementChild.remove();
    }
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function line(kind, message) {
    const li = document.createElement("li");
    li.className = kind;
    const span = document.createElement("span");
    span.className = "text";
    span.textContent = message;
    li.append(span);
    append(li);
  }

  function message(from, body) {
    const li = document.createElement("li");
    li.className = from === me ? "msg mine" : "msg";
    const who = document.createElement("span");
    who.className = "from";
    who.textContent = from;
    const what = document.createElement("span");
    what.className = "text";
    what.dir = "auto";
    what.textContent = body;
    li.append(who, " ", what);
    append(li, from === me);
  }

  function key(name) {
    return name.toLowerCase();
  }

  function renderMembers() {
    if (me !== null && !roster.includes(me)) {
      roster.push(me);
    }
    roster.sort((a, b) => key(a).localeCompare(key(b)));
    const shown = roster.slice(0, MAX_LISTED);
    const items = shown.map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === me) {
        li.className = "me";
        li.append(" (you)");
      }
      return li;
    });
    const others = Math.max(0, present - shown.length);
    if (others > 0) {
      const li = document.createElement("li");
      li.className = "more";
      li.textContent = "and " + others + " more";
      items.push(li);
    }
    members.replaceChildren(...items);
    count.textContent = String(Math.max(present, shown.length));
  }

  // The arrivals and departures of a busy moment, as one line.
  function presenceLine(msg) {
    const parts = [];
    if (msg.joined.length > 0) {
      parts.push(msg.joined.join(", ") + " joined");
    }
    if (msg.left.length > 0) {
      parts.push(msg.left.join(", ") + " left");
    }
    if (msg.more > 0) {
      parts.push(msg.more + " more came or went");
    }
    parts.push(msg.present + " here");
    return parts.join(" · ");
  }

  function handle(msg) {
    switch (msg.type) {
      case "welcome":
        me = msg.you;
        saved = { name: msg.you, resume: msg.resume };
        save();
        retries = 0;
        roster = msg.members.slice();
        present = msg.present;
        maxBytes = msg.max_message_bytes;
        document.title = msg.title;
        nameInput.value = me;
        renderMembers();
        setStale(false);
        setEnabled(true);
        setStatus("");
        if (wasIn) {
          line(
            "notice",
            "Reconnected as " + me + ". Messages said while you were disconnected are not " +
              "shown here: you may have missed some."
          );
        } else {
          line("notice", "You are in the room as " + me + ".");
        }
        wasIn = true;
        break;
      case "joined":
        if (!roster.includes(msg.name)) {
          roster.push(msg.name);
        }
        present += 1;
        renderMembers();
        line("notice", msg.name + " joined");
        break;
      case "left":
        roster = roster.filter((name) => name !== msg.name);
        present = Math.max(0, present - 1);
        renderMembers();
        line("notice", msg.name + " left");
        break;
      case "renamed":
        roster = roster.map((name) => (name === msg.from ? msg.to : name));
        if (msg.from === me) {
          me = msg.to;
          saved.name = me;
          save();
          nameInput.value = me;
        }
        renderMembers();
        line("notice", msg.from + " is now " + msg.to);
        break;
      case "presence":
        // The list and the count as the server has them now.
        roster = msg.members.slice();
        present = msg.present;
        renderMembers();
        line("notice", presenceLine(msg));
        break;
      case "message":
        message(msg.from, msg.text);
        break;
      case "error":
        line("error", msg.message);
        if ((msg.code === "rate_limited" || msg.code === "message_invalid") && text.value === "") {
          text.value = lastSent;
        }
        if (msg.code === "name_taken" || msg.code === "name_invalid") {
          nameInput.value = me || "";
        }
        break;
      default:
        break;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    const url = new URL("/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    setStatus("Connecting…", "info");
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "join", name: saved.name, resume: saved.resume }));
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      handle(msg);
    };
    ws.onclose = (event) => {
      if (socket !== ws) {
        return;
      }
      socket = null;
      setEnabled(false);
      setStale(true);
      closed(event);
    };
  }

  function closed(event) {
    if (event.code === 4001) {
      setStatus("This chat was opened again in another tab or window. Reload to use it here.", "info", true);
      return;
    }
    if (event.code === 1001) {
      setStatus(
        "The chat has stopped: whoever runs it closed it. Reload later to see whether it is back.",
        "error",
        true
      );
      return;
    }
    if (event.code === 1000) {
      setStatus("You left the chat. Reload to join again.", "info", true);
      return;
    }
    // Lost connection (Tor circuits come and go): retry with backoff, keeping the name.
    const delay = Math.min(MAX_RETRY_MS, 1000 * 2 ** retries) + Math.random() * 1000;
    retries += 1;
    setStatus(
      "Disconnected. Reconnecting in " + Math.round(delay / 1000) + " s… Messages said " +
        "meanwhile will not be shown.",
      "error"
    );
    retryTimer = setTimeout(connect, delay);
  }

  function send(request) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(request));
      return true;
    }
    line("error", "Not connected; wait a moment.");
    return false;
  }

  sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = text.value;
    if (body.trim() === "") {
      return;
    }
    const size = encoder.encode(body).length;
    if (size > maxBytes) {
      line("error", "A message can be at most " + maxBytes + " bytes long; this one has " + size + ".");
      return;
    }
    if (send({ type: "send", text: body })) {
      lastSent = body;
      text.value = "";
    }
  });

  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !touch) {
      event.preventDefault();
      sendForm.requestSubmit();
    }
  });

  renameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (name !== "" && name !== me) {
      send({ type: "rename", name: name });
    }
  });

  window.addEventListener("online", () => {
    if (!socket && retryTimer !== null) {
      connect();
    }
  });

  app.hidden = false;
  $("nojs-link").hidden = false;
  connect();
})();
