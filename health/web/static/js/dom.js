// Small DOM helpers. Data from the API is only ever set as text (textContent, attributes),
// never parsed as HTML: no markup from the network reaches the page.

/** An element: h("div", {class: "x", onclick: f}, child, "text", [more]). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.appendChild(child);
    else element.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace the children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A card: a titled section. */
export function card(title, attrs, ...children) {
  return h("section", { class: "card", ...attrs }, h("h2", {}, title), ...children);
}

/** A table of `rows` (arrays of cells) under `headings`; `empty` when there are none. */
export function table(headings, rows, empty = "Nothing yet.", attrs = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", {}, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))),
  );
}

/** A short form of a hex id: its first 8 digits and an ellipsis (the whole in a tooltip). */
export function shortId(hex) {
  if (!hex) return "—";
  return h("code", { class: "id", title: hex }, `${hex.slice(0, 8)}…`);
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** A time of day (HH:MM) of a time in ms. */
export function timeOf(ms) {
  return TIME.format(new Date(ms));
}

/** A date and time of a time in ms. */
export function dateTimeOf(ms) {
  return ms ? DATE_TIME.format(new Date(ms)) : "—";
}

/** Minutes after midnight as HH:MM. */
export function clockOf(minutes) {
  const hours = Math.floor(minutes / 60);
  return `${String(hours).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/** HH:MM as minutes after midnight, or null. */
export function minutesOf(text) {
  const match = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(text.trim());
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

/** A status badge. */
export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

/** A number with `digits` decimals, or "—". */
export function num(value, digits = 0) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** The first array among `document[key]` for `keys` (or `document` itself if an array). */
export function listOf(document, ...keys) {
  if (Array.isArray(document)) return document;
  for (const key of keys) {
    if (document && Array.isArray(document[key])) return document[key];
  }
  return [];
}

/** Run `refresh` now and every `intervalMs` while the view is shown; the stop function. */
export function every(intervalMs, refresh) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      await refresh();
    } finally {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    }
  };
  timer = setTimeout(tick, intervalMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A button that runs `action` once at a time (disabled meanwhile, its label saying so). */
export function actionButton(label, action, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.textContent = `${label}…`;
    try {
      await action();
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
  return button;
}
