// The network: validators, height, peers, block interval and throughput, as this node sees
// them (GET /health/network), refreshed every two seconds.

import * as api from "../api.js";
import { blockChart } from "../charts.js";
import { card, every, h, listOf, num, replace, shortId, table } from "../dom.js";

const REFRESH_MS = 2000;
const RECENT_BLOCKS = 40;
const PARALLEL_FETCHES = 6;

export async function render(main) {
  const figures = h("div", { class: "figures-row", id: "network-figures" });
  const validators = h("div", { id: "network-validators" });
  const peers = h("div", { id: "network-peers" });
  const blocks = new Map();
  const blocksBox = h("div", { id: "blocks-chart" });
  let shownTip = -1;
  const subtitle = h("p", { class: "hint", id: "network-subtitle" });

  async function refresh() {
    const document = await api.get("/health/network");
    const height = Number(document.height ?? 0);
    const interval = document.block_interval_ms ?? (document.block_interval && document.block_interval.p50_ms);
    const throughput = document.throughput_tx_per_s ?? document.tx_per_s ?? (document.throughput && document.throughput.tx_per_s);
    const peerList = listOf(document, "peer_ids", "peers");
    const peerCount = typeof document.peers === "number" ? document.peers : peerList.length;
    replace(figures,
      figure("Height", String(height), "network-height"),
      figure("Peers", String(peerCount ?? "—"), "network-peers-count"),
      figure("Block interval", interval === undefined || interval === null ? "—" : `${num(Number(interval))} ms`, "network-interval"),
      figure("Throughput", throughput === undefined || throughput === null ? "—" : `${num(Number(throughput), 1)} tx/s`, "network-throughput"),
      figure("Last block", document.last_block_time_ms ? ago(document.last_block_time_ms) : "—", "network-last-block"),
      figure("Mempool", `${document.mempool_txs ?? "—"} txs`, "network-mempool"));
    replace(subtitle, `${document.chain_id ?? ""} — as node ${document.moniker || ""} sees it${document.catching_up ? " (catching up)" : ""}; interval and throughput over the last ${document.window_blocks ?? "few"} blocks`);
    const validatorList = [...listOf(document, "validators")].sort((a, b) => String(a.label).localeCompare(String(b.label)));
    const total = validatorList.reduce((sum, v) => sum + Number(v.power ?? v.voting_power ?? 0), 0);
    replace(validators, table(["Validator", "Institution", "Power", "Share"],
      validatorList.map((v) => {
        const power = Number(v.power ?? v.voting_power ?? 0);
        return [
          shortId(v.public_key || v.validator_key || v.key),
          v.label || (v.institution ? api.nameTag(v.institution) : "—"),
          String(power),
          total ? `${((100 * power) / total).toFixed(0)} %` : "—",
        ];
      }), "No validators."));
    replace(peers, table(["Peer"], peerList.map((peer) => [h("code", {}, String(peer))]), "No peers."));
    if (height !== shownTip) {
      await fetchBlocks(blocks, height);
      shownTip = height;
      const recent = [...blocks.values()].sort((a, b) => a.height - b.height);
      replace(blocksBox, blockChart(recent));
    }
  }

  replace(
    main,
    h("h1", {}, "Network"),
    subtitle,
    figures,
    h("div", { class: "grid two" },
      card("Recent blocks: time since the previous one, and transactions", { id: "blocks-card", class: "card wide" }, blocksBox),
      card("Validators", { id: "network-validators-card" }, validators),
      card("Peers", { id: "network-peers-card" }, peers)),
  );
  await refresh();
  return every(REFRESH_MS, refresh);
}

function ago(timeMs) {
  const seconds = Math.max(0, Math.round((Date.now() - timeMs) / 1000));
  return seconds < 120 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function figure(label, value, id) {
  return h("div", { class: "figure", id }, h("div", { class: "figure-value" }, value), h("div", { class: "figure-label" }, label));
}

/** Fetch the blocks of the last RECENT_BLOCKS heights up to `tip` not yet in `blocks`. */
async function fetchBlocks(blocks, tip) {
  const lowest = Math.max(1, tip - RECENT_BLOCKS + 1);
  for (const height of [...blocks.keys()]) if (height < lowest) blocks.delete(height);
  const missing = [];
  for (let height = lowest; height <= tip; height++) if (!blocks.has(height)) missing.push(height);
  for (let start = 0; start < missing.length; start += PARALLEL_FETCHES) {
    const batch = missing.slice(start, start + PARALLEL_FETCHES);
    const found = await Promise.all(batch.map((height) => api.get(`/blocks/${height}`).catch(() => null)));
    for (const block of found) {
      if (block) blocks.set(block.height, { height: block.height, time_ms: block.time_ms, num_txs: block.num_txs });
    }
  }
}
