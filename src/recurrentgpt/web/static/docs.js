// A small reader for /openapi.json (the stock Swagger page loads scripts from a CDN and runs inline code).
import { $, h } from "/static/common.js";

function schemaOf(spec, ref) {
  return ref && ref.$ref ? spec.components.schemas[ref.$ref.split("/").pop()] : ref;
}

function typeOf(spec, prop) {
  if (!prop) return "";
  if (prop.$ref) return prop.$ref.split("/").pop();
  if (prop.anyOf) return prop.anyOf.map((p) => typeOf(spec, p)).join(" | ");
  if (prop.enum) return prop.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (prop.type === "array") return `${typeOf(spec, prop.items)}[]`;
  return prop.type || "any";
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  $("#version").textContent = `v${spec.info.version}`;
  const out = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters || []).map((p) =>
        h("li", {}, h("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""}) ${typeOf(spec, p.schema)}`));
      const body = op.requestBody && schemaOf(spec, op.requestBody.content["application/json"].schema);
      const fields = body ? Object.entries(body.properties || {}).map(([name, prop]) =>
        h("li", {}, h("code", {}, name), ` ${typeOf(spec, prop)}`,
          (body.required || []).includes(name) ? " (required)" : "",
          prop.description ? ` — ${prop.description}` : "")) : [];
      out.push(h("section", { class: "endpoint card" },
        h("div", { class: "endpoint-head" },
          h("span", { class: `method ${method}` }, method.toUpperCase()), h("code", {}, path),
          h("span", { class: "muted" }, op.summary || "")),
        params.length ? h("ul", { class: "fields" }, params) : null,
        fields.length ? h("ul", { class: "fields" }, fields) : null));
    }
  }
  $("#endpoints").replaceChildren(...out);
}

main();
