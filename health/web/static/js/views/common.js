// Pieces shared by the views: the glucose panel, receipts, reminders of a plan.

import * as api from "../api.js";
import { glucoseChart, readingsOf } from "../charts.js";
import { actionButton, h, replace } from "../dom.js";

export const HOUR_MS = 3600 * 1000;
export const DAY_MS = 24 * HOUR_MS;
export const WINDOWS = [
  { label: "24 h", ms: DAY_MS },
  { label: "7 days", ms: 7 * DAY_MS },
  { label: "14 days", ms: 14 * DAY_MS },
];

/** A sentence for a committed action's receipt. */
export function receiptText(what, receipt) {
  const height = receipt && (receipt.height ?? (receipt.receipt && receipt.receipt.height));
  return height ? `${what} — committed at height ${height}` : `${what} — done`;
}

/** Run a contract action and tell the user how it went; true when it was committed. */
export async function perform(context, what, action, fields) {
  try {
    const receipt = await api.act(action, fields);
    context.toast(receiptText(what, receipt));
    return true;
  } catch (error) {
    context.toast(`${what}: ${error.message}`, "error");
    return false;
  }
}

/**
 * A glucose panel for `patientId`: window buttons and the chart of the readings this
 * session may read (decrypted by the node). `onStats` gets nothing: the caller refreshes
 * its own statistics. Returns {element, refresh}.
 */
export function glucosePanel(patientId, { window: initial = DAY_MS, height = 260 } = {}) {
  let windowMs = initial;
  const body = h("div", { class: "glucose-body" }, h("p", { class: "loading" }, "Loading readings…"));
  const buttons = WINDOWS.map((choice) => {
    const button = h("button", {
      type: "button",
      class: `small toggle${choice.ms === windowMs ? " active" : ""}`,
      "data-window": choice.label,
    }, choice.label);
    button.addEventListener("click", () => {
      windowMs = choice.ms;
      buttons.forEach((other) => other.classList.toggle("active", other === button));
      refresh();
    });
    return button;
  });
  let lastKey = "";
  async function refresh() {
    const to = Date.now();
    const from = to - windowMs;
    try {
      const document = await api.get(
        `/health/patients/${patientId}/readings?from_ms=${from}&to_ms=${to}`,
      );
      const readings = readingsOf(document);
      const key = `${windowMs}:${readings.length}:${readings.length ? readings[readings.length - 1][0] : 0}`;
      if (key === lastKey) return;
      lastKey = key;
      replace(body, glucoseChart(readings, { height }));
    } catch (error) {
      lastKey = "";
      replace(body, h("p", { class: "error" }, `Readings: ${error.message}`));
    }
  }
  const element = h("div", { class: "glucose" }, h("div", { class: "toolbar" }, buttons), body);
  return { element, refresh };
}

/** Start of the local day of `ms`. */
export function startOfDay(ms) {
  const date = new Date(ms);
  date.setHours(0, 0, 0, 0);
  return date.getTime();
}

/**
 * The due times left today of a plan's items (the plan's time zone offset applied), as
 * {item, kind, due_ms}: what is coming before the chain opens the reminders.
 */
export function upcomingToday(plan, nowMs) {
  if (!plan || !Array.isArray(plan.items)) return [];
  const offsetMs = (Number(plan.tz_offset_minutes) || 0) * 60000;
  const localNow = nowMs + offsetMs;
  const dayStartUtc = Math.floor(localNow / DAY_MS) * DAY_MS - offsetMs;
  const upcoming = [];
  for (const item of plan.items) {
    for (const minutes of item.times_of_day_minutes || []) {
      const due = dayStartUtc + minutes * 60000;
      if (due > nowMs && due < dayStartUtc + DAY_MS) {
        upcoming.push({ item: item.item, kind: item.kind, due_ms: due });
      }
    }
  }
  return upcoming.sort((a, b) => a.due_ms - b.due_ms);
}

/** A "kind of item" text: "Dose (item 1)", "Glucose measurement". */
export function itemText(kind, item) {
  return kind === "measurement" ? `Glucose measurement (item ${item})` : `Dose of medication ${item}`;
}

export { actionButton };
