// The VlaCloud tenant console: a small app over the public /v1 API. The session is an HttpOnly cookie made from an
// API key at sign-in; this script never sees the key after sending it once, and repeats the session's CSRF token on
// every request that changes something. Text from the API is only ever inserted as text (no innerHTML).
"use strict";

const state = { csrf: null, who: null, stream: null, timer: null };
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const svgNs = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && (problem.detail || problem.title) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && path !== "/console/session") { showSignIn("Your session ended (signed out, expired, or the key was revoked). Sign in again."); throw new ApiError(401, null); }
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function problemText(error) {
  if (!(error instanceof ApiError)) return String(error && error.message || error);
  const p = error.problem || {};
  const fields = p.errors ? Object.entries(p.errors).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ") : "";
  return [p.title, p.detail, fields].filter(Boolean).join(" — ") || error.message;
}

const fmt = {
  date: (t) => t ? new Date(t).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "—",
  size: (b) => b >= 1 << 30 ? (b / (1 << 30)).toFixed(1) + " GiB" : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + " MiB" : b >= 1024 ? (b / 1024).toFixed(1) + " KiB" : b + " B",
  num: (x, d = 4) => x === null || x === undefined ? "—" : Number(x).toPrecision(d),
  duration: (seconds) => {
    if (!isFinite(seconds) || seconds < 0) return "—";
    const m = Math.floor(seconds / 60), sec = Math.round(seconds % 60);
    return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : m > 0 ? `${m} min ${sec} s` : `${sec} s`;
  },
};

function stopLive() {
  if (state.stream) { state.stream.close(); state.stream = null; }
  if (state.timer) { clearTimeout(state.timer); state.timer = null; }
}

function showSignIn(message) {
  stopLive();
  state.csrf = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("page").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  document.title = "Sign in · VlaCloud console";
  $("api-key").focus();
}

function signedIn(session) {
  state.csrf = session.csrf_token;
  state.who = session;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-text").textContent = `tenant ${session.tenant_id.slice(0, 8)}… · key ${session.key_prefix}`;
  $("page").hidden = false;
  route();
}

function page(title, ...children) {
  const main = $("page");
  main.replaceChildren(h("h1", { id: "page-title" }, title), ...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false));
  document.title = `${title} · VlaCloud console`;
  for (const link of document.querySelectorAll("nav a")) {
    if (location.hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function table(caption, columns, rows) {
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map(c => h("th", { scope: "col", class: c.num ? "num" : null }, c.title)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "None."))
      : rows.map(r => h("tr", {}, columns.map(c => h("td", { class: c.num ? "num" : null }, c.value(r)))))));
}

const statusCell = (status) => h("span", { class: `status-${status}` }, status);

// ---- checkpoints

async function checkpointsPage() {
  const list = await api("GET", "/v1/checkpoints?limit=100");
  page("Checkpoints",
    h("p", { class: "muted" }, "Your checkpoints and the public ones, newest first."),
    table("Checkpoints", [
      { title: "Checkpoint", value: c => h("a", { href: `#/checkpoints/${c.id}` }, `${c.model}@v${c.version}`) },
      { title: "Embodiment", value: c => c.embodiment || c.embodiment_id },
      { title: "Size", num: true, value: c => fmt.size(c.size_bytes) },
      { title: "Created", value: c => fmt.date(c.created_at) },
      { title: "Public", value: c => c.public ? "yes" : "" },
    ], list.data));
}

