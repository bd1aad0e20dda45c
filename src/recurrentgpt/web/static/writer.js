// The writer page: the story along the current branch, memory, recall, plans, streaming steps,
// auto mode, regenerate, edits as siblings, the tree of branches, the story bible and continuity alerts.
import { $, api, Generation, h, showModel, storyIdFromPath, stream, toast } from "/static/common.js";
import { BiblePanel } from "/static/bible.js";
import { conflictAlert, isKept, keep, markedText } from "/static/conflicts.js";
import { lineEnd, renderTree, siblingsOf } from "/static/tree.js";

const storyId = storyIdFromPath();
const base = `/api/stories/${encodeURIComponent(storyId)}`;
let state = null;        // {story, path, bookmarks}
let treeData = { rows: [], head_id: null, bookmarks: {} };
let selected = 0;        // index of the chosen candidate plan, or "own"
let job = null;          // the running Generation (busy while set), for the stop button
let recallTimer = null;

const head = () => (state && state.path.length ? state.path[state.path.length - 1] : null);
const bible = new BiblePanel({ base, head, busy: () => job !== null, saved: (data) => refresh(data) });

// -- loading and rendering -----------------------------------------------------------------

async function refresh(data) {
  state = data || await api(base);
  treeData = await api(`${base}/tree`);
  render();
}

function render() {
  const { story } = state;
  document.title = `${story.title} · RecurrentGPT Studio`;
  $("#title").textContent = story.title;
  const current = head();
  $("#story-meta").textContent =
    `${story.genre} · ${state.path.length} paragraph${state.path.length === 1 ? "" : "s"}` +
    (current ? ` · at ${current.id.slice(0, 8)}` : "");
  $("#read-link").href = `/read/${story.id}`;
  for (const link of document.querySelectorAll("#export-menu a[data-fmt]")) {
    link.href = `${base}/export?fmt=${link.dataset.fmt}`;  // the path to the head; the server names the file
  }
  renderStory();
  renderPlans();
  renderMemory();
  bible.load();
  const count = renderTree($("#tree"), treeData, pick);
  $("#tree-count").textContent = `${count} node${count === 1 ? "" : "s"}`;
  scheduleRecall(0);
}

function renderStory() {
  const siblings = siblingsOf(treeData.rows);
  const blocks = [];
  for (const node of state.path) {
    if (node.meta && node.meta.chapter_end) blocks.push(h("h2", { class: "chapter-heading" }, `Chapter ${node.meta.chapter}`));
    blocks.push(paragraphBlock(node, siblings(node)));
  }
  $("#story").replaceChildren(...blocks);
}

function paragraphBlock(node, sibs) {
  const index = sibs.indexOf(node.id);
  const switcher = sibs.length > 1
    ? h("span", { class: "siblings", title: "Alternatives to this paragraph" },
      h("button", { class: "link", type: "button", "aria-label": "Previous alternative", disabled: index <= 0,
        onclick: () => pick(lineEnd(treeData.rows, sibs[index - 1])) }, "‹"),
      h("span", { class: "sibling-count" }, `${index + 1}/${sibs.length}`),
      h("button", { class: "link", type: "button", "aria-label": "Next alternative", disabled: index >= sibs.length - 1,
        onclick: () => pick(lineEnd(treeData.rows, sibs[index + 1])) }, "›"))
    : null;
  const conflicts = (node.meta && node.meta.conflicts) || [];
  const flagged = conflicts.length && !isKept(node.id);
  const text = h("p", { class: "para-text" }, flagged ? markedText(node.paragraph, conflicts) : node.paragraph);
  const alert = flagged ? conflictAlert(conflicts, {
    keep: () => { keep(node.id); block.replaceWith(paragraphBlock(node, sibs)); toast("Kept as written"); },
    regenerate: () => fixConflicts(node),
    open: (name) => bible.open(name),
  }) : null;
  const plan = h("p", { class: "para-plan", hidden: true }, node.plan);
  const block = h("section", { class: `para kind-${node.kind}`, dataset: { id: node.id } },
    h("header", { class: "para-head" },
      h("span", { class: "para-num" }, `¶ ${node.depth + 1}`),
      node.kind === "edit" ? h("span", { class: "tag quiet" }, "edited") : null,
      node.meta && node.meta.before_edit ? h("span", { class: "tag quiet reattached",
        title: "Written before an edit above it, and kept as it was" }, "written before an edit") : null,
      node.meta && node.meta.simulator ? h("span", { class: "tag quiet", title: node.meta.simulator.reason || "" }, "auto") : null,
      switcher,
      h("span", { class: "spacer" }),
      node.plan ? h("button", { class: "link quiet-button", type: "button", title: "The plan that led to this paragraph",
        onclick: () => { plan.hidden = !plan.hidden; } }, "Plan") : null,
      h("button", { class: "link quiet-button edit-button", type: "button", onclick: () => editParagraph(block, node) }, "Edit")),
    plan,
    text,
    alert);
  return block;
}

