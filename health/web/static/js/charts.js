// The glucose chart (uPlot, vendored) with the target band 70–180 mg/dL, and the
// time-in-range bar in the colours of the 2019 international consensus AGP report.

import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { h, num, timeOf } from "./dom.js";

const DAY_LABEL = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** Tick labels of times in seconds: HH:MM within a day and a half, else the date. */
function timeTicks(ticks) {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  return ticks.map((tick) => (span > 36 * 3600 ? DAY_LABEL.format(new Date(tick * 1000)) : timeOf(tick * 1000)));
}

export const TARGET_LOW = 70;
export const TARGET_HIGH = 180;

/** The five ranges, top to bottom as the AGP report draws them. */
export const RANGES = [
  { key: "very_high_pct", label: "Very high", limits: ">250 mg/dL", goal: "<5%", colour: "#f08a24" },
  { key: "high_pct", label: "High", limits: "181–250 mg/dL", goal: "<25% (above 180)", colour: "#f6c915" },
  { key: "in_range_pct", label: "In range", limits: "70–180 mg/dL", goal: ">70%", colour: "#2e9d48" },
  { key: "low_pct", label: "Low", limits: "54–69 mg/dL", goal: "<4% (below 70)", colour: "#e0302c" },
  { key: "very_low_pct", label: "Very low", limits: "<54 mg/dL", goal: "<1%", colour: "#8b1414" },
];

/** Readings of a readings document as [time_ms, mg_dl] pairs, oldest first. */
export function readingsOf(document) {
  const items = Array.isArray(document) ? document : (document && document.readings) || [];
  return items
    .map((item) => [
      Number(item.time_ms ?? item.data_time_ms ?? item.effective_ms ?? item.t),
      Number(item.mg_dl ?? item.value ?? item.v),
    ])
    .filter(([time, value]) => Number.isFinite(time) && Number.isFinite(value))
    .sort((a, b) => a[0] - b[0]);
}

function drawBand(u) {
  const { ctx, bbox } = u;
  const top = u.valToPos(TARGET_HIGH, "y", true);
  const bottom = u.valToPos(TARGET_LOW, "y", true);
  ctx.save();
  ctx.fillStyle = "rgba(46, 157, 72, 0.13)";
  ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
  ctx.strokeStyle = "rgba(46, 157, 72, 0.75)";
  ctx.lineWidth = 1 * uPlot.pxRatio;
  ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
  for (const y of [top, bottom]) {
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
  }
  ctx.restore();
}

function pointColour(value) {
  if (value < 54) return RANGES[4].colour;
  if (value < TARGET_LOW) return RANGES[3].colour;
  if (value <= TARGET_HIGH) return "#1f5fbf";
  if (value <= 250) return "#c79a00";
  return RANGES[0].colour;
}

/**
 * A glucose chart of `readings` ([time_ms, mg_dl] pairs) in a new element; the target band
 * is shaded. The chart follows its container's width.
 */
export function glucoseChart(readings, { height = 260, fromMs = null, toMs = null } = {}) {
  const box = h("div", { class: "chart", "data-readings": readings.length });
  if (!readings.length) {
    box.appendChild(h("p", { class: "empty" }, "No readings in this window."));
    return box;
  }
  const xs = readings.map(([time]) => time / 1000);
  const ys = readings.map(([, value]) => value);
  const top = Math.max(300, Math.ceil((Math.max(...ys) + 20) / 50) * 50);
  const sparse = readings.length < 60;
  const options = {
    width: 600,
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: fromMs && toMs ? [fromMs / 1000, toMs / 1000] : undefined },
      y: { range: [40, top] },
    },
    series: [
      {},
      {
        label: "Glucose",
        stroke: "#1f5fbf",
        width: sparse ? 1 : 1.6,
        points: { show: false },
      },
    ],
    axes: [
      { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, values: (u, ticks) => timeTicks(ticks) },
      { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, label: "mg/dL", size: 56, values: (u, ticks) => ticks.map(String) },
    ],
    hooks: {
      drawClear: [drawBand],
      draw: [(u) => (sparse ? drawColouredPoints(u, xs, ys) : undefined)],
    },
  };
  const plot = new uPlot(options, [xs, ys], box);
  const fit = () => {
    const width = Math.max(280, box.clientWidth || box.parentElement?.clientWidth || 600);
    if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height });
  };
  new ResizeObserver(fit).observe(box);
  requestAnimationFrame(fit);
  box.appendChild(
    h("div", { class: "chart-key" },
      h("span", { class: "key-band" }), `target range ${TARGET_LOW}–${TARGET_HIGH} mg/dL`,
      h("span", { class: "key-count" }, `${readings.length} readings`)),
  );
  return box;
}