async function checkpointPage(id) {
  const c = await api("GET", `/v1/checkpoints/${id}`);
  const lineage = [];
  for (let parent = c.parent_checkpoint_id, n = 0; parent && n < 20; n++) {
    try { const p = await api("GET", `/v1/checkpoints/${parent}`); lineage.push(p); parent = p.parent_checkpoint_id; }
    catch { lineage.push({ id: parent, model: "(not visible)", version: "?" }); break; }
  }
  const versions = (await api("GET", `/v1/checkpoints?model=${encodeURIComponent(c.model)}&embodiment=${encodeURIComponent(c.embodiment_id)}&limit=100`)).data;
  const aliases = c.public ? [] : (await api("GET", `/v1/models/${encodeURIComponent(c.model)}/aliases`)).data;
  const histories = await Promise.all(aliases.map(a => api("GET", `/v1/models/${encodeURIComponent(c.model)}/aliases/${encodeURIComponent(a.alias)}/history?limit=20`)));
  const message = h("p", { class: "error", role: "alert", id: "alias-message" });
  const versionName = (checkpointId) => {
    if (!checkpointId) return "—";
    const v = versions.find(x => x.id === checkpointId);
    return v ? `v${v.version}` : checkpointId.slice(0, 8);
  };

  const aliasSection = c.public ? h("p", { class: "muted" }, "Public checkpoints have no aliases of yours.") : [
    table(`Aliases of ${c.model}`, [
      { title: "Alias", value: a => a.alias },
      { title: "Points at", value: a => h("a", { href: `#/checkpoints/${a.checkpoint_id}` }, `${c.model}@v${a.version}`) },
      { title: "Updated", value: a => fmt.date(a.updated_at) },
      { title: "Roll back", value: a => h("button", { type: "button", class: "secondary", "aria-label": `Roll back ${a.alias}`, onclick: () => aliasChange("POST", `/v1/models/${encodeURIComponent(c.model)}/aliases/${encodeURIComponent(a.alias)}/rollback`, { reason: "rolled back from the console" }, message) }, "Roll back") },
    ], aliases),
    histories.map((history, i) => table(`History of ${c.model}@${aliases[i].alias}`, [
      { title: "When", value: m => fmt.date(m.moved_at) },
      { title: "From", value: m => versionName(m.from_checkpoint_id) },
      { title: "To", value: m => versionName(m.to_checkpoint_id) },
      { title: "Reason", value: m => m.reason || "" },
    ], history.data)),
    h("h2", {}, "Promote"),
    h("form", { class: "inline", id: "promote-form", onsubmit: (e) => {
      e.preventDefault();
      const form = e.target;
      aliasChange("PUT", `/v1/models/${encodeURIComponent(c.model)}/aliases/${encodeURIComponent(form.alias.value)}`, { checkpoint: form.checkpoint.value, reason: form.reason.value || null }, message);
    } },
      h("div", {}, h("label", { for: "promote-alias" }, "Alias"), h("input", { id: "promote-alias", name: "alias", required: true, value: "production", maxlength: 64 })),
      h("div", {}, h("label", { for: "promote-checkpoint" }, "Version"), h("select", { id: "promote-checkpoint", name: "checkpoint" },
        versions.map(v => h("option", { value: v.id, selected: v.id === c.id }, `${v.model}@v${v.version}`)))),
      h("div", {}, h("label", { for: "promote-reason" }, "Reason"), h("input", { id: "promote-reason", name: "reason", maxlength: 500 })),
      h("button", { type: "submit" }, "Set alias")),
    message,
  ];

  page(`${c.model}@v${c.version}`,
    h("dl", { class: "facts" },
      h("dt", {}, "Id"), h("dd", {}, c.id),
      h("dt", {}, "Embodiment"), h("dd", {}, c.embodiment || c.embodiment_id),
      h("dt", {}, "SHA-256"), h("dd", {}, c.sha256),
      h("dt", {}, "Size"), h("dd", {}, fmt.size(c.size_bytes)),
      h("dt", {}, "Created"), h("dd", {}, fmt.date(c.created_at)),
      h("dt", {}, "Dataset"), h("dd", {}, c.dataset_id || "—"),
      h("dt", {}, "Fine-tuning job"), h("dd", {}, c.fine_tuning_job_id ? h("a", { href: `#/jobs/${c.fine_tuning_job_id}` }, c.fine_tuning_job_id) : "—"),
      h("dt", {}, "Metrics"), h("dd", {}, JSON.stringify(c.metrics))),
    h("p", {}, h("a", { href: `/v1/checkpoints/${c.id}/content`, download: `${c.model}-v${c.version}.tar` }, "Download the checkpoint (tar: safetensors, config, normalisation)")),
    h("h2", {}, "Lineage"),
    h("ol", { id: "lineage" }, h("li", {}, `${c.model}@v${c.version} (this one)`), lineage.map(p => h("li", {}, h("a", { href: `#/checkpoints/${p.id}` }, `${p.model}@v${p.version}`)))),
    h("h2", {}, "Versions"),
    table(`Versions of ${c.model}`, [
      { title: "Version", value: v => h("a", { href: `#/checkpoints/${v.id}` }, `v${v.version}`) },
      { title: "Created", value: v => fmt.date(v.created_at) },
      { title: "Metrics", value: v => JSON.stringify(v.metrics) },
    ], versions),
    h("h2", {}, "Aliases"),
    aliasSection);
}

