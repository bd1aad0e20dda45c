// The interactive-fiction reader: the latest scene, the reader's possible actions as buttons,
// a free-text action, streaming text, "the story so far" and undo. No memory panels: the reader
// should be inside the story, not looking at its machinery.
import { $, api, Generation, h, storyIdFromPath, stream, toast } from "/static/common.js";

const storyId = storyIdFromPath();
const base = `/api/stories/${encodeURIComponent(storyId)}`;
let state = null;
let job = null;  // the running Generation

const head = () => state.path[state.path.length - 1];

async function refresh(data) {
  state = data || await api(base);
  render();
}

function render() {
  const { story, path } = state;
  document.title = `${story.title} · RecurrentGPT Studio`;
  $("#title").textContent = story.title;
  const who = story.profile && story.profile.name ? ` · you are ${story.profile.name}` : "";
  $("#subtitle").textContent = `${story.genre}${who}`;
  $("#write-link").href = `/write/${story.id}`;
  // the scene: the last paragraph, or the whole opening while the reader has not chosen yet
  const current = head();
  const openingOnly = path.every((n) => n.kind === "opening");
  const scene = openingOnly ? path : [current];
  const earlier = path.slice(0, path.length - scene.length);
  $("#so-far").hidden = earlier.length === 0;
  $("#so-far-label").textContent = `The story so far (${earlier.length} paragraph${earlier.length === 1 ? "" : "s"})`;
  $("#earlier").replaceChildren(...earlier.map((n) => h("p", { class: "para-text" }, n.paragraph)));
  $("#last-choice").hidden = openingOnly || !current.plan;
  $("#last-choice").textContent = current.plan ? `You: ${current.plan}` : "";
  $("#scene").replaceChildren(...scene.map((n) => h("p", { class: "para-text" }, n.paragraph)));
  $("#choices").replaceChildren(...current.plans.map((plan, i) =>
    h("button", { class: "choice", type: "button", dataset: { index: i }, onclick: () => act(plan) }, plan)));
  $("#undo").disabled = openingOnly || !current.parent_id;
}

function setBusy(on) {
  for (const el of document.querySelectorAll(".choice, #action-form button, #action-form input, #undo")) el.disabled = on;
  $("#stop").hidden = !on;
  $("#live").hidden = !on;
  $("#status").textContent = on ? "The story continues…" : "";
  if (on) $("#live-text").textContent = "";
  else { job = null; if (state) render(); }
}

async function act(plan) {
  if (job !== null || !plan.trim()) return;
  $("#alert").hidden = true;
  setBusy(true);
  job = new Generation();
  $("#live").scrollIntoView({ block: "nearest", behavior: "smooth" });
  try {
    const done = await stream(`${base}/step`, { plan, expected_head: head().id }, {
      text: (d) => { $("#live-text").textContent += d.text; },
      retry: (d) => { if (d.discard) $("#live-text").textContent = ""; },
    }, job);
    if (done.stopped) toast("Stopped: choose again");
    else $("#action-form").reset();
    state = await api(base);
  } catch (e) {
    $("#alert-text").textContent = e.message;
    $("#alert").className = `alert ${e.status === 409 ? "warn" : "error"}`;
    $("#alert").hidden = false;
    if (e.status === 409) state = await api(base);
  } finally {
    setBusy(false);
  }
}

async function undo() {
  const current = head();
  if (!current.parent_id || job !== null) return;
  try {
    await refresh(await api(`${base}/undo`, { method: "POST", body: {} }));
    toast("Undone: choose again");
  } catch (e) { toast(e.message, "error"); }
}

$("#action-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act(e.target.elements.action.value);
});
$("#undo").addEventListener("click", undo);
$("#stop").addEventListener("click", () => { if (job) { job.stop(); $("#status").textContent = "Stopping…"; } });
$("#alert-close").addEventListener("click", () => { $("#alert").hidden = true; });

refresh().catch((e) => {
  $("#title").textContent = e.status === 404 ? "Story not found" : "Could not load the story";
  $("#subtitle").textContent = e.message;
  for (const el of document.querySelectorAll("#choices, #action-form, .reader-tools")) el.hidden = true;
});
