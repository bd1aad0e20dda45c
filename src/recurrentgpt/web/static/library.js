// The library page: list, create, open and delete stories.
import { $, api, Generation, h, showModel, stream, timeAgo, toast } from "/static/common.js";

const form = $("#new-story");
let job = null;  // the running Generation

async function load() {
  const stories = await api("/api/stories");
  const list = $("#story-list");
  list.replaceChildren(...stories.map(storyCard));
  $("#empty").hidden = stories.length > 0;
}

function storyCard(s) {
  const open = s.mode === "fiction" ? `/read/${s.id}` : `/write/${s.id}`;
  return h("li", { class: "story-card card", dataset: { id: s.id } },
    h("div", { class: "story-card-main" },
      h("a", { class: "story-title", href: open }, s.title || "Untitled"),
      h("div", { class: "muted small" },
        h("span", { class: `badge mode-${s.mode}` }, s.mode === "fiction" ? "fiction" : "writer"), " ",
        `${s.genre} · ${s.paragraphs} paragraph${s.paragraphs === 1 ? "" : "s"} · ${timeAgo(s.updated_at)}`),
      h("p", { class: "story-topic" }, s.topic)),
    h("div", { class: "story-card-actions" },
      h("a", { class: "button", href: `/write/${s.id}` }, "Write"),
      h("a", { class: "button", href: `/read/${s.id}` }, "Read"),
      h("button", { class: "danger-quiet", title: "Delete this story", onclick: () => remove(s) }, "Delete")));
}

async function remove(s) {
  if (!confirm(`Delete "${s.title}" and all its branches? This cannot be undone.`)) return;
  try {
    await api(`/api/stories/${s.id}`, { method: "DELETE" });
    toast(`Deleted "${s.title}"`);
    await load();
  } catch (e) { toast(e.message, "error"); }
}

form.mode.addEventListener("change", () => { $("#profile").hidden = form.mode.value !== "fiction"; });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = form.elements;
  const settings = {};
  for (const name of ["paragraph_sentences", "opening_paragraphs", "memory_sentences", "top_k", "temperature"]) {
    if (f[name].value !== "") settings[name] = Number(f[name].value);
  }
  const body = {
    genre: f.genre.value, topic: f.topic.value, premise: f.premise.value, outline: f.outline.value,
    mode: f.mode.value, settings,
  };
  if (body.mode === "fiction") body.profile = { name: f.name.value, tone: f.tone.value, avoid: f.avoid.value };
  const live = $("#create-live");
  const status = $("#create-status");
  live.textContent = "";
  live.hidden = false;
  $("#create").disabled = true;
  $("#create-stop").hidden = false;
  status.textContent = "Writing the title, outline and opening…";
  job = new Generation();
  try {
    const done = await stream("/api/stories", body, {
      text: (d) => {  // the opening paragraphs, as they are written (title and outline are not streamed)
        if (!live.textContent) status.textContent = "Writing the opening…";
        live.textContent += d.text;
        live.scrollTop = live.scrollHeight;
      },
      retry: (d) => { if (d.discard) live.textContent = ""; status.textContent = `The answer had the wrong shape; asking again (try ${d.attempt + 1})…`; },
    }, job);
    if (done.stopped || !done.story) { status.textContent = "Stopped."; return; }
    location.href = done.story.mode === "fiction" ? `/read/${done.story.id}` : `/write/${done.story.id}`;
  } catch (e) {
    status.textContent = "";
    toast(e.message, "error");
  } finally {
    job = null;
    $("#create").disabled = false;
    $("#create-stop").hidden = true;
  }
});

$("#create-stop").addEventListener("click", () => { if (job) { job.stop(); $("#create-status").textContent = "Stopping…"; } });

showModel($("#model"));
load().catch((e) => toast(e.message, "error"));