async function aliasChange(method, path, body, message) {
  message.textContent = "";
  try { await api(method, path, body); await route(); }
  catch (e) { if (e.status !== 401) message.textContent = problemText(e); }
}

// ---- datasets

async function datasetsPage() {
  const list = await api("GET", "/v1/datasets?limit=100");
  page("Datasets",
    table("Datasets", [
      { title: "Name", value: d => h("a", { href: `#/datasets/${d.id}` }, d.name) },
      { title: "Status", value: d => h("span", { class: `status-${d.status === "ready" ? "succeeded" : d.status === "failed" ? "failed" : "running"}` }, d.status) },
      { title: "Embodiment", value: d => d.embodiment || d.embodiment_id },
      { title: "Episodes", num: true, value: d => d.episodes ?? "—" },
      { title: "Frames", num: true, value: d => d.frames ?? "—" },
      { title: "Issues", num: true, value: d => d.issues.length },
      { title: "Created", value: d => fmt.date(d.created_at) },
    ], list.data));
}

async function datasetPage(id) {
  const d = await api("GET", `/v1/datasets/${id}`);
  const byFile = new Map();
  for (const issue of d.issues) byFile.set(issue.file, [...(byFile.get(issue.file) || []), issue.message]);
  page(d.name,
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, d.status),
      h("dt", {}, "Embodiment"), h("dd", {}, d.embodiment || d.embodiment_id),
      h("dt", {}, "Format"), h("dd", {}, d.format || "—"),
      h("dt", {}, "Episodes / frames"), h("dd", {}, `${d.episodes ?? "—"} / ${d.frames ?? "—"}`),
      h("dt", {}, "Size"), h("dd", {}, fmt.size(d.size_bytes))),
    h("h2", {}, "Validation issues"),
    byFile.size === 0 ? h("p", {}, "No issues.") :
      table("Validation issues per file", [
        { title: "File", value: ([file]) => file },
        { title: "Issues", value: ([, messages]) => h("ul", {}, messages.map(m => h("li", {}, m))) },
      ], [...byFile.entries()]));
}

// ---- jobs

async function jobsPage() {
  const [jobs, datasets] = await Promise.all([api("GET", "/v1/fine_tuning/jobs?limit=100"), api("GET", "/v1/datasets?limit=100")]);
  const ready = datasets.data.filter(d => d.status === "ready");
  const message = h("p", { class: "error", role: "alert", id: "job-message" });
  page("Fine-tuning jobs",
    table("Jobs", [
      { title: "Job", value: j => h("a", { href: `#/jobs/${j.id}` }, j.id.slice(0, 8)) },
      { title: "Model", value: j => j.model },
      { title: "Status", value: j => statusCell(j.status) },
      { title: "Progress", num: true, value: j => `${j.step}/${j.total_steps}` },
      { title: "Created", value: j => fmt.date(j.created_at) },
    ], jobs.data),
    h("h2", {}, "New job"),
    h("form", { class: "inline", id: "new-job", onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      message.textContent = "";
      const hyperparameters = { steps: Number(f.steps.value) };
      if (f.interval.value) hyperparameters.checkpoint_interval = Number(f.interval.value);
      try {
        const job = await api("POST", "/v1/fine_tuning/jobs", { base: f.base.value, dataset: f.dataset.value, model: f.model.value, hyperparameters });
        location.hash = `#/jobs/${job.id}`;
      } catch (error) { if (error.status !== 401) message.textContent = problemText(error); }
    } },
      h("div", {}, h("label", { for: "job-base" }, "Base checkpoint"), h("input", { id: "job-base", name: "base", required: true, placeholder: "model@production", maxlength: 200 })),
      h("div", {}, h("label", { for: "job-dataset" }, "Dataset"), h("select", { id: "job-dataset", name: "dataset", required: true },
        ready.map(d => h("option", { value: d.id }, `${d.name} (${d.embodiment || d.embodiment_id})`)))),
      h("div", {}, h("label", { for: "job-model" }, "Result model"), h("input", { id: "job-model", name: "model", required: true, maxlength: 100 })),
      h("div", {}, h("label", { for: "job-steps" }, "Steps"), h("input", { id: "job-steps", name: "steps", type: "number", min: 1, value: 1000, required: true })),
      h("div", {}, h("label", { for: "job-interval" }, "Save every (steps)"), h("input", { id: "job-interval", name: "interval", type: "number", min: 1 })),
      h("button", { type: "submit" }, "Create job")),
    message);
}