function editParagraph(block, node) {
  if (job) return;
  const area = h("textarea", { class: "para-editor", rows: Math.min(18, Math.max(4, Math.ceil(node.paragraph.length / 90))),
    "aria-label": "Edit paragraph" });
  area.value = node.paragraph;
  const done = () => block.replaceWith(paragraphBlock(node, siblingsOf(treeData.rows)(node)));
  // above the head, the writer may keep the paragraphs after it under the edit (marked as written before it)
  const keepBelow = node.id === head().id ? null : h("input", { type: "checkbox", class: "keep-below" });
  const save = h("button", { class: "primary", type: "button", onclick: async () => {
    if (area.value.trim() === node.paragraph.trim()) { done(); return; }
    const wasHead = node.id === head().id;
    const reattach = Boolean(keepBelow && keepBelow.checked);
    try {
      const data = await api(`${base}/nodes/${node.id}/edit`, {
        method: "POST", body: { paragraph: area.value, expected_head: head().id, reattach } });
      await refresh(data);
      toast(wasHead ? "Saved as a new version of this paragraph"
        : reattach ? "Saved; the paragraphs after it are kept under the edit, marked as written before it"
        : "Saved as a new branch; the paragraphs after it stay on the previous branch (see Branches)");
    } catch (e) { fail(e); }
  } }, "Save as new version");
  const editor = h("div", { class: "para-edit" }, area,
    h("div", { class: "row-actions" }, save, h("button", { type: "button", onclick: done }, "Cancel"),
      keepBelow ? h("label", { class: "small", title: "Otherwise they stay on the previous branch" }, keepBelow,
        " Keep the paragraphs after it") : null,
      h("span", { class: "muted small" }, "History is kept: the edit becomes a sibling node.")));
  block.querySelector(".para-text").replaceWith(editor);
  block.querySelector(".para-plan")?.remove();
  area.focus();
}

function renderPlans() {
  const current = head();
  const plans = current ? current.plans : [];
  if (selected !== "own" && selected >= plans.length) selected = plans.length ? 0 : "own";
  const cards = plans.map((plan, i) => planCard(i, `Plan ${i + 1}`, plan));
  cards.push(planCard("own", "Your own plan", ""));
  $("#plans").replaceChildren(...cards);
}

function planCard(key, label, text) {
  const area = h("textarea", { rows: 3, "aria-label": label, placeholder: key === "own" ? "Write what should happen next…" : "" });
  area.value = text;
  const radio = h("input", { type: "radio", name: "plan", value: String(key), checked: selected === key });
  const card = h("label", { class: `plan-card${selected === key ? " selected" : ""}`, dataset: { key: String(key) } },
    h("span", { class: "plan-label" }, radio, h("span", {}, label)), area);
  const choose = () => {
    selected = key;
    for (const c of document.querySelectorAll(".plan-card")) c.classList.toggle("selected", c === card);
    radio.checked = true;
    scheduleRecall();
  };
  radio.addEventListener("change", choose);
  area.addEventListener("focus", choose);
  area.addEventListener("input", () => scheduleRecall());
  area.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) writeNext(); });
  return card;
}

function chosenPlan() {
  const card = document.querySelector(`.plan-card[data-key="${selected}"] textarea`);
  return card ? card.value : "";
}

