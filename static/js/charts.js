// Shared by the run and compare pages: uPlot (from npm, static/vendor) with the app's look.
const PALETTE = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#06b6d4", "#a855f7", "#84cc16", "#ec4899"];

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

function axisColors() {
  const css = getComputedStyle(document.documentElement);
  return { text: css.getPropertyValue("--muted").trim() || "#888", grid: css.getPropertyValue("--grid").trim() || "#eee" };
}

// Learning rates (1e-4) and losses (2.31) on the same code path: short, never "0" for a small value.
function tick(v) {
  if (v === null) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e6)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toLocaleString();
}

export function chartWidth(el) {
  return Math.max(200, Math.floor(el.clientWidth || el.parentElement.clientWidth || 400));
}

// series: [{label, color?, dash?, scale?}]; data: [xs, ys1, ys2, ...]
export function makeChart(el, series, data, { height = 220, yLabel = "", log = false, xLabel = "step" } = {}) {
  const { text, grid } = axisColors();
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
  const opts = {
    width: chartWidth(el),
    height,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
    axes: [{ ...axis, label: xLabel }, { ...axis, label: yLabel, size: 64, values: (u, vals) => vals.map(tick) }],
    series: [
      { label: xLabel },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || color(i),
        width: 1.5,
        dash: s.dash,
        spanGaps: true,
        points: { show: s.points ?? false },
      })),
    ],
  };
  const chart = new uPlot(opts, data, el);
  new ResizeObserver(() => chart.setSize({ width: chartWidth(el), height })).observe(el);
  return chart;
}

// Align several (steps, values) series on one x axis (null where a series has no point).
export function align(columns) {
  if (columns.length === 1) return [columns[0][0], columns[0][1]];
  return uPlot.join(columns.map(([xs, ys]) => [xs, ys]));
}
