// New fine-tune: the form is collected into a contracts §1 config and posted to the REST API,
// which is the only validator; its errors come back keyed by field path and land beside fields.
const page = JSON.parse(document.getElementById("new-run-data").textContent);
const form = document.getElementById("run-form");
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const $ = (id) => document.getElementById(id);
const state = { offer: null, offers: [], dataset: null, estimateTimer: 0, estimateSeq: 0 };
window.tuneboardNewRun = state;

// --- config <-> form -----------------------------------------------------------------------------

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  keys.slice(0, -1).forEach((k) => (node = node[k] ||= {}));
  node[keys[keys.length - 1]] = value;
}

function readValue(el) {
  const kind = el.dataset.kind;
  const raw = el.value.trim();
  if (kind === "bool") return el.checked;
  if (kind === "nullable_text") return raw || null;
  if (kind === "modules") {
    if (!raw) return null;
    if (raw === "all-linear") return raw;
    return raw.split(",").map((s) => s.trim()).filter(Boolean);
  }
  if (kind === "number" || kind === "int" || kind === "nullable_int") {
    if (raw === "") return kind === "nullable_int" ? null : raw;
    // Anything unparseable goes as typed: the API says what is wrong with it, next to the field.
    return Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return raw;
}

function collectConfig() {
  const config = structuredClone(page.defaults);
  for (const el of form.querySelectorAll("[data-kind]")) {
    if (el.type === "radio" && !el.checked) continue;
    setPath(config, el.name, readValue(el));
  }
  return config;
}

function applyValues(values) {
  for (const [path, value] of Object.entries(values)) {
    const els = form.querySelectorAll(`[name="${CSS.escape(path)}"]`);
    els.forEach((el) => {
      if (el.type === "checkbox") el.checked = Boolean(value);
      else if (el.type === "radio") el.checked = el.value === value;
      else el.value = value === null ? "" : Array.isArray(value) ? value.join(", ") : value;
    });
  }
  scheduleEstimate();
}

// --- errors --------------------------------------------------------------------------------------

function clearErrors() {
  form.querySelectorAll("[data-error-for]").forEach((el) => (el.textContent = ""));
  form.querySelectorAll(".has-error").forEach((el) => el.classList.remove("has-error"));
  $("form-status").hidden = true;
}

function flattenErrors(body, prefix = "") {
  const out = {};
  for (const [key, value] of Object.entries(body || {})) {
    // Config errors arrive as {"config": {"training.learning_rate": [...]}}.
    if (value && typeof value === "object" && !Array.isArray(value)) Object.assign(out, flattenErrors(value, ""));
    else out[prefix + key] = Array.isArray(value) ? value.join(" ") : String(value);
  }
  return out;
}

function showErrors(body) {
  const errors = flattenErrors(body);
  let first = null;
  for (const [path, message] of Object.entries(errors)) {
    let slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
    if (!slot) slot = form.querySelector('[data-error-for="non_field_errors"]');
    slot.textContent = slot.textContent ? `${slot.textContent} ${path}: ${message}` : message;
    const field = slot.closest(".field");
    if (field) field.classList.add("has-error");
    first ||= slot;
  }
  status(`Please fix ${Object.keys(errors).length} problem(s) marked in the form.`, "error");
  first?.closest("section, aside")?.scrollIntoView({ behavior: "smooth", block: "start" });
}

function status(text, kind) {
  const box = $("form-status");
  box.textContent = text;
  box.className = `flash ${kind}`;
  box.hidden = false;
}

// --- dataset upload ------------------------------------------------------------------------------

function upload(file) {
  const body = new FormData();
  body.append("file", file);
  body.append("name", file.name.replace(/\.[^.]+$/, ""));
  const xhr = new XMLHttpRequest();
  xhr.open("POST", page.urls.datasets);
  xhr.setRequestHeader("X-CSRFToken", csrf);
  xhr.responseType = "json";
  $("upload-progress").hidden = false;
  $("upload-error").textContent = "";
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.round((100 * e.loaded) / e.total);
    $("upload-bar").style.width = `${pct}%`;
    $("upload-text").textContent = pct < 100 ? `Uploading… ${pct}%` : "Checking every row…";
  });
  xhr.addEventListener("load", () => {
    if (xhr.status === 201) return onUploaded(xhr.response);
    $("upload-text").textContent = "";
    $("upload-error").textContent = Object.values(flattenErrors(xhr.response || { file: "upload failed" })).join(" ");
  });
  xhr.addEventListener("error", () => ($("upload-error").textContent = "The upload failed: network error."));
  xhr.send(body);
}

