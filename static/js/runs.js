// Runs list: polls the server-rendered rows partial (one request for all runs, whatever their
// number; a socket per run would cost the server one connection per row). Stops while hidden.
const POLL_MS = 4000;
const body = document.getElementById("runs-body");
const compareButton = document.getElementById("compare-selected");
let timer = null;

function picked() {
  return [...body.querySelectorAll("input.pick:checked")].map((box) => box.value);
}

function updateCompareButton() {
  compareButton.disabled = picked().length < 2;
}

async function refresh() {
  const keep = new Set(picked());
  try {
    const response = await fetch(body.dataset.rowsUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    // The partial is rendered by Django with autoescaping: names from users arrive escaped.
    const doc = new DOMParser().parseFromString(`<table><tbody>${await response.text()}</tbody></table>`, "text/html");
    const rows = [...doc.querySelectorAll("tbody > tr")];
    rows.forEach((row) => {
      const box = row.querySelector("input.pick");
      if (box && keep.has(box.value)) box.checked = true;
    });
    body.replaceChildren(...rows);
    updateCompareButton();
  } catch (error) {
    // The next poll retries; a list page never needs the network to stay up.
  }
}

function schedule() {
  clearInterval(timer);
  timer = document.hidden ? null : setInterval(refresh, POLL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
  schedule();
});
body.addEventListener("change", updateCompareButton);
compareButton.addEventListener("click", () => {
  const query = picked().map((id) => `runs=${encodeURIComponent(id)}`).join("&");
  window.location.href = `/compare/?${query}`;
});
schedule();