function renderMemory() {
  const current = head();
  const memory = $("#memory");
  memory.value = current ? current.short_memory : "";
  memory.dataset.saved = memory.value;
  $("#save-memory").disabled = true;
  $("#memory-note").textContent = "";
  $("#rationale").textContent = current && current.rationale ? current.rationale : "(the opening: no update yet)";
  const dropped = current && current.meta ? current.meta.synopsis_warning : "";
  $("#synopsis").textContent = current && current.synopsis ? current.synopsis
    : dropped ? `(none: ${dropped})` : "(none yet: `recurrentgpt synopses STORY` writes it)";
  const kept = current && current.meta ? current.meta.memory_kept : null;
  $("#memory-kept").textContent = typeof kept === "number" && kept < 0.3
    ? `This update kept only ${Math.round(kept * 100)}% of the previous memory's words: it was rewritten, not updated.` : "";
  const outline = state && state.state;
  $("#chapter-title").textContent = outline ? `Outline · chapter ${outline.chapter}` : "Outline";
  for (const [id, value] of [["outline-arc", outline ? outline.outline : ""], ["outline-beats", outline ? outline.beats : ""]]) {
    $(`#${id}`).value = value || "";
    $(`#${id}`).dataset.saved = value || "";
  }
  $("#save-outline").disabled = true;
  $("#outline-note").textContent = "";
  const ending = outline && outline.ending;
  $("#outline-ending").hidden = !ending;
  $("#outline-ending").textContent = ending
    ? `Chapter ${ending.chapter} ends here. Chapter ${ending.chapter + 1} will cover: ${ending.beats}` : "";
  const proposal = current && current.meta ? current.meta.chapter_proposal : null;
  $("#chapter-note").hidden = !(ending || proposal);
  $("#chapter-note").textContent = ending
    ? `Chapter ${ending.chapter} ends here: the next paragraph opens chapter ${ending.chapter + 1}.`
    : proposal ? `The model proposes ending the chapter here: ${proposal.reason || "no reason given"}.` : "";
  $("#end-chapter").disabled = job !== null || !current || current.kind === "opening" || Boolean(ending);
  renderPins(current);
  const view = $("#prompt-view");
  view.open = false;
  view.dataset.node = current ? current.id : "";
  for (const id of ["prompt-system", "prompt-user", "prompt-answer", "prompt-note"]) $(`#${id}`).textContent = "";
  $("#prompt-call").replaceChildren();
}

// The head's memory, one sentence a line as the forget gate numbers it, each with a pin toggle.
function renderPins(current) {
  const pinned = new Set((current && current.meta && current.meta.pinned) || []);
  const items = (state.memory_sentences || []).map((sentence) => h("li", { class: pinned.has(sentence) ? "pinned" : "" },
    h("button", { class: "link quiet-button", type: "button", "aria-pressed": pinned.has(sentence) ? "true" : "false",
      title: pinned.has(sentence) ? "Unpin: the model may forget it" : "Pin: never forgotten, by the model or an overflow",
      onclick: () => pin(sentence, pinned.has(sentence)) }, pinned.has(sentence) ? "Unpin" : "Pin"),
    h("span", {}, sentence)));
  $("#pins").replaceChildren(...items);
}

async function pin(sentence, unpin) {
  if (job || !head()) return;
  try {
    await refresh(await api(`${base}/memory/pin`, {
      method: "POST", body: { sentences: [sentence], unpin, expected_head: head().id } }));
    toast(unpin ? "Unpinned" : "Pinned: the model will keep it");
  } catch (e) { fail(e); }
}

async function saveOutline() {
  const current = head();
  const body = { expected_head: current.id };
  for (const [id, key] of [["outline-arc", "outline"], ["outline-beats", "beats"]]) {
    if ($(`#${id}`).value !== $(`#${id}`).dataset.saved) body[key] = $(`#${id}`).value;
  }
  try {
    await refresh(await api(`${base}/outline`, { method: "POST", body }));
    $("#outline-note").textContent = "Saved: the next steps follow it.";
  } catch (e) { fail(e); }
}

async function endChapter() {
  const current = head();
  const done = await run(`${base}/chapter/end`, { node: current.id, expected_head: current.id }, {},
    "Ending the chapter: its summary, the arc and the next chapter's beats…");
  if (done && done.node) {
    await refresh();
    toast(`Chapter ${done.node.meta.ends_chapter.chapter} ends here; the next paragraph opens the next one`);
  }
}

// A node's exact prompts and answers are kilobytes: fetched only when the writer opens the view. Every call that
// shaped the node is listed (the simulator, the chapter end, a rejected draft, both calls of a step …).
async function loadPrompt() {
  const view = $("#prompt-view");
  if (!view.open || !view.dataset.node) return;
  try {
    const calls = await api(`${base}/nodes/${encodeURIComponent(view.dataset.node)}/calls`);
    const select = $("#prompt-call");
    select.replaceChildren(...calls.map((c, i) => h("option", { value: String(i) }, c.name)));
    select.disabled = calls.length < 2;
    const show = () => {
      const c = calls[Number(select.value)];
      $("#prompt-system").textContent = c ? c.system : "(no prompt recorded: written by a person, or by an older version)";
      $("#prompt-user").textContent = c ? c.prompt : "";
      $("#prompt-answer").textContent = c ? c.answer : "";
      $("#prompt-note").textContent = !c ? "" : [
        c.turns_before ? `Continues the same conversation (${c.turns_before} earlier turn${c.turns_before === 1 ? "" : "s"}).` : "",
        c.warning ? `Kept with a warning: ${c.warning}` : ""].filter(Boolean).join(" ");
    };
    select.onchange = show;
    show();
  } catch (e) {
    toast(e.message, true);
  }
}

