// The story bible panel of the writer page: the canon at the head, the entries the next step will use
// (the loom's own selection, from /bible/next), and edits as new versions of the head like the CLI's
// `recurrentgpt bible`. Every text is inserted as text (h() builds DOM nodes), never as HTML.
import { $, api, h, toast } from "/static/common.js";

const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const fold = (name) => name.trim().toLowerCase().replace(/\s+/g, " ");

export class BiblePanel {
  // base: the story's API path; head(): the node shown; busy(): a generation is running;
  // saved(data): the story state after an edit (the page re-renders from it).
  constructor({ base, head, busy, saved }) {
    Object.assign(this, { base, head, busy, saved });
    this.data = { entries: [], proposed: [], kinds: [] };
    this.next = [];          // [{name, why}] for the selected plan
    this.editing = null;     // the name of the entry being edited, "" for a new one, null for none
    this.nextAsked = 0;      // ignore answers to older plans
    $("#bible-add").addEventListener("click", () => this.edit(""));
    $("#bible-accept-all").addEventListener("click", () => this.accept(null));
  }

  async load() {
    const current = this.head();
    if (!current) return;
    try {
      this.data = await api(`${this.base}/bible?${new URLSearchParams({ node: current.id })}`);
    } catch (e) {
      toast(e.message, "error");
    }
    this.render();
  }

  async loadNext(plan) {
    const current = this.head();
    if (!current) return;
    const asked = ++this.nextAsked;
    try {
      const answer = await api(`${this.base}/bible/next?${new URLSearchParams({ plan, node: current.id })}`);
      if (asked !== this.nextAsked || answer.node !== this.head()?.id) return;
      this.next = answer.entries;
    } catch { this.next = []; /* a hint: a failure here must not disturb writing */ }
    this.render();
  }

  render() {
    const { entries } = this.data;
    const why = new Map(this.next.map((n) => [fold(n.name), n.why]));
    const used = entries.filter((e) => why.has(fold(e.name))).length;
    $("#bible-next").textContent = entries.length
      ? `The next step will use ${used} of ${entries.length} entr${entries.length === 1 ? "y" : "ies"} (highlighted) for the selected plan.`
      : "No entries yet. Add the characters, places, objects and rules the story must not contradict.";
    const items = entries.map((e) => this.entry(e, why.get(fold(e.name))));
    if (this.editing === "") items.push(h("li", { class: "bible-entry editing" }, this.form(null)));
    $("#bible").replaceChildren(...items);
    this.renderProposed();
  }

  entry(e, why) {
    if (this.editing !== null && fold(this.editing) === fold(e.name)) {
      return h("li", { class: "bible-entry editing", dataset: { name: e.name } }, this.form(e));
    }
    return h("li", { class: `bible-entry${why ? " next" : ""}`, dataset: { name: e.name } },
      h("div", { class: "bible-head" },
        h("span", { class: "tag quiet bible-kind" }, e.kind),
        h("strong", { class: "bible-name" }, e.name),
        e.pinned ? h("span", { class: "tag bible-pinned", title: "Shown to every step" }, "pinned") : null,
        e.status ? h("span", { class: "tag quiet bible-status" }, e.status) : null),
      e.aliases.length ? h("p", { class: "bible-aliases muted small" }, `also: ${e.aliases.join(", ")}`) : null,
      e.facts.length ? h("ul", { class: "bible-facts" }, e.facts.map((f) => h("li", {}, f))) : null,
      why ? h("p", { class: "bible-why small" }, `next step: ${why}`) : null,
      h("div", { class: "bible-actions" },
        h("button", { class: "link", type: "button", onclick: () => this.edit(e.name) }, "Edit"),
        h("button", { class: "link", type: "button", onclick: () => this.save([{ op: "update", name: e.name, pinned: !e.pinned }],
          e.pinned ? `Unpinned ${e.name}` : `Pinned ${e.name}: every step will see it`) }, e.pinned ? "Unpin" : "Pin"),
        h("button", { class: "link danger-link", type: "button", onclick: () => this.save([{ op: "remove", name: e.name }],
          `Removed ${e.name} from here on (the earlier nodes keep it)`) }, "Remove")));
  }

