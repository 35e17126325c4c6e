// mcpkeeper dashboard: plain JS, no build step, nothing from elsewhere.
// Every value from the daemon is put in the page with textContent (never as HTML):
// status reasons carry text written by remote servers.
"use strict";

const API = "/api/v1beta";
const DAY = 86400;
const KEY = "mcpkeeper.session";
let session = sessionStorage.getItem(KEY);
let clockSkew = 0; // server seconds minus browser seconds, from each event's "now"
let retryDelay = 1000;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function nowServer() { return Date.now() / 1000 + clockSkew; }

function duration(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 2 * DAY) return Math.round(s / 3600) + " h";
  return Math.round(s / DAY) + " d";
}

function when(epoch) { return new Date(epoch * 1000).toLocaleTimeString(); }

async function api(method, path) {
  const response = await fetch(API + path, { method, headers: { Authorization: "Bearer " + session } });
  if (response.status === 401) { signOut("your session ended; sign in again"); throw new Error("signed out"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function say(text, link) {
  const box = $("message");
  box.replaceChildren(document.createTextNode(text));
  if (link) {
    box.append(" ");
    box.append(el("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "open the login page"));
  }
}

async function act(name, action) {
  try {
    if (action === "login") {
      const login = await api("POST", "/workloads/" + encodeURIComponent(name) + "/login");
      if (login.state === "pending" && login.authorization_url) {
        // Not "noopener": with it window.open returns null, and a blocked tab could not be told apart.
        const opened = window.open(login.authorization_url, "_blank");
        if (opened) opened.opener = null;
        say(opened ? "Log in to " + name + " in the new tab." : "Your browser blocked the new tab:", opened ? null : login.authorization_url);
      } else {
        say("Login of " + name + ": " + login.state + (login.error ? " (" + login.error + ")" : ""));
      }
      return;
    }
    const info = await api("POST", "/workloads/" + encodeURIComponent(name) + "/" + action);
    say(name + ": " + info.status);
  } catch (err) {
    if (err.message !== "signed out") say(name + ": " + action + " failed: " + err.message);
  }
}

function strip(row) {
  const now = row.now;
  const start = now - DAY;
  const box = svg("svg", { class: "strip", viewBox: "0 0 1000 14", preserveAspectRatio: "none", role: "img" });
  const items = row.timeline || [];
  items.forEach((entry, i) => {
    const from = Math.max(entry.at, start);
    const to = i + 1 < items.length ? items[i + 1].at : now;
    if (to <= start) return;
    const x = Math.min(998, ((from - start) / DAY) * 1000);
    // At least 2 of 1000 units wide: a status entered seconds ago still shows at the right end.
    const width = Math.max(2, ((Math.max(to, from) - from) / DAY) * 1000);
    const rect = svg("rect", { x: x, y: 0, width: width, height: 14, class: "s-" + entry.status });
    const title = svg("title", {});
    title.textContent = entry.status + " from " + when(entry.at);
    rect.append(title);
    box.append(rect);
  });
  const axis = el("div", { class: "strip-axis" });
  axis.append(el("span", {}, "24 h ago"), el("span", {}, "now"));
  const wrap = el("div", { class: "timeline" });
  wrap.append(box, axis);
  return wrap;
}

function tokenCell(row) {
  const token = row.token;
  const cell = el("td", { class: "token" });
  if (!token) { cell.textContent = "no authentication"; return cell; }
  const expiry = el("div", { class: "expiry", "data-expires": token.expires_at === null ? "" : token.expires_at });
  cell.append(expiry);
  if (token.consecutive_failures) cell.append(el("div", { class: "reason" }, token.consecutive_failures + " failed refresh(es) in a row"));
  if (token.next_attempt_at && token.state !== "fresh") cell.append(el("div", { class: "reason" }, "next attempt " + when(token.next_attempt_at)));
  return cell;
}

function updateExpiries() {
  for (const node of document.querySelectorAll(".expiry")) {
    const at = node.getAttribute("data-expires");
    if (!at) { node.textContent = "no expiry known"; node.className = "expiry"; continue; }
    const left = Number(at) - nowServer();
    node.textContent = left >= 0 ? "expires in " + duration(left) : "expired " + duration(left) + " ago";
    node.className = "expiry" + (left < 0 ? " expiry-past" : left < 300 ? " expiry-soon" : "");
  }
}

function actionsCell(row) {
  const cell = el("td", { class: "actions" });
  const stopped = row.status === "stopped" || row.status === "error";
  const buttons = stopped ? ["start"] : ["stop", "restart"];
  if (row.token) buttons.push("login");
  for (const action of buttons) {
    const button = el("button", { type: "button", "data-action": action, class: action === "login" && row.status === "unauthenticated" ? "primary" : "" }, action);
    button.addEventListener("click", () => act(row.name, action));
    cell.append(button);
  }
  return cell;
}

// Rows whose data did not change are kept as they are (a button is never swapped under
// the pointer); "now" changes with every event and is left out of the comparison.
const drawn = new Map();

function render(rows) {
  const body = document.querySelector("#workloads tbody");
  const fresh = rows.map((row) => {
    const key = JSON.stringify({ ...row, now: 0 });
    const kept = drawn.get(row.name);
    if (kept && kept.key === key) return kept.tr;
    const tr = draw(row);
    drawn.set(row.name, { key, tr });
    return tr;
  });
  for (const name of [...drawn.keys()]) if (!rows.some((row) => row.name === name)) drawn.delete(name);
  body.replaceChildren(...fresh);
  $("empty").hidden = rows.length > 0;
  updateExpiries();
}

function draw(row) {
    const tr = el("tr", { "data-name": row.name, "data-status": row.status });
    const name = el("td", {});
    name.append(el("div", { class: "name" }, row.name), el("div", { class: "url" }, row.url || ""));
    const status = el("td", {});
    status.append(el("span", { class: "status s-" + row.status }, row.status));
    status.append(el("div", { class: "reason" }, row.status_context));
    const failures = el("td", {});
    const list = el("ul", { class: "failures" });
    for (const f of row.failures || []) list.append(el("li", {}, when(f.at) + " " + f.status + ": " + f.reason));
    failures.append((row.failures || []).length ? list : el("span", { class: "reason" }, "none"));
    const timeline = el("td", {});
    timeline.append(strip(row));
    tr.append(name, status, tokenCell(row), timeline, failures, actionsCell(row));
    return tr;
}

function connection(state, text) {
  const node = $("connection");
  node.setAttribute("data-state", state);
  node.textContent = text;
}

// Server-sent events read with fetch (EventSource cannot send the Authorization header).
async function follow() {
  while (session) {
    try {
      const response = await fetch(API + "/events", { headers: { Authorization: "Bearer " + session, Accept: "text/event-stream" } });
      if (response.status === 401) { signOut("your session ended; sign in again"); return; }
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      connection("live", "live");
      retryDelay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch (err) {
      connection("retrying", "reconnecting…");
    }
    await new Promise((resolve) => setTimeout(resolve, retryDelay));
    retryDelay = Math.min(retryDelay * 2, 30000);
  }
}

function handle(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (name !== "workloads" || !data.length) return;
  const view = JSON.parse(data.join("\n"));
  const rows = view.workloads || [];
  if (rows.length && rows[0].now) clockSkew = rows[0].now - Date.now() / 1000;
  render(rows);
}

async function openSession(payload) {
  const response = await fetch("/ui/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  session = body.session;
  sessionStorage.setItem(KEY, session);
}

function signOut(reason) {
  session = null;
  sessionStorage.removeItem(KEY);
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
  connection("retrying", "signed out");
}

function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  follow();
}

async function main() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await openSession({ token: $("token").value.trim() });
      $("token").value = "";
      start();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (code) {
    history.replaceState(null, "", location.pathname); // the code works once: off the address bar
    try { await openSession({ code }); } catch (err) { signOut(err.message); return; }
  }
  if (session) start(); else signOut("");
  setInterval(updateExpiries, 1000);
}

main();