function scheduleRecall(delay = 350) {
  clearTimeout(recallTimer);
  recallTimer = setTimeout(loadRecall, delay);
}

async function loadRecall() {
  const current = head();
  if (!current) return;
  bible.loadNext(chosenPlan());
  try {
    const query = new URLSearchParams({ plan: chosenPlan(), node: current.id });
    const hits = await api(`${base}/recall?${query}`);
    const list = $("#recall");
    if (!hits.length) {
      list.replaceChildren(h("li", { class: "muted empty" }, "Nothing yet: the story is still short."));
      return;
    }
    list.replaceChildren(...hits.map((r) => h("li", { class: "recall-item" },
      h("div", { class: "recall-head" },
        h("span", { class: "para-num" }, `¶ ${r.depth + 1}`),
        h("span", { class: "score", title: "relevance score" }, r.score.toFixed(3))),
      h("p", {}, r.passage))));  // what the step will see: a long paragraph's best passage
  } catch (e) { /* recall is a hint: a failure here must not disturb writing */ }
}

// -- generation ------------------------------------------------------------------------------

function setBusy(on, label = "Writing…") {
  for (const id of ["write", "regenerate", "auto", "save-memory", "end-chapter", "save-outline"]) {
    $(`#${id}`).disabled = on || id === "save-memory" || id === "save-outline";
  }
  $("#stop").hidden = !on;
  document.body.classList.toggle("busy", on);
  if (on) {
    $("#live").hidden = false;
    $("#live-label").textContent = label;
    $("#live-text").textContent = "";
    $("#live").scrollIntoView({ block: "nearest", behavior: "smooth" });
  } else {
    $("#live").hidden = true;
    $("#progress-box").hidden = true;
    job = null;
  }
  if (!on) $("#save-memory").disabled = $("#memory").value === $("#memory").dataset.saved;
}

const liveHandlers = {
  text: (d) => { $("#live-text").textContent += d.text; },
  retry: (d) => {
    if (d.discard) $("#live-text").textContent = "";  // a try that streamed nothing leaves the kept paragraph
    $("#live-label").textContent = `The answer had the wrong shape; asking again (try ${d.attempt + 1})…`;
  },
};

async function run(path, body, handlers, label) {
  if (job !== null || !head()) return null;
  hideAlert();
  setBusy(true, label);
  job = new Generation();
  try {
    return await stream(path, body, { ...liveHandlers, ...handlers }, job);
  } catch (e) {
    fail(e);
    return null;
  } finally {
    setBusy(false);
  }
}

async function writeNext() {
  const plan = chosenPlan();
  if (!plan.trim()) { fail(new Error("The plan is empty: choose a candidate plan or write your own.")); return; }
  const done = await run(`${base}/step`, { plan, expected_head: head().id }, {}, `¶ ${head().depth + 2} · writing…`);
  if (done) {
    selected = 0;
    await refresh();
    if (done.stopped) toast("Stopped; nothing was saved for the unfinished paragraph");
  }
}

async function regenerateLast() {
  const current = head();
  if (!current.parent_id) { fail(new Error("The first paragraph has no parent to regenerate from.")); return; }
  const done = await run(`${base}/regenerate`, { node: current.id, n: 1, expected_head: current.id }, {},
    `¶ ${current.depth + 1} · writing an alternative…`);
  if (done && done.stopped && !done.node) toast("Stopped before the alternative was finished");
  if (done && done.node) {
    const data = await api(`${base}/checkout`, { method: "POST", body: { node: done.node.id } });
    await refresh(data);
    toast("Alternative written; ‹ › above the paragraph switches between versions");
  }
}

// Write a flagged paragraph again, told what it contradicted (the CLI's `regenerate --fix-conflicts`).
async function fixConflicts(node) {
  const done = await run(`${base}/regenerate`, { node: node.id, n: 1, fix_conflicts: true, expected_head: head().id }, {},
    `¶ ${node.depth + 1} · writing it again, told what it contradicted…`);
  if (done && done.stopped && !done.node) toast("Stopped before the new version was finished");
  if (done && done.node) {
    await refresh(await api(`${base}/checkout`, { method: "POST", body: { node: done.node.id } }));
    toast(done.node.meta.conflicts ? "Written again; the check still flags it (see the alert)"
      : "Written again; the check flags nothing. ‹ › above it switches between versions");
  }
}