  // The form for a new entry (e = null) or an existing one; saving sends only what changed.
  form(e) {
    const kinds = this.data.kinds.length ? this.data.kinds : ["character"];
    const name = h("input", { name: "name", "aria-label": "Name", placeholder: "Name", value: e ? e.name : "" });
    const kind = h("select", { name: "kind", "aria-label": "Kind" },
      kinds.map((k) => h("option", { value: k, selected: (e ? e.kind : "character") === k }, k)));
    const aliases = h("textarea", { name: "aliases", rows: 2, "aria-label": "Aliases, one a line", placeholder: "Other names, one a line" });
    aliases.value = e ? e.aliases.join("\n") : "";
    const facts = h("textarea", { name: "facts", rows: 3, "aria-label": "Facts, one a line", placeholder: "Short facts, one a line" });
    facts.value = e ? e.facts.join("\n") : "";
    const status = h("input", { name: "status", "aria-label": "Status", placeholder: "Status: alive, dead, held by …, open …",
      value: e ? e.status : "" });
    const pinned = h("input", { type: "checkbox", name: "pinned", checked: e ? e.pinned : false });
    const problem = h("p", { class: "form-error small", role: "alert", hidden: true });
    const form = h("form", { class: "bible-form", autocomplete: "off" },
      h("div", { class: "row" }, name, kind), aliases, facts, status,
      h("label", { class: "check" }, pinned, " Pinned: shown to every step"),
      problem,
      h("div", { class: "row-actions" },
        h("button", { class: "primary", type: "submit" }, e ? "Save as new version" : "Add entry"),
        h("button", { type: "button", onclick: () => { this.editing = null; this.render(); } }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const wanted = { name: name.value.trim(), kind: kind.value, aliases: lines(aliases.value), facts: lines(facts.value),
        status: status.value.trim(), pinned: pinned.checked };
      let change;
      if (!e) {
        change = { op: "add", ...wanted };
      } else {
        change = { op: "update", name: e.name };
        for (const key of ["kind", "aliases", "facts", "status", "pinned"]) {
          if (!same(wanted[key], e[key])) change[key] = wanted[key];
        }
        if (wanted.name !== e.name) change.rename = wanted.name;
        if (Object.keys(change).length === 2) { this.editing = null; this.render(); return; }  // nothing changed
      }
      const failure = await this.save([change], e ? `Saved ${wanted.name} as a new version of this paragraph`
        : `Added ${wanted.name}`);
      if (failure) { problem.textContent = failure.message; problem.hidden = false; }
    });
    setTimeout(() => name.focus(), 0);
    return form;
  }

  edit(name) {
    if (this.busy()) return;
    this.editing = name;
    this.render();
    $("#bible-panel").scrollIntoView({ block: "nearest" });
  }

  // Open an entry named in a continuity alert (by its name or one of its aliases).
  open(name) {
    const k = fold(name);
    const e = this.data.entries.find((x) => fold(x.name) === k || x.aliases.some((a) => fold(a) === k));
    if (!e) { toast(`There is no entry called ${name} at this point of the story`, "error"); return; }
    this.edit(e.name);
    $("#bible .bible-entry.editing")?.scrollIntoView({ block: "center" });
  }

  renderProposed() {
    const proposed = this.data.proposed || [];
    $("#bible-proposed").hidden = !proposed.length;
    $("#bible-proposals").replaceChildren(...proposed.map((p) => h("li", { class: "bible-proposal", dataset: { name: p.name } },
      h("div", { class: "bible-head" },
        h("span", { class: "tag quiet" }, p.op === "add" ? (p.kind || "new") : p.op),
        h("strong", {}, p.name),
        p.status ? h("span", { class: "tag quiet" }, p.status) : null),
      [...(p.facts || []), ...(p.add_facts || [])].length
        ? h("p", { class: "small" }, [...(p.facts || []), ...(p.add_facts || [])].join(" ")) : null,
      p.reason ? h("p", { class: "muted small" }, `why: ${p.reason}`) : null,
      h("button", { class: "link", type: "button", onclick: () => this.accept([p.name]) }, "Accept"))));
  }

  async accept(names) {
    const current = this.head();
    if (this.busy() || !current) return;
    try {
      const data = await api(`${this.base}/bible/accept`, { method: "POST",
        body: { node: current.id, names, expected_head: current.id } });
      await this.saved(data);
      toast(names ? `Accepted ${names.join(", ")}` : "Accepted the proposed changes");
    } catch (e) { toast(e.message, "error"); }
  }

  // One edit of the bible: a new version of the head. Returns the error (shown in the form) or null.
  async save(changes, message) {
    const current = this.head();
    if (this.busy() || !current) return null;
    try {
      const data = await api(`${this.base}/bible`, { method: "POST",
        body: { changes, node: current.id, expected_head: current.id } });
      this.editing = null;
      await this.saved(data);
      toast(message);
      return null;
    } catch (e) {
      if (this.editing === null) toast(e.message, "error");
      return e;
    }
  }
}
