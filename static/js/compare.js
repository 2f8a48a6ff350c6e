// Compare: each run's loss series from REST (downsampled to the chart's width), overlaid.
import { makeChart, align, chartWidth } from "./charts.js";

const page = JSON.parse(document.getElementById("compare-data").textContent);

async function series(run, width) {
  const response = await fetch(`/api/jobs/${run.id}/metrics?name=loss&name=eval_loss&points=${width}`, { credentials: "same-origin" });
  return (await response.json()).series;
}

async function main() {
  const width = chartWidth(document.getElementById("compare-loss"));
  const all = await Promise.all(page.runs.map((run) => series(run, width)));
  for (const [metric, id] of [["loss", "compare-loss"], ["eval_loss", "compare-eval"]]) {
    const present = page.runs.map((run, i) => [run, all[i][metric]]).filter(([, s]) => s && s.steps.length);
    if (!present.length) continue;
    const data = align(present.map(([, s]) => [s.steps, s.values]));
    makeChart(document.getElementById(id), present.map(([run]) => ({ label: run.name })), data, { yLabel: metric });
  }
}
main();
