// The DAO: member institutions, validators and their power, the parameters, open proposals
// and the member's vote.

import * as api from "../api.js";
import { actionButton, badge, card, dateTimeOf, every, h, listOf, replace, shortId, table } from "../dom.js";
import { perform } from "./common.js";

const REFRESH_MS = 4000;
const DECIDED_SHOWN = 5;
const CHOICES = ["yes", "no", "abstain"];

export async function render(main, context) {
  const members = h("div", { id: "members" });
  const validators = h("div", { id: "validators" });
  const params = h("div", { id: "params" });
  const proposals = h("div", { id: "proposals" });
  const me = context.me;

  async function refreshDao() {
    const document = await api.get("/health/dao");
    const memberList = [...listOf(document, "members")].sort((a, b) => String(a.label).localeCompare(String(b.label)));
    const mine = memberList.find((member) => (member.institution || member.id) === (me && me.id));
    replace(members, table(["Institution", "Status", "Weight", "Power", "Validator key"],
      memberList.map((member) => [
        member.label || api.nameTag(member.institution || member.id),
        badge(member.status || "active"),
        String(member.weight ?? "—"),
        String(member.power ?? "—"),
        shortId(member.validator_key),
      ]), "No members."));
    const validatorList = [...listOf(document, "validators")].sort((a, b) => String(a.label).localeCompare(String(b.label)));
    const total = validatorList.reduce((sum, validator) => sum + Number(validator.power ?? validator.voting_power ?? 0), 0);
    replace(validators, table(["Validator", "Institution", "Power", "Share"],
      validatorList.map((validator) => {
        const power = Number(validator.power ?? validator.voting_power ?? 0);
        return [
          shortId(validator.public_key || validator.validator_key || validator.key),
          validator.label || (validator.institution ? api.nameTag(validator.institution) : "—"),
          String(power),
          powerBar(total ? power / total : 0),
        ];
      }), "No validators."));
    const paramDocument = (document && document.params) || {};
    const paramRows = (Array.isArray(paramDocument)
      ? paramDocument.map((entry) => [entry.name, entry.value])
      : Object.entries(paramDocument)
    ).map(([name, value]) => [h("code", {}, name), paramText(name, Number(value))]);
    replace(params, table(["Parameter", "Value"], paramRows, "Defaults."));
    return mine;
  }

  async function refreshProposals(mine) {
    const document = await api.get("/health/dao/proposals?status=open");
    const open = listOf(document, "proposals");
    const canVote = mine && (mine.status || "active") === "active";
    const rows = open.map((proposal) => {
      const ballot = me && (proposal.ballots || []).find((entry) => entry.member === me.id);
      return [
      `#${proposal.id}`,
      proposal.kind,
      proposal.reason || "—",
      api.nameTag(proposal.proposer),
      dateTimeOf(proposal.deadline_ms),
      tally(proposal),
      ballot ? h("span", { class: "voted", "data-voted": `${proposal.id}:${ballot.choice}` }, "you voted ", badge(ballot.choice, `vote-${ballot.choice}`))
      : canVote
        ? h("div", { class: "votes" }, CHOICES.map((choice) =>
            actionButton(choice, async () => {
              const done = await perform(context, `Voted ${choice} on #${proposal.id}`, "vote", { proposal: proposal.id, choice });
              if (done) await refreshAll();
            }, { class: `small vote-${choice}`, "data-vote": `${proposal.id}:${choice}` })))
        : h("small", {}, me ? "members vote" : "log in to vote"),
      ];
    });
    const all = await api.get(`/health/dao/proposals?status=all&limit=${DECIDED_SHOWN + open.length}`).catch(() => null);
    const decided = listOf(all, "proposals").filter((proposal) => proposal.status !== "open").slice(0, DECIDED_SHOWN);
    replace(proposals,
      table(["", "Kind", "Reason", "Proposer", "Deadline", "Yes / No / Abstain", "Vote"], rows, "No open proposal."),
      decided.length ? h("h3", {}, "Recently decided") : "",
      decided.length ? table(["", "Kind", "Reason", "Outcome", "Yes / No / Abstain"], decided.map((proposal) => [
        `#${proposal.id}`, proposal.kind, proposal.reason || "—",
        h("span", {}, badge(proposal.status), proposal.outcome ? ` ${proposal.outcome}` : ""), tally(proposal),
      ]), "", { id: "decided" }) : "");
  }

  async function refreshAll() {
    const mine = await refreshDao();
    await refreshProposals(mine);
  }

  replace(
    main,
    h("h1", {}, "DAO"),
    h("div", { class: "grid two" },
      card("Open proposals", { id: "proposals-card", class: "card wide" }, proposals),
      card("Members", { id: "members-card" }, members),
      card("Validators and power", { id: "validators-card" }, validators),
      card("Parameters", { id: "params-card" }, params)),
  );
  await refreshAll();
  return every(REFRESH_MS, refreshAll);
}

function tally(proposal) {
  const yes = Number(proposal.yes_weight ?? proposal.yes ?? 0);
  const no = Number(proposal.no_weight ?? proposal.no ?? 0);
  const abstain = Number(proposal.abstain_weight ?? proposal.abstain ?? 0);
  return h("span", { class: "tally" }, `${yes} / ${no} / ${abstain}`);
}

function powerBar(share) {
  const fill = h("span", { class: "power-fill" });
  fill.style.width = `${(100 * share).toFixed(1)}%`;
  return h("span", { class: "power" }, h("span", { class: "power-track" }, fill), `${(100 * share).toFixed(0)} %`);
}

const UNITS = [
  [24 * 3600 * 1000, "day"],
  [3600 * 1000, "hour"],
  [60 * 1000, "minute"],
  [1000, "second"],
];

/** A parameter's value in words: durations (…_ms), percentages (…_pct), sizes (…_bytes). */
export function paramText(name, value) {
  if (name.endsWith("_ms")) {
    for (const [size, unit] of UNITS) {
      if (value >= size && value % size === 0) {
        const count = value / size;
        return `${count} ${unit}${count === 1 ? "" : "s"}`;
      }
    }
    return `${value} ms`;
  }
  if (name.endsWith("_pct")) return `${value} %`;
  if (name.endsWith("_bytes")) {
    return value >= 1048576 && value % 1048576 === 0 ? `${value / 1048576} MiB` : `${value} bytes`;
  }
  return String(value);
}
