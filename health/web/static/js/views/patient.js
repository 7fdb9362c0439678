// The patient's view: my glucose chart with the target band, today's reminders with
// "taken" buttons, who holds my consent (grant, revoke), and who read what (the audit log).

import * as api from "../api.js";
import { actionButton, badge, card, dateTimeOf, every, h, listOf, replace, table, timeOf } from "../dom.js";
import { DAY_MS, glucosePanel, itemText, perform, shown, startOfDay, upcoming } from "./common.js";

const REFRESH_MS = 3000;
const MAX_AUDIT_ROWS = 50;
const AUDIT_LIMIT = 500;

export async function render(main, context) {
  const me = context.me;
  const base = `/health/patients/${me.id}`;
  const glucose = glucosePanel(me.id, { window: DAY_MS });
  const reminders = h("div", { id: "reminders" });
  const grants = h("div", { id: "grants" });
  const audit = h("div", { id: "audit" });
  const grantForm = h("div", { id: "grant-form" });

  async function refreshReminders() {
    const dayStart = startOfDay(Date.now());
    const [document, plan] = await Promise.all([
      api.get(`${base}/reminders?from_ms=${dayStart}`),
      api.get(`${base}/plan`).catch(() => null),
    ]);
    const opened = listOf(document, "reminders", "items");
    const seen = new Set(opened.map((reminder) => `${reminder.item}:${reminder.due_ms}`));
    const planDocument = plan && plan.plan;
    const coming = upcoming(planDocument, Date.now()).filter(
      (next) => !seen.has(`${next.item}:${next.due_ms}`),
    );
    const rows = [
      ...opened.map((reminder) => [
        timeOf(reminder.due_ms),
        itemText(reminder.kind, reminder.item),
        badge(reminder.status),
        reminder.status === "open"
          ? actionButton("Taken", async () => {
              if (await perform(context, "Marked as taken", "ack", { item: reminder.item, due_ms: reminder.due_ms })) {
                await refreshReminders();
              }
            }, { class: "small", "data-ack": `${reminder.item}:${reminder.due_ms}` })
          : h("span", { "data-reminder": `${reminder.item}:${reminder.due_ms}`, "data-status": reminder.status }),
      ]),
      ...coming.map((next) => [
        next.due_ms >= dayStart + DAY_MS ? `tomorrow ${timeOf(next.due_ms)}` : timeOf(next.due_ms),
        itemText(next.kind, next.item),
        badge("upcoming"),
        h("span", { "data-upcoming": `${next.item}:${next.due_ms}` }),
      ]),
    ];
    const version = planDocument && planDocument.version;
    replace(
      reminders,
      version ? h("p", { class: "hint" }, `Care plan version ${version}, updated ${dateTimeOf(planDocument.updated_ms)}`) : "",
      table(["Due", "What", "Status", ""], rows, "No reminders today and none in the next 12 hours.", { class: "reminders" }),
    );
  }

  async function refreshGrants() {
    const document = await api.get(`${base}/grants`);
    const rows = listOf(document, "grants").map((grant) => {
      const provision = grant.provision || {};
      const grantee = grant.grantee || (provision.actor && provision.actor[0] && provision.actor[0].reference);
      const period = provision.period || {};
      const state = grant.state || grant.status;
      return [
        api.nameTag(grantee),
        (provision.purpose || [grant.purpose]).join(", "),
        (provision.class || []).join(", ") || "all data",
        dateTimeOf(period.end || grant.expires_ms),
        badge(state),
        state === "active"
          ? actionButton("Revoke", async () => {
              if (await perform(context, "Consent revoked", "revoke", { grant: grant.id })) {
                await refreshGrants();
              }
            }, { class: "small danger", "data-revoke": grant.id })
          : "",
      ];
    });
    replace(grants, table(["Who", "Purpose", "Scope", "Until", "State", ""], rows, "Nobody holds a consent."));
  }

  async function refreshAudit() {
    const document = await api.get(`${base}/audit?limit=${AUDIT_LIMIT}`);
    const all = listOf(document, "entries", "audit");
    const own = all.filter((entry) => entry.reader === me.id);
    const groups = groupReads(all.filter((entry) => entry.reader !== me.id)).slice(-MAX_AUDIT_ROWS).reverse();
    const rows = groups.map((group) => [
      dateTimeOf(group.first.accessed_ms),
      api.nameTag(group.first.reader),
      h("span", { title: group.records.slice(0, 12).join("\n") },
        group.records.length === 1 ? h("code", {}, `${group.records[0].slice(0, 8)}…`) : `${group.records.length} records`),
      group.first.basis,
      group.first.served ? badge("served", "done") : badge("refused", "missed"),
    ]);
    replace(
      audit,
      table(["When", "Who", "Record", "Basis", ""], rows, "Nobody else has read your records."),
      own.length
        ? h("p", { class: "hint" }, `And ${own.length} reads by you, the latest ${dateTimeOf(own[own.length - 1].accessed_ms)}.`)
        : "",
      document && document.truncated ? h("p", { class: "hint" }, "Older entries are not shown.") : "",
    );
  }

  await renderGrantForm(grantForm, context, refreshGrants);

  replace(
    main,
    h("h1", {}, "My health"),
    h("div", { class: "grid two" },
      card("Glucose", { id: "glucose-card", class: "card wide" }, glucose.element),
      card("Today's reminders", { id: "reminders-card" }, reminders),
      card("Who holds my consent", { id: "consent-card" }, grants, grantForm),
      card("Who read what", { id: "audit-card", class: "card wide" }, audit)),
  );
  // What the chain says refreshes on its own loop: a slow decryption never holds it up.
  const refreshChain = () =>
    Promise.allSettled([
      shown(reminders, "Reminders", refreshReminders)(),
      shown(grants, "Consents", refreshGrants)(),
      shown(audit, "Audit log", refreshAudit)(),
    ]);
  glucose.refresh();
  await refreshChain();
  const stops = [every(REFRESH_MS, refreshChain), every(REFRESH_MS, () => glucose.refresh())];
  return () => stops.forEach((stop) => stop());
}