function drawColouredPoints(u, xs, ys) {
  const { ctx } = u;
  ctx.save();
  for (let i = 0; i < xs.length; i++) {
    const x = u.valToPos(xs[i], "x", true);
    const y = u.valToPos(ys[i], "y", true);
    ctx.beginPath();
    ctx.fillStyle = pointColour(ys[i]);
    ctx.arc(x, y, 3.5 * uPlot.pxRatio, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
}

/**
 * The time-in-range bar of `stats` (percentages very_low_pct … very_high_pct): a stacked
 * vertical bar, very high on top, each range labelled with its share and goal.
 */
export function timeInRangeBar(stats) {
  if (!stats || !stats.readings) {
    return h("p", { class: "empty" }, "No readings to compute time in range.");
  }
  const bar = h("div", { class: "tir-bar", role: "img", "aria-label": "time in ranges" });
  const legend = h("div", { class: "tir-legend" });
  for (const range of RANGES) {
    const share = Number(stats[range.key]) || 0;
    bar.appendChild(
      h("div", {
        class: "tir-segment",
        "data-range": range.key,
        title: `${range.label}: ${num(share, 1)}%`,
      }),
    );
    legend.appendChild(
      h("div", { class: "tir-row" },
        h("span", { class: "tir-swatch", "data-range": range.key }),
        h("span", { class: "tir-label" }, range.label, h("small", {}, range.limits)),
        h("strong", { class: "tir-value", "data-range": range.key }, `${num(share, 0)}%`),
        h("small", { class: "tir-goal" }, `goal ${range.goal}`)),
    );
  }
  // Sizes and colours through the CSSOM (the page's CSP allows no inline style attributes).
  [...bar.children].forEach((segment, index) => {
    const range = RANGES[index];
    const share = Number(stats[range.key]) || 0;
    segment.style.flexGrow = String(share);
    segment.style.minHeight = share > 0 ? "3px" : "0";
    segment.style.background = range.colour;
  });
  [...legend.querySelectorAll(".tir-swatch")].forEach((swatch, index) => {
    swatch.style.background = RANGES[index].colour;
  });
  return h("div", { class: "tir" }, bar, legend);
}

/**
 * Bars of the time each of `blocks` ({height, time_ms, num_txs}, ascending heights) took
 * after the previous one, in ms; the number of transactions as a line on its own axis.
 */
export function blockChart(blocks, { height = 200 } = {}) {
  const box = h("div", { class: "chart", "data-blocks": blocks.length });
  if (blocks.length < 2) {
    box.appendChild(h("p", { class: "empty" }, "Waiting for blocks…"));
    return box;
  }
  const rows = blocks.slice(1).map((block, index) => [block.height, block.time_ms - blocks[index].time_ms, block.num_txs]);
  const options = {
    width: 600,
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false, range: (u, min, max) => [min - 0.6, max + 0.6] }, ms: { range: (u, min, max) => [0, Math.max(500, max * 1.15)] }, txs: { range: (u, min, max) => [0, Math.max(4, max * 1.2)] } },
    series: [
      {},
      { label: "interval", scale: "ms", fill: "rgba(31, 95, 191, 0.55)", stroke: "#1f5fbf", width: 1, paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } },
      { label: "transactions", scale: "txs", stroke: "#2e9d48", width: 2, points: { show: true, size: 5, fill: "#2e9d48" } },
    ],
    axes: [
      { stroke: "#4b5563", grid: { show: false }, label: "height", size: 40 },
      { scale: "ms", stroke: "#4b5563", grid: { stroke: "#eef0f3" }, label: "ms", size: 60 },
      { scale: "txs", side: 1, stroke: "#2e9d48", grid: { show: false }, label: "transactions", size: 50 },
    ],
  };
  const plot = new uPlot(options, [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])], box);
  const fit = () => {
    const width = Math.max(280, box.clientWidth || box.parentElement?.clientWidth || 600);
    if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height });
  };
  new ResizeObserver(fit).observe(box);
  requestAnimationFrame(fit);
  return box;
}