async function autoRun() {
  const steps = Math.max(1, Math.min(100, Number($("#auto-steps").value) || 1));
  $("#progress-box").hidden = false;
  $("#progress").max = steps;
  $("#progress").value = 0;
  $("#progress-text").textContent = `0 of ${steps} · the simulator is choosing a plan…`;
  let written = 0;
  const done = await run(`${base}/auto`, { steps, expected_head: head().id }, {
    choice: (d) => {
      $("#progress-box").hidden = false;
      $("#progress-text").textContent = `${d.step - 1} of ${d.of} · writing with plan ${d.index + 1}: ${d.plan}`;
      $("#live-label").textContent = `¶ ${head().depth + d.step + 1} · auto, step ${d.step} of ${d.of}`;
      $("#live-text").textContent = "";
    },
    node: (d) => {
      written = d.step;
      $("#progress").value = d.step;
      $("#progress-text").textContent = `${d.step} of ${d.of} written`;
      $("#story").append(paragraphBlock(d.node, [d.node.id]));
      $("#live-text").textContent = "";
      $("#live").scrollIntoView({ block: "nearest" });
    },
  }, "Auto · the simulator is choosing…");
  await refresh();
  if (done) toast(done.stopped ? `Stopped after ${done.written ?? written} paragraph(s)` : `Auto mode wrote ${done.written} paragraph(s)`);
}

// -- edits and navigation ------------------------------------------------------------------

async function saveMemory() {
  const current = head();
  try {
    const data = await api(`${base}/nodes/${current.id}/edit`, {
      method: "POST", body: { short_memory: $("#memory").value, expected_head: current.id } });
    await refresh(data);
    $("#memory-note").textContent = "Saved: the next step will use it.";
  } catch (e) { fail(e); }
}

async function pick(nodeId) {
  if (nodeId === null) { renderTree($("#tree"), treeData, pick); return; }  // unfolded a run
  if (job || (head() && nodeId === head().id)) return;
  try {
    await refresh(await api(`${base}/checkout`, { method: "POST", body: { node: nodeId } }));
  } catch (e) { fail(e); }
}

function fail(e) {
  const text = e.status === 409 ? `${e.message}` : e.message;
  $("#alert-text").textContent = text;
  $("#alert").hidden = false;
  $("#alert").className = `alert ${e.status === 409 ? "warn" : "error"}`;
  if (e.status === 409) refresh().catch(() => {});
}

function hideAlert() { $("#alert").hidden = true; }

$("#write").addEventListener("click", writeNext);
$("#regenerate").addEventListener("click", regenerateLast);
$("#auto").addEventListener("click", autoRun);
$("#stop").addEventListener("click", () => { if (job) { job.stop(); $("#live-label").textContent = "Stopping…"; } });
$("#save-memory").addEventListener("click", saveMemory);
$("#save-outline").addEventListener("click", saveOutline);
$("#end-chapter").addEventListener("click", endChapter);
for (const id of ["outline-arc", "outline-beats"]) {
  $(`#${id}`).addEventListener("input", () => {
    const changed = ["outline-arc", "outline-beats"].some((i) => $(`#${i}`).value !== $(`#${i}`).dataset.saved);
    $("#save-outline").disabled = job !== null || !changed;
    $("#outline-note").textContent = changed ? "Unsaved changes" : "";
  });
}
$("#prompt-view").addEventListener("toggle", loadPrompt);
$("#alert-close").addEventListener("click", hideAlert);
$("#memory").addEventListener("input", (e) => {
  $("#save-memory").disabled = job !== null || e.target.value === e.target.dataset.saved;
  $("#memory-note").textContent = e.target.value === e.target.dataset.saved ? "" : "Unsaved changes";
});
$("#bookmark-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = e.target.elements.name.value.trim();
  if (!name || !head()) return;
  try {
    await api(`${base}/bookmarks`, { method: "POST", body: { name, node: head().id } });
    e.target.reset();
    await refresh(state);
    toast(`Bookmarked "${name}"`);
  } catch (err) { fail(err); }
});

showModel($("#model"));
refresh().catch((e) => {
  $("#title").textContent = e.status === 404 ? "Story not found" : "Could not load the story";
  fail(e);
});