/** The grant form: whom (an institution or one of its practitioners), why, how long. */
async function renderGrantForm(box, context, onGranted) {
  const document = await api.get("/health/institutions");
  const institutions = listOf(document, "institutions", "members");
  const groups = await Promise.all(
    institutions.map(async (institution) => {
      const id = institution.id || institution.institution;
      const children = await api.get(`/health/identities/${id}/children`).catch(() => null);
      const practitioners = listOf(children, "children", "identities").filter(
        (child) => child.role === "practitioner" && child.active !== false,
      );
      return h("optgroup", { label: institution.label || id.slice(0, 8) },
        h("option", { value: id }, `${institution.label || "institution"} (whole institution)`),
        practitioners.map((practitioner) =>
          h("option", { value: practitioner.id }, `${practitioner.label || practitioner.id.slice(0, 8)}${practitioner.kind ? ` — ${practitioner.kind}` : ""}`)));
    }),
  );
  const grantee = h("select", { id: "grant-grantee", required: true }, groups);
  const purpose = h("select", { id: "grant-purpose" },
    h("option", { value: "treatment" }, "treatment"), h("option", { value: "research" }, "research"));
  const days = h("select", { id: "grant-days" },
    [30, 90, 365].map((count) => h("option", { value: count, selected: count === 90 }, `${count} days`)));
  const submit = h("button", { type: "submit", id: "grant-submit" }, "Grant");
  const form = h("form", { class: "inline-form", id: "grant" },
    h("label", {}, "Grant to", grantee),
    h("label", {}, "for", purpose),
    h("label", {}, "during", days),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = "Granting…";
    const fields = {
      grantee: grantee.value,
      purpose: purpose.value,
      expires_ms: Date.now() + Number(days.value) * 24 * 3600 * 1000,
    };
    if (await perform(context, "Consent granted", "grant", fields)) await onGranted();
    submit.disabled = false;
    submit.textContent = "Grant";
  });
  replace(box, form);
}

/**
 * Audit entries (oldest first) grouped into runs of one reader, basis and outcome within
 * a minute: one row for a doctor's look at a day of readings, not one per record.
 */
function groupReads(entries) {
  const groups = [];
  for (const entry of entries) {
    const last = groups[groups.length - 1];
    const key = `${entry.reader}|${entry.basis}|${entry.served}|${Math.floor(entry.accessed_ms / 60000)}`;
    if (last && last.key === key) last.records.push(entry.record);
    else groups.push({ key, first: entry, records: [entry.record] });
  }
  return groups;
}
