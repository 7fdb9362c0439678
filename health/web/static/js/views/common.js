// Pieces shared by the views: the glucose panel, receipts, reminders of a plan.

import * as api from "../api.js";
import { glucoseChart, readingsOf } from "../charts.js";
import { actionButton, h, replace } from "../dom.js";

export const HOUR_MS = 3600 * 1000;
export const DAY_MS = 24 * HOUR_MS;
/** How often the decrypted readings are asked for again (each costs the node fetches). */
export const READINGS_REFRESH_MS = 20000;
/** The newest readings of a window drawn at most (a CGM's day is 288). */
export const READINGS_LIMIT = 1000;
const FOLLOW_UP_MS = 1000;
const RECEIPT_WAIT_MS = 60000;
const RECEIPT_POLL_MS = 1000;
const MAX_FOLLOW_UPS = 60;
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
  let receipt;
  try {
    receipt = await api.act(action, fields);
  } catch (error) {
    // The node answers "busy" when the receipt did not come in time: the transaction may
    // still commit, so its receipt is awaited here (through the node's GET /tx/<hash>).
    const pending = error.reason === "busy" && /transaction ([0-9a-f]{64})/.exec(error.message);
    receipt = pending ? await committed(pending[1]) : null;
    if (!receipt) {
      context.toast(`${what}: ${error.message}`, "error");
      return false;
    }
  }
  if (receipt.ok === false) {
    context.toast(`${what}: refused by the chain (${receipt.code}: ${receipt.log})`, "error");
    return false;
  }
  context.toast(receiptText(what, receipt));
  return true;
}

/** The receipt of transaction `hash` once committed (polled), or null after a minute. */
async function committed(hash) {
  const deadline = Date.now() + RECEIPT_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      return await api.get(`/tx/${hash}`);
    } catch (error) {
      if (error.status !== 404) return null;
    }
    await new Promise((resolve) => setTimeout(resolve, RECEIPT_POLL_MS));
  }
  return null;
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
      followUps = 0;
      refresh(true);
    });
    return button;
  });
  let lastKey = "";
  let fetchedAt = 0;
  let followUps = 0;
  async function refresh(force = false) {
    if (!force && Date.now() - fetchedAt < READINGS_REFRESH_MS) return;
    fetchedAt = Date.now();
    const to = Date.now();
    const from = to - windowMs;
    try {
      const document = await api.getDecrypted(
        `/health/patients/${patientId}/readings?from_ms=${from}&to_ms=${to}&limit=${READINGS_LIMIT}`,
      );
      const readings = readingsOf(document);
      const partial = Boolean(document && document.truncated);
      if (partial && followUps < MAX_FOLLOW_UPS) {
        // The node decrypts the newest first within a time budget and keeps what it read:
        // asking again soon brings the rest of the window.
        followUps += 1;
        setTimeout(() => element.isConnected && refresh(true), FOLLOW_UP_MS);
      } else if (!partial) {
        followUps = 0;
      }
      const key = `${windowMs}:${readings.length}:${readings.length ? readings[readings.length - 1][0] : 0}:${partial}`;
      if (key === lastKey) return;
      lastKey = key;
      if (!readings.length && partial) {
        replace(body, h("p", { class: "loading" }, "Decrypting readings…"));
        return;
      }
      replace(
        body,
        glucoseChart(readings, { height, fromMs: from, toMs: to }),
        partial ? h("p", { class: "hint" }, "Decrypting older readings…") : "",
      );
    } catch (error) {
      lastKey = "";
      fetchedAt = 0;
      replace(body, h("p", { class: "error" }, `Readings: ${error.message}`));
    }
  }
  const element = h("div", { class: "glucose" }, h("div", { class: "toolbar" }, buttons), body);
  return { element, refresh };
}

/**
 * `refresh` (which fills `box`), with a failure shown in `box` rather than lost: the
 * message replaces what was there, and the next successful refresh replaces it.
 */
export function shown(box, what, refresh) {
  return async () => {
    try {
      await refresh();
    } catch (error) {
      replace(box, h("p", { class: "error" }, `${what}: ${error.message}`));
    }
  };
}

/** Start of the local day of `ms`. */
export function startOfDay(ms) {
  const date = new Date(ms);
  date.setHours(0, 0, 0, 0);
  return date.getTime();
}

/**
 * The due times of a plan's items in the next `aheadMs` (the plan's time zone offset
 * applied), as {item, kind, due_ms}: what is coming before the chain opens the reminders.
 */
export function upcoming(plan, nowMs, aheadMs = 12 * HOUR_MS) {
  if (!plan || !Array.isArray(plan.items)) return [];
  const offsetMs = (Number(plan.tz_offset_minutes) || 0) * 60000;
  const dayStartUtc = Math.floor((nowMs + offsetMs) / DAY_MS) * DAY_MS - offsetMs;
  const found = [];
  for (const item of plan.items) {
    for (const minutes of item.times_of_day_minutes || []) {
      for (const day of [0, DAY_MS]) {
        const due = dayStartUtc + day + minutes * 60000;
        if (due > nowMs && due <= nowMs + aheadMs) found.push({ item: item.item, kind: item.kind, due_ms: due });
      }
    }
  }
  return found.sort((a, b) => a.due_ms - b.due_ms);
}

/** What a plan item is, in words: "Dose, medication 1", "Glucose check". */
export function itemText(kind, item) {
  return kind === "measurement" ? "Glucose check" : `Dose, medication ${item}`;
}

export { actionButton };
