// The network: validators, height, peers, block interval and throughput, as this node sees
// them (GET /health/network), refreshed every two seconds.

import * as api from "../api.js";
import { card, every, h, listOf, num, replace, shortId, table } from "../dom.js";

const REFRESH_MS = 2000;
const HISTORY = 60;

export async function render(main) {
  const figures = h("div", { class: "figures-row", id: "network-figures" });
  const validators = h("div", { id: "network-validators" });
  const peers = h("div", { id: "network-peers" });
  const heights = [];
  const spark = h("canvas", { class: "spark", width: 600, height: 80, id: "height-spark" });

  async function refresh() {
    const document = await api.get("/health/network");
    const height = Number(document.height ?? 0);
    heights.push([Date.now(), height]);
    if (heights.length > HISTORY) heights.shift();
    const interval = document.block_interval_ms ?? (document.block_interval && document.block_interval.p50_ms);
    const throughput = document.throughput_tx_per_s ?? document.tx_per_s ?? (document.throughput && document.throughput.tx_per_s);
    const peerList = listOf(document, "peers");
    const peerCount = Array.isArray(document.peers) ? peerList.length : document.peers;
    replace(figures,
      figure("Height", String(height), "network-height"),
      figure("Peers", String(peerCount ?? "—"), "network-peers-count"),
      figure("Block interval", interval === undefined || interval === null ? "—" : `${num(Number(interval))} ms`, "network-interval"),
      figure("Throughput", throughput === undefined || throughput === null ? "—" : `${num(Number(throughput), 1)} tx/s`, "network-throughput"),
      figure("Chain", String(document.chain_id ?? "—"), "network-chain"));
    const validatorList = listOf(document, "validators");
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
    if (Array.isArray(document.peers)) {
      replace(peers, table(["Peer"], peerList.map((peer) => [h("code", {}, typeof peer === "string" ? peer : peer.peer_id || JSON.stringify(peer))]), "No peers."));
    }
    drawSpark(spark, heights);
  }

  replace(
    main,
    h("h1", {}, "Network"),
    figures,
    h("div", { class: "grid two" },
      card("Height over the last two minutes", { id: "height-card", class: "card wide" }, spark),
      card("Validators", { id: "network-validators-card" }, validators),
      card("Peers", { id: "network-peers-card" }, peers)),
  );
  await refresh();
  return every(REFRESH_MS, refresh);
}

function figure(label, value, id) {
  return h("div", { class: "figure", id }, h("div", { class: "figure-value" }, value), h("div", { class: "figure-label" }, label));
}

function drawSpark(canvas, points) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 80;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  if (points.length < 2) return;
  const [t0] = points[0];
  const t1 = points[points.length - 1][0];
  const h0 = points[0][1];
  const h1 = Math.max(points[points.length - 1][1], h0 + 1);
  ctx.strokeStyle = "#1f5fbf";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([t, value], index) => {
    const x = 4 + ((width - 8) * (t - t0)) / Math.max(1, t1 - t0);
    const y = height - 6 - ((height - 12) * (value - h0)) / (h1 - h0);
    if (index === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}
