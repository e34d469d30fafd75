// Line charts drawn as SVG by the page itself: no library to vendor, nothing to fetch.

// The XML namespace name of SVG elements (an identifier, never fetched).
const NS = "http://www.w3.org/2000/svg";
const W = 420, H = 200, PAD = { left: 46, right: 12, top: 10, bottom: 26 };

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * TensorBoard's smoothing: an exponential moving average, debiased so the first
 * points are not pulled towards zero. `weight` 0 leaves the points as they are.
 */
export function smooth(points, weight) {
  if (!(weight > 0)) return points;
  let last = 0, n = 0;
  return points.map(([x, y]) => {
    last = last * weight + (1 - weight) * y;
    n += 1;
    return [x, last / (1 - Math.pow(weight, n))];
  });
}

function ticks(min, max, count) {
  if (min === max) return [min];
  const step = (max - min) / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(step)));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= step) || step;
  const out = [];
  for (let v = Math.ceil(min / nice) * nice; v <= max + nice / 1e6; v += nice) out.push(v);
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 1e5)) return v.toExponential(1);
  return Number(v.toFixed(a < 1 ? 3 : a < 100 ? 2 : 0)).toString();
}

/**
 * An SVG line chart of `series` ([{label, cls, points: [[x, y]]}]) over a step axis
 * (`xLabel`), the smoothed line drawn over the faded raw one.
 */
export function lineChart({ series, xLabel, yLabel, weight = 0 }) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${yLabel} by ${xLabel}` });
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!all.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick" }, "no epochs yet"));
    return svg;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const sx = (x) => PAD.left + (x - x0) / (x1 - x0) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - (y - y0) / (y1 - y0) * (H - PAD.top - PAD.bottom);

  svg.append(el("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }));
  svg.append(el("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }));
  for (const t of ticks(y0, y1, 4)) {
    svg.append(el("line", { class: "axis", x1: PAD.left - 3, y1: sy(t), x2: W - PAD.right, y2: sy(t), "stroke-dasharray": "2 3" }));
    svg.append(el("text", { class: "tick", x: PAD.left - 5, y: sy(t) + 3, "text-anchor": "end" }, fmt(t)));
  }
  for (const t of ticks(x0, x1, 6).filter((t) => Number.isInteger(t))) {
    svg.append(el("text", { class: "tick", x: sx(t), y: H - PAD.bottom + 13, "text-anchor": "middle" }, String(t)));
  }
  svg.append(el("text", { class: "tick", x: W - PAD.right, y: H - 2, "text-anchor": "end" }, xLabel));

  const path = (points) => points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
  for (const s of series) {
    const points = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!points.length) continue;
    if (weight > 0) svg.append(el("path", { d: path(points), class: `${s.cls} raw`, fill: "none", "stroke-width": 1.2 }));
    const shown = smooth(points, weight);
    svg.append(el("path", { d: path(shown), class: s.cls, fill: "none", "stroke-width": 2 }));
    if (shown.length === 1) {
      const [x, y] = shown[0];
      svg.append(el("circle", { cx: sx(x), cy: sy(y), r: 3, class: s.cls, fill: "none", "stroke-width": 2 }));
    }
    const title = el("title", {}, `${s.label}: ${fmt(shown[shown.length - 1][1])} at ${xLabel} ${shown[shown.length - 1][0]}`);
    svg.lastChild.append(title);
  }
  return svg;
}