async function jobPage(id) {
  let job = await api("GET", `/v1/fine_tuning/jobs/${id}`);
  const progress = h("progress", { id: "job-progress", max: Math.max(1, job.total_steps), value: job.step, "aria-label": "Training progress" });
  const progressText = h("span", { id: "job-progress-text" });
  const status = h("span", { id: "job-status" });
  const chart = h("div", { id: "loss-chart" });
  const events = h("ol", { class: "events", id: "job-events", "aria-label": "Job events", tabindex: 0 });
  const message = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-job", onclick: async () => {
    cancel.disabled = true;
    try { job = await api("POST", `/v1/fine_tuning/jobs/${id}/cancel`); render(); }
    catch (e) { if (e.status !== 401) message.textContent = problemText(e); cancel.disabled = false; }
  } }, "Cancel job");
  const started = { at: Date.now(), step: job.step };

  function render() {
    status.replaceChildren(statusCell(job.status));
    progress.max = Math.max(1, job.total_steps);
    progress.value = job.step;
    const rate = (job.step - started.step) / ((Date.now() - started.at) / 1000);
    const eta = job.status === "running" && rate > 0 ? ` · about ${fmt.duration((job.total_steps - job.step) / rate)} left` : "";
    progressText.textContent = `${job.step} / ${job.total_steps} steps (${Math.round(100 * job.step / Math.max(1, job.total_steps))} %)${eta}`;
    cancel.hidden = job.status === "succeeded" || job.status === "failed" || job.status === "cancelled";
  }

  page(`Job ${id.slice(0, 8)} · ${job.model}`,
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, status),
      h("dt", {}, "Progress"), h("dd", {}, progress, " ", progressText),
      h("dt", {}, "Base"), h("dd", {}, h("a", { href: `#/checkpoints/${job.base_checkpoint_id}` }, job.base_checkpoint_id)),
      h("dt", {}, "Dataset"), h("dd", {}, h("a", { href: `#/datasets/${job.dataset_id}` }, job.dataset_id)),
      h("dt", {}, "Last saved step"), h("dd", {}, job.last_saved_step || "—"),
      h("dt", {}, "Resumed from"), h("dd", {}, job.resumed_from_step ?? "—"),
      h("dt", {}, "Result"), h("dd", {}, job.result_checkpoint_id ? h("a", { href: `#/checkpoints/${job.result_checkpoint_id}` }, job.result_checkpoint_id) : "—")),
    cancel, message,
    h("h2", {}, "Loss"),
    chart,
    h("p", {}, h("a", { href: `/v1/fine_tuning/jobs/${id}/metrics`, type: "application/json" }, "Metrics as JSON"), " · ",
      h("a", { href: `/v1/fine_tuning/jobs/${id}/loss_curve` }, "Loss curve (SVG)")),
    h("h2", {}, "Events"),
    events);
  render();

  let drawing = false, again = false;
  async function drawChart() {
    if (drawing) { again = true; return; }
    drawing = true;
    try { chart.replaceChildren(lossChart(await api("GET", `/v1/fine_tuning/jobs/${id}/metrics`))); }
    catch (e) { /* the next event redraws */ }
    drawing = false;
    if (again) { again = false; state.timer = setTimeout(drawChart, 1000); }
  }
  await drawChart();

  // Live: the events stream (the session cookie authenticates it; EventSource cannot send headers).
  stopLive();
  const source = new EventSource(`/v1/fine_tuning/jobs/${id}/events/stream`);
  state.stream = source;
  let lastDraw = 0;
  const onEvent = (e) => {
    const event = JSON.parse(e.data);
    events.prepend(h("li", {}, `${fmt.date(event.created_at)} ${event.level} ${event.message}`));
    while (events.children.length > 300) events.lastChild.remove();
    if (event.type === "metrics" && event.data && typeof event.data.step === "number") {
      job = { ...job, step: event.data.step, status: job.status === "queued" ? "running" : job.status };
      render();
      if (Date.now() - lastDraw > 2000) { lastDraw = Date.now(); drawChart(); }
    }
  };
  source.addEventListener("message", onEvent);
  source.addEventListener("metrics", onEvent);
  source.addEventListener("done", async () => {
    source.close();
    job = await api("GET", `/v1/fine_tuning/jobs/${id}`);
    render();
    drawChart();
  });
  source.addEventListener("revoked", () => { source.close(); showSignIn("Your key was revoked; the session ended."); });
}