function onUploaded(dataset) {
  $("upload-text").textContent = "Uploaded.";
  const select = $("f-data-dataset_id");
  const label = `${dataset.name} · ${dataset.rows} rows · ${dataset.format}${dataset.error_count ? ` · ${dataset.error_count} errors` : ""}`;
  const option = new Option(label, dataset.id, true, true);
  option.dataset.format = dataset.format;
  select.add(option, 1);
  select.value = dataset.id;
  showDataset(dataset);
  scheduleEstimate();
}

function showDataset(dataset) {
  state.dataset = dataset;
  $("dataset-summary").hidden = false;
  $("ds-name").textContent = dataset.name;
  $("ds-format").textContent = dataset.format;
  $("ds-rows").textContent = String(dataset.rows);
  const errors = dataset.errors || [];
  $("ds-errors-box").hidden = !dataset.error_count;
  $("ds-error-count").textContent = `${dataset.error_count} row error(s): this dataset cannot be launched until they are fixed.`;
  $("ds-errors").replaceChildren(
    ...errors.map((e) => {
      const li = document.createElement("li");
      li.textContent = typeof e === "string" ? e : e.line == null ? e.message : `line ${e.line}: ${e.message}`;
      return li;
    }),
  );
  renderPreview(dataset.preview || []);
}

function renderPreview(rows) {
  const table = $("ds-preview");
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = document.createElement("tr");
  columns.forEach((c) => head.append(Object.assign(document.createElement("th"), { textContent: c })));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(
    ...rows.slice(0, 5).map((row) => {
      const tr = document.createElement("tr");
      columns.forEach((c) => {
        const value = row[c];
        const text = typeof value === "string" ? value : JSON.stringify(value ?? "");
        tr.append(Object.assign(document.createElement("td"), { textContent: text.length > 400 ? `${text.slice(0, 400)}…` : text }));
      });
      return tr;
    }),
  );
}

async function loadDataset(id) {
  if (!id) return ($("dataset-summary").hidden = true);
  const response = await fetch(`${page.urls.datasets}/${id}`, { credentials: "same-origin" });
  if (response.ok) showDataset(await response.json());
}

// --- estimate ------------------------------------------------------------------------------------

function scheduleEstimate() {
  clearTimeout(state.estimateTimer);
  state.estimateTimer = setTimeout(estimate, 400);
}

function fmtMoney(v) {
  return v === null || v === undefined ? "—" : `$${Number(v).toFixed(2)}`;
}

function fmtNum(v, digits = 1) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(digits);
}

