// Shared helpers of every page: the JSON API, server-sent events over POST, DOM building, toasts.
// Everything a model or a person wrote is inserted as text (textContent), never as HTML.

const HEADERS = { "Content-Type": "application/json", "X-Requested-With": "recurrentgpt" };

export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data || {};
  }
}

async function failure(response) {
  let data = {};
  try { data = await response.json(); } catch { /* not JSON */ }
  return new ApiError(data.error || `${response.status} ${response.statusText}`, response.status, data);
}

export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: HEADERS, credentials: "same-origin" };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(path, options);
  if (!response.ok) throw await failure(response);
  return response.json();
}

// POST a JSON body and dispatch the server-sent events of the answer to handlers[event](data).
// Resolves with the data of the final "done" event; rejects with ApiError on "error" or a non-2xx answer.
// With a Generation, its stop() can end the stream early: then it resolves with {stopped: true, closed: true}.
export async function stream(path, body, handlers = {}, generation = null) {
  const signal = generation ? generation.signal : undefined;
  const closed = () => ({ stopped: true, closed: true });
  let response;
  try {
    response = await fetch(path, {
      method: "POST", headers: HEADERS, credentials: "same-origin", body: JSON.stringify(body), signal,
    });
  } catch (e) {
    if (signal && signal.aborted) return closed();
    throw e;
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let result = null;
  let failed = null;
  const dispatch = (block) => {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return;  // a keep-alive comment
    const payload = JSON.parse(data.join("\n"));
    if (event === "start" && generation) generation.job = payload.job;
    if (event === "done") result = payload;
    if (event === "error") failed = new ApiError(payload.error, payload.status || 500, payload);
    if (handlers[event]) handlers[event](payload);
  };
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (!(signal && signal.aborted)) throw e;
      if (failed) throw failed;
      return result || closed();
    }
    const { value, done } = chunk;
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
  if (buffer.trim()) dispatch(buffer);
  if (failed) throw failed;
  if (!result) throw new ApiError("the connection closed before the work finished", 0);
  return result;
}

export function stopJob(job) {
  return api(`/api/jobs/${encodeURIComponent(job)}/stop`, { method: "POST", body: {} }).catch(() => null);
}

// One running generation, and how to stop it. With several server workers the stop call may reach a
// worker that does not run the job (404), so stop() also closes the stream, which stops the job on
// whichever worker runs it: at once if the stop call failed, or after a grace period in which the
// worker that did stop it can send its final event.
export class Generation {
  constructor() {
    this.controller = new AbortController();
    this.job = null;          // set by stream() from the "start" event
    this.stopping = false;
  }

  get signal() { return this.controller.signal; }

  async stop(grace = 2000) {
    if (this.stopping) return;
    this.stopping = true;
    const reached = this.job ? await stopJob(this.job) : null;
    if (!reached) this.controller.abort();
    else setTimeout(() => this.controller.abort(), grace);
  }
}

// h("div", {class: "x", onclick: fn}, "text", child) — strings become text nodes, never HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") for (const [k, v] of Object.entries(value)) el.style.setProperty(k, String(v));  // CSSOM: allowed by the CSP
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let toastTimer = null;
export function toast(message, kind = "info") {
  const box = $("#toast");
  if (!box) return;
  box.textContent = message;
  box.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.className = "toast"; }, kind === "error" ? 9000 : 3500);
}

export function storyIdFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] || "");
}

export function timeAgo(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

export async function showModel(el) {
  try {
    const info = await api("/api/info");
    el.textContent = `${info.model} · ${info.embedder}`;
  } catch { /* optional */ }
}