// The loss curve drawn from the metrics route: smoothed losses over faint raw values (log scale), the learning rate
// on its own axis, and marks for evaluations, saved states and resumes.
function lossChart(m) {
  const W = 760, H = 320, L = 56, R = 150, T = 16, B = 36, pw = W - L - R, ph = H - T - B;
  const svg = s("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "loss-chart-title" },
    s("title", { id: "loss-chart-title" }, `Loss curve: ${m.steps.length} steps`));
  svg.append(s("rect", { x: L, y: T, width: pw, height: ph, fill: "none", stroke: "#888" }));
  if (m.steps.length === 0) { svg.append(s("text", { x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle", fill: "#4d4d4d" }, "no steps yet")); return svg; }
  const series = [["loss", "#0b5cad", p => p.loss], ["action loss", "#b35300", p => p.action_loss], ["spatial loss", "#1b7a1b", p => p.spatial_loss]];
  const values = m.steps.flatMap(p => series.map(([, , f]) => f(p))).filter(v => v > 0 && isFinite(v));
  let lo = Math.log10(Math.min(...values)), hi = Math.log10(Math.max(...values));
  if (hi - lo < 1e-6) { lo -= .5; hi += .5; }
  const minStep = Math.min(m.steps[0].step, ...m.resumed_from_steps), maxStep = Math.max(m.steps[m.steps.length - 1].step, minStep + 1);
  const X = st => L + (st - minStep) / (maxStep - minStep) * pw, Y = v => T + (hi - Math.log10(v)) / (hi - lo) * ph;
  const weight = m.steps.length < 20 ? 0 : Math.min(.99, 1 - 1 / Math.max(2, m.steps.length / 100));
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    svg.append(s("line", { x1: L, x2: L + pw, y1: Y(10 ** e), y2: Y(10 ** e), stroke: "#eee" }), s("text", { x: L - 6, y: Y(10 ** e) + 4, "text-anchor": "end", "font-size": 11 }, `1e${e}`));
  }
  for (let i = 0; i <= 4; i++) { const st = Math.round(minStep + (maxStep - minStep) * i / 4); svg.append(s("text", { x: X(st), y: T + ph + 16, "text-anchor": "middle", "font-size": 11 }, st)); }
  const mark = (x, color, dash, text) => svg.append(s("line", { x1: x, x2: x, y1: T, y2: T + ph, stroke: color, "stroke-dasharray": dash }, s("title", {}, text)));
  m.resumed_from_steps.forEach(st => mark(X(st), "#c62828", "6 3", `resumed from step ${st}`));
  m.saved_steps.forEach(st => svg.append(s("line", { x1: X(st), x2: X(st), y1: T + ph - 8, y2: T + ph, stroke: "#555", "stroke-width": 2 }, s("title", {}, `saved step ${st}`))));
  m.evaluations.forEach(ev => mark(X(ev.step), "#6a1b9a", "2 2", `evaluation at step ${ev.step}: ${JSON.stringify(ev.metrics)}`));
  let legend = 0;
  const key = (name, color, dash) => { const y = T + 10 + legend++ * 18; svg.append(s("line", { x1: W - R + 14, x2: W - R + 34, y1: y, y2: y, stroke: color, "stroke-width": 2, "stroke-dasharray": dash || "none" }), s("text", { x: W - R + 40, y: y + 4, "font-size": 12 }, name)); };
  for (const [name, color, f] of series) {
    const line = m.steps.filter(p => f(p) > 0 && isFinite(f(p)));
    if (line.length === 0) continue;
    if (weight > 0) svg.append(s("polyline", { class: "raw", fill: "none", stroke: color, "stroke-opacity": .25, points: line.map(p => `${X(p.step).toFixed(1)},${Y(f(p)).toFixed(1)}`).join(" ") }));
    let last = 0, n = 0;
    const smooth = line.map(p => { last = last * weight + (1 - weight) * f(p); n++; return last / (1 - weight ** n); });
    svg.append(s("polyline", { class: "smoothed", fill: "none", stroke: color, "stroke-width": 1.75, points: line.map((p, i) => `${X(p.step).toFixed(1)},${Y(smooth[i]).toFixed(1)}`).join(" ") }));
    key(name, color);
  }
  const rates = m.steps.filter(p => p.learning_rate >= 0);
  if (rates.length > 0) {
    const maxRate = Math.max(...rates.map(p => p.learning_rate)) || 1;
    svg.append(s("polyline", { class: "learning-rate", fill: "none", stroke: "#455a64", "stroke-dasharray": "5 3", points: rates.map(p => `${X(p.step).toFixed(1)},${(T + ph - p.learning_rate / maxRate * ph).toFixed(1)}`).join(" ") }));
    svg.append(s("text", { x: L + pw + 4, y: T + 8, "font-size": 11, fill: "#455a64" }, maxRate.toExponential(1)));
    key("learning rate", "#455a64", "5 3");
  }
  if (m.evaluations.length) key("evaluation", "#6a1b9a", "2 2");
  if (m.saved_steps.length) key("saved state", "#555");
  if (m.resumed_from_steps.length) key("resumed", "#c62828", "6 3");
  if (weight > 0) svg.append(s("text", { x: W - R + 14, y: T + 14 + legend * 18, "font-size": 11, fill: "#4d4d4d" }, `smoothing ${weight.toFixed(2)}, raw faint`));
  return svg;
}

// ---- usage and keys

async function usagePage() {
  const usage = await api("GET", "/v1/usage");
  const days = new Map(), models = new Map();
  for (const row of usage.data) {
    const d = days.get(row.day) || { day: row.day, requests: 0, actions: 0, compute_ms: 0 };
    d.requests += row.requests; d.actions += row.actions; d.compute_ms += row.compute_ms; days.set(row.day, d);
    const name = row.model ? `${row.model}@v${row.version}` : row.checkpoint_id ? row.checkpoint_id : "(no checkpoint)";
    const m = models.get(name) || { name, requests: 0, actions: 0, compute_ms: 0 };
    m.requests += row.requests; m.actions += row.actions; m.compute_ms += row.compute_ms; models.set(name, m);
  }
  const cols = [
    { title: "Requests", num: true, value: r => r.requests },
    { title: "Actions", num: true, value: r => r.actions },
    { title: "Compute (ms)", num: true, value: r => r.compute_ms },
  ];
  const q = usage.compute_quota;
  page("Usage",
    h("p", {}, `${usage.from} to ${usage.to}: ${usage.total_requests} requests, ${usage.total_actions} actions, ${usage.total_compute_ms} ms of compute.`),
    h("p", {}, q && q.limit_ms ? `Monthly compute quota: ${q.used_ms} of ${q.limit_ms} ms used.` : "No monthly compute quota."),
    table("Usage per day", [{ title: "Day", value: r => r.day }, ...cols], [...days.values()]),
    table("Usage per model", [{ title: "Model", value: r => r.name }, ...cols], [...models.values()].sort((a, b) => b.compute_ms - a.compute_ms)));
}

async function keysPage() {
  const keys = await api("GET", "/v1/api-keys");
  page("API keys",
    h("p", { class: "muted" }, "Your tenant's keys (never their secrets). A platform administrator creates and revokes them; a revoked key ends every session made from it."),
    table("API keys", [
      { title: "Name", value: k => k.name },
      { title: "Prefix", value: k => k.prefix },
      { title: "Scopes", value: k => k.scopes.join(", ") },
      { title: "Created", value: k => fmt.date(k.created_at) },
      { title: "Expires", value: k => fmt.date(k.expires_at) },
      { title: "Revoked", value: k => k.revoked_at ? fmt.date(k.revoked_at) : "" },
    ], keys.data));
}

// ---- routing and start

async function route() {
  if (!state.csrf) return;
  stopLive();
  const [, section, id] = (location.hash || "#/checkpoints").split("/");
  try {
    if (section === "checkpoints" && id) await checkpointPage(id);
    else if (section === "datasets" && id) await datasetPage(id);
    else if (section === "datasets") await datasetsPage();
    else if (section === "jobs" && id) await jobPage(id);
    else if (section === "jobs") await jobsPage();
    else if (section === "usage") await usagePage();
    else if (section === "keys") await keysPage();
    else await checkpointsPage();
  } catch (error) {
    if (error.status !== 401) page("Something went wrong", h("p", { class: "error", role: "alert" }, problemText(error)));
  }
  $("page-title")?.focus?.();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("api-key");
    $("sign-in-error").textContent = "";
    try {
      const session = await api("POST", "/console/session", { api_key: input.value.trim() });
      input.value = "";
      signedIn(session);
    } catch (error) { $("sign-in-error").textContent = problemText(error); }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/console/session"); } catch { /* signed out either way */ }
    showSignIn("Signed out.");
  });
  window.addEventListener("hashchange", route);
  try { signedIn(await api("GET", "/console/session")); }
  catch { showSignIn(""); }
});
