// The practitioner's view: the patients who consented, referrals in and out, and for the
// chosen patient the glucose chart with the target band, the time-in-range bar, alerts,
// adherence and the care plan (edited here: a new version is a care.set_plan).

import * as api from "../api.js";
import { timeInRangeBar } from "../charts.js";
import {
  actionButton, badge, card, clockOf, dateTimeOf, every, h, listOf, minutesOf, num, replace, table,
} from "../dom.js";
import { DAY_MS, glucosePanel, itemText, perform, shown } from "./common.js";

const REFRESH_MS = 5000;
const READINGS_REFRESH_MS = 20000;
const STATS_WINDOW_MS = 14 * 24 * 3600 * 1000;
const FOLLOW_UP_MS = 1500;
const MAX_FOLLOW_UPS = 40;
const MAX_ITEMS = 16;
const MAX_TIMES = 12;
const ALERT_TEXT = {
  hypo_2: "very low (<54)",
  hypo_1: "low (54–69)",
  hyper_1: "high (181–250)",
  hyper_2: "very high (>250)",
};

export async function render(main, context) {
  const me = context.me;
  const patientsBox = h("div", { id: "patients" });
  const referralsBox = h("div", { id: "referrals" });
  const detail = h("div", { id: "patient-detail" });
  let selected = null;
  let stopDetail = null;

  async function refreshPatients() {
    const document = await api.get(`/health/practitioners/${me.id}/patients`);
    const patients = listOf(document, "patients");
    if (!selected && patients.length) select(patientIdOf(patients[0]));
    replace(
      patientsBox,
      patients.length
        ? h("ul", { class: "patient-list" }, patients.map((entry) => {
            const id = patientIdOf(entry);
            return h("li", {},
              h("button", {
                type: "button",
                class: `link${id === selected ? " active" : ""}`,
                "data-patient": id,
                onclick: () => select(id),
              }, api.nameTag(id)),
              entry.expires_ms ? h("small", {}, ` until ${dateTimeOf(entry.expires_ms)}`) : "");
          }))
        : h("p", { class: "empty" }, "No patient has consented to you yet."),
    );
  }

  async function refreshReferrals() {
    const document = await api.get(`/health/practitioners/${me.id}/referrals`);
    const incoming = listOf(document, "incoming", "in");
    const outgoing = listOf(document, "outgoing", "out");
    const row = (referral, other) => [
      api.nameTag(referral.patient),
      api.nameTag(other),
      referral.specialty || "—",
      badge(referral.status),
      dateTimeOf(referral.created_ms),
    ];
    replace(
      referralsBox,
      h("h3", {}, "In"),
      table(["Patient", "From", "Specialty", "Status", "Made"],
        incoming.map((r) => row(r, r.from_practitioner)), "No referrals to you."),
      h("h3", {}, "Out"),
      table(["Patient", "To", "Specialty", "Status", "Made"],
        outgoing.map((r) => row(r, r.to)), "No referrals from you."),
    );
  }

  function select(patientId) {
    if (stopDetail) stopDetail();
    selected = patientId;
    patientsBox.querySelectorAll("button[data-patient]").forEach((button) =>
      button.classList.toggle("active", button.dataset.patient === patientId));
    stopDetail = renderPatient(detail, context, patientId);
  }

  replace(
    main,
    h("h1", {}, "Patients"),
    h("div", { class: "grid sidebar" },
      h("div", {},
        card("Patients who consented", { id: "patients-card" }, patientsBox),
        card("Referrals", { id: "referrals-card" }, referralsBox)),
      detail),
  );
  const refreshAll = () =>
    Promise.allSettled([
      shown(patientsBox, "Patients", refreshPatients)(),
      shown(referralsBox, "Referrals", refreshReferrals)(),
    ]);
  await refreshAll();
  if (!selected) replace(detail, card("Patient", {}, h("p", { class: "empty" }, "Choose a patient.")));
  const stop = every(REFRESH_MS * 2, refreshAll);
  return () => {
    stop();
    if (stopDetail) stopDetail();
  };
}

