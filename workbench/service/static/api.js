// Offline API docs: renders /openapi.json as plain HTML (FastAPI's own pages load from a CDN).
"use strict";

(() => {
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  };

  function resolve(schema, spec) {
    if (schema && schema.$ref) {
      const name = schema.$ref.split("/").pop();
      return (spec.components && spec.components.schemas && spec.components.schemas[name]) || schema;
    }
    return schema;
  }

  function schemaBlock(title, schema, spec) {
    const details = el("details");
    details.appendChild(el("summary", title));
    details.appendChild(el("pre", JSON.stringify(resolve(schema, spec), null, 2)));
    return details;
  }

  function render(spec) {
    document.title = spec.info.title + " API";
    document.getElementById("title").textContent = spec.info.title + " API " + spec.info.version;
    document.getElementById("description").textContent = spec.info.description || "";
    const main = document.getElementById("operations");
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const section = el("section");
        section.appendChild(el("h2", method.toUpperCase() + " " + path));
        if (op.summary) section.appendChild(el("p", op.summary));
        if (op.description) section.appendChild(el("p", op.description, "meta"));
        const body = op.requestBody && op.requestBody.content;
        if (body) {
          for (const [type, media] of Object.entries(body)) {
            section.appendChild(schemaBlock("request body (" + type + ")", media.schema, spec));
          }
        }
        const list = el("ul", "", "meta");
        for (const [status, resp] of Object.entries(op.responses || {})) {
          list.appendChild(el("li", status + ": " + (resp.description || "")));
        }
        section.appendChild(list);
        main.appendChild(section);
      }
    }
    document.body.dataset.state = "idle";
  }

  fetch("/openapi.json").then((r) => r.json()).then(render).catch((err) => {
    document.getElementById("operations").textContent = "Could not load /openapi.json: " + err.message;
  });
})();