function humanParams(n) {
  if (!n) return null;
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} B parameters` : `${Math.round(n / 1e6)} M parameters`;
}

async function estimate() {
  const seq = ++state.estimateSeq;
  const config = collectConfig();
  const body = { config, dataset_id: config.data.dataset_id, gpu_count: Number($("gpu-count").value) || 1 };
  let result;
  try {
    const response = await fetch(page.urls.estimate, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`estimate: HTTP ${response.status}`);
    result = await response.json();
  } catch (error) {
    if (seq === state.estimateSeq) $("estimate-status").textContent = `No estimate right now (${error.message}); you can still launch on the local provider.`;
    renderOffers([]);
    return;
  }
  if (seq !== state.estimateSeq) return; // a newer request is on its way
  $("model-size").textContent = humanParams(result.model_params) || "Size unknown: not in the known list and not in the name.";
  $("estimate-status").textContent = result.dataset_tokens ? `About ${Number(result.dataset_tokens).toLocaleString()} dataset tokens.` : "Choose a dataset for hours and dollars.";
  renderOffers(result.offers || []);
}

function offerKey(o) {
  return `${o.provider}|${o.gpu_type}`;
}

const LOCAL_OFFER = { provider: "local", gpu_type: "", display_name: "This machine", vram_gb: null, price_per_hour: 0, fits: null, memory_gb: null, hours: null, cost: null, cheapest: false, note: "runs here, no GPU bill" };

function renderOffers(offers) {
  // This machine is always a choice, whether or not the estimate lists it.
  if (!offers.some((o) => o.provider === "local")) offers = [...offers, LOCAL_OFFER];
  state.offers = offers;
  const keep = state.offer && offers.find((o) => offerKey(o) === offerKey(state.offer));
  state.offer = keep || offers.find((o) => o.cheapest) || offers.find((o) => o.provider === "local") || offers[0] || null;
  const rows = offers.map((o) => {
    const tr = document.createElement("tr");
    tr.className = [o.cheapest ? "cheapest" : "", o.fits === false ? "nofit" : "", state.offer && offerKey(o) === offerKey(state.offer) ? "chosen" : ""].join(" ");
    tr.dataset.key = offerKey(o);
    const radio = Object.assign(document.createElement("input"), { type: "radio", name: "offer", checked: tr.classList.contains("chosen") });
    radio.setAttribute("aria-label", `${o.provider} ${o.display_name}`);
    const fits = o.fits === null ? "?" : o.fits ? "✓ fits" : "✗ too big";
    const cells = [o.provider, `${o.display_name}${o.cheapest ? " · cheapest" : ""}`, o.vram_gb ? `${o.vram_gb} GB` : "—", fmtMoney(o.price_per_hour), fits, o.memory_gb ? `${fmtNum(o.memory_gb)} GB` : "—", fmtNum(o.hours, 2), fmtMoney(o.cost), o.note || ""];
    const first = document.createElement("td");
    first.append(radio);
    tr.append(first, ...cells.map((text, i) => Object.assign(document.createElement("td"), { textContent: text, className: [2, 3, 5, 6, 7].includes(i) ? "num" : "" })));
    tr.dataset.provider = o.provider;
    tr.addEventListener("click", () => chooseOffer(o));
    return tr;
  });
  $("estimate-table").tBodies[0].replaceChildren(...rows);
  summarise();
}

function chooseOffer(offer) {
  state.offer = offer;
  for (const tr of $("estimate-table").tBodies[0].rows) {
    const chosen = tr.dataset.key === offerKey(offer);
    tr.classList.toggle("chosen", chosen);
    tr.querySelector("input").checked = chosen;
  }
  summarise();
}

function summarise() {
  $("sum-model").textContent = form.elements["model.name"].value || "—";
  const select = $("f-data-dataset_id");
  $("sum-dataset").textContent = select.value ? select.selectedOptions[0].textContent : "—";
  const o = state.offer;
  $("sum-offer").textContent = o ? `${o.provider} · ${o.display_name}` : "—";
  $("sum-cost").textContent = o && o.cost !== null ? `${fmtMoney(o.cost)} in ${fmtNum(o.hours, 2)} h` : "—";
}

// --- save and launch -----------------------------------------------------------------------------

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = { non_field_errors: [`HTTP ${response.status}`] };
  }
  return { ok: response.ok, data };
}

async function saveConfig() {
  clearErrors();
  const saved = await postJSON(page.urls.configs, { config: collectConfig() });
  if (!saved.ok) {
    showErrors(saved.data);
    return null;
  }
  return saved.data;
}

async function launch() {
  $("launch").disabled = true;
  try {
    const config = await saveConfig();
    if (!config) return;
    const offer = state.offer || { provider: "local", gpu_type: "" };
    const body = {
      training_config_id: config.id,
      provider: offer.provider,
      gpu_types: offer.gpu_type ? [offer.gpu_type] : [],
      gpu_count: Number($("gpu-count").value) || 1,
      budget_limit: $("budget").value,
      alert_threshold: $("alert").value,
    };
    const launched = await postJSON(page.urls.jobs, body);
    if (!launched.ok) return showErrors(launched.data);
    window.location.href = page.urls.run.replace("00000000-0000-0000-0000-000000000000", launched.data.id);
  } finally {
    $("launch").disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------------

$("dataset-file").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]));
$("f-data-dataset_id").addEventListener("change", (e) => {
  loadDataset(e.target.value);
  scheduleEstimate();
});
form.addEventListener("input", (e) => {
  if (e.target.name !== "offer") scheduleEstimate();
});
form.addEventListener("change", summarise);
form.querySelectorAll(".preset").forEach((b) => b.addEventListener("click", () => applyValues(page.presets[b.dataset.preset])));
$("save").addEventListener("click", async () => {
  const config = await saveConfig();
  if (config) status(`Saved config “${config.name}”.`, "success");
});
$("launch").addEventListener("click", launch);
form.addEventListener("submit", (e) => e.preventDefault());
if ($("f-data-dataset_id").value) loadDataset($("f-data-dataset_id").value);
scheduleEstimate();