function patientIdOf(entry) {
  return typeof entry === "string" ? entry : entry.patient || entry.id;
}

/** The chosen patient's panels; the stop function of their refresh. */
function renderPatient(box, context, patientId) {
  const base = `/health/patients/${patientId}`;
  const glucose = glucosePanel(patientId, { window: DAY_MS });
  const tir = h("div", { id: "tir" });
  const stats = h("div", { id: "stats" });
  const alerts = h("div", { id: "alerts" });
  const adherence = h("div", { id: "adherence" });
  const plan = h("div", { id: "plan" });
  let planVersion = null;

  let statsAt = 0;
  let statsFollowUps = 0;
  async function refreshStats() {
    if (Date.now() - statsAt < READINGS_REFRESH_MS) return;
    statsAt = Date.now();
    try {
      const to = Date.now();
      const document = await api.getDecrypted(`${base}/glucose-stats?from_ms=${to - STATS_WINDOW_MS}&to_ms=${to}`);
      const figures = document.stats ? { ...document.stats, readings: document.readings } : null;
      if (document.truncated && statsFollowUps < MAX_FOLLOW_UPS) {
        statsFollowUps += 1;
        statsAt = 0;
        setTimeout(() => box.isConnected && refreshStats(), FOLLOW_UP_MS);
      }
      replace(tir, timeInRangeBar(figures));
      replace(stats, figures ? h("dl", { class: "figures" },
        h("dt", {}, "Readings"), h("dd", {}, String(figures.readings)),
        h("dt", {}, "Mean"), h("dd", {}, `${num(figures.mean_mg_dl)} mg/dL`),
        h("dt", {}, "GMI"), h("dd", {}, `${num(figures.gmi_pct, 1)} %`),
        h("dt", {}, "CV"), h("dd", {}, `${num(figures.cv_pct, 1)} %`)) : "",
        document.truncated ? h("p", { class: "hint" }, "Partial: the node is still decrypting older readings.") : "");
      const list = listOf(document, "alerts").slice(-20).reverse();
      replace(alerts, table(["When", "Level", "mg/dL"], list.map((alert) => [
        dateTimeOf(alert.time_ms ?? alert.data_time_ms),
        badge(ALERT_TEXT[alert.level] || alert.level, alert.level),
        num(alert.mg_dl ?? alert.value),
      ]), "No alerts."));
    } catch (error) {
      statsAt = 0;
      replace(tir, h("p", { class: "error" }, `Statistics: ${error.message}`));
    }
  }

  async function refreshAdherence() {
    const document = await api.get(`${base}/adherence`);
    const rows = listOf(document, "items", "adherence").map((entry) => {
      const rate = entry.due ? (100 * entry.done) / entry.due : null;
      return [itemText(entry.kind, entry.item), String(entry.due), String(entry.done), String(entry.missed),
        rate === null ? "—" : `${num(rate)} %`];
    });
    replace(adherence, table(["Item", "Due", "Taken", "Missed", "Adherence"], rows, "No reminder has come due."));
  }

  async function refreshPlan(force = false) {
    let document = null;
    try {
      document = await api.get(`${base}/plan`);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    const current = document && document.plan;
    const version = current && current.version ? current.version : 0;
    if (!force && version === planVersion) return;
    planVersion = version;
    replace(plan, planEditor(context, patientId, current, () => refreshPlan(true)));
  }

  replace(
    box,
    h("div", { class: "patient-head" }, h("h2", {}, api.nameTag(patientId))),
    h("div", { class: "grid two" },
      card("Glucose", { id: "practitioner-glucose", class: "card wide" }, glucose.element),
      card("Time in range, last 14 days", { id: "tir-card" }, tir, stats),
      card("Alerts", { id: "alerts-card" }, alerts),
      card("Adherence", { id: "adherence-card" }, adherence),
      card("Care plan", { id: "plan-card" }, plan)),
  );
  // The chain's state and the decrypted readings refresh on separate loops: a slow
  // decryption never holds up the plan or adherence.
  const refreshChain = () =>
    Promise.allSettled([
      shown(adherence, "Adherence", refreshAdherence)(),
      refreshPlan().catch((error) => {
        if (planVersion === null) replace(plan, h("p", { class: "error" }, `Care plan: ${error.message}`));
      }),
    ]);
  const refreshDecrypted = () => Promise.allSettled([glucose.refresh(), refreshStats()]);
  refreshChain();
  refreshDecrypted();
  const stops = [every(REFRESH_MS, refreshChain), every(REFRESH_MS, refreshDecrypted)];
  return () => stops.forEach((stop) => stop());
}

/** The plan's schedule as an editable form; saving sets the next version. */
function planEditor(context, patientId, plan, onSaved) {
  const rows = h("tbody", {});
  const addRow = (item) => {
    if (rows.children.length >= MAX_ITEMS) return;
    const kind = h("select", { class: "plan-kind" },
      ["dose", "measurement"].map((value) => h("option", { value, selected: item.kind === value }, value)));
    const times = h("input", {
      class: "plan-times",
      value: (item.times_of_day_minutes || []).map(clockOf).join(", "),
      placeholder: "08:00, 20:00",
      size: 18,
    });
    const remove = h("button", { type: "button", class: "small secondary", onclick: () => row.remove() }, "Remove");
    const row = h("tr", { "data-item": item.item }, h("td", {}, String(item.item)), h("td", {}, kind), h("td", {}, times), h("td", {}, remove));
    rows.appendChild(row);
  };
  for (const item of (plan && plan.items) || []) addRow(item);
  const nextItem = () => 1 + Math.max(0, ...[...rows.children].map((row) => Number(row.dataset.item)));
  const add = h("button", { type: "button", class: "small secondary", id: "plan-add" }, "Add item");
  add.addEventListener("click", () => addRow({ item: nextItem(), kind: "dose", times_of_day_minutes: [] }));
  const error = h("p", { class: "error", hidden: true });
  const save = actionButton("Save plan", async () => {
    error.hidden = true;
    const items = [];
    for (const row of rows.children) {
      const minutes = row.querySelector(".plan-times").value.split(",").map((text) => text.trim()).filter(Boolean).map(minutesOf);
      if (!minutes.length || minutes.includes(null) || minutes.length > MAX_TIMES) {
        error.textContent = `Item ${row.dataset.item}: 1–${MAX_TIMES} times as HH:MM, comma-separated.`;
        error.hidden = false;
        return;
      }
      const sorted = [...new Set(minutes)].sort((a, b) => a - b);
      items.push({ item: Number(row.dataset.item), kind: row.querySelector(".plan-kind").value, times_of_day_minutes: sorted });
    }
    const fields = {
      patient: patientId,
      base_version: (plan && plan.version) || 0,
      tz_offset_minutes: plan ? plan.tz_offset_minutes : -new Date().getTimezoneOffset(),
      items,
    };
    if (await perform(context, "Care plan saved", "set_plan", fields)) await onSaved();
  }, { id: "plan-save" });
  return h("div", { class: "plan-editor" },
    plan && plan.version
      ? h("p", { class: "hint" }, `Version ${plan.version}, by `, api.nameTag(plan.practitioner), `, ${dateTimeOf(plan.updated_ms)}`)
      : h("p", { class: "hint" }, "No plan yet."),
    h("table", { class: "plan-table" },
      h("thead", {}, h("tr", {}, ["Item", "Kind", "Times of day", ""].map((text) => h("th", {}, text)))),
      rows),
    h("div", { class: "toolbar" }, add, save),
    error,
    h("p", { class: "hint" }, "Times are in the patient's time zone. Doses and medication names stay in the encrypted plan record."),
  );
}
