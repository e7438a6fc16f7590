// The supervisors' dashboard. Plain DOM, no libraries, no external assets:
// every number comes from the /v1 API and is written with its raw value in
// data-value (and a data-testid naming the API field), so that a test can
// compare the page with the API.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  return e;
}

const int = (n) => Number(n).toLocaleString("en-US");
const yuan = (fen) => (Number(fen) / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const pct = (r) => (Number(r) * 100).toFixed(1) + "%";

// num is a table cell or span showing a formatted number with its raw value.
function num(testid, value, fmt) {
  return el("td", { "data-testid": testid, "data-value": String(value), text: (fmt || int)(value) });
}

function setNum(id, value, fmt) {
  const e = $(id);
  e.dataset.value = String(value);
  e.textContent = (fmt || int)(value);
}

async function api(path) {
  const headers = {};
  const scope = $("scope").value.trim();
  if (scope) headers["X-Ledger-Scope"] = scope;
  const token = $("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token; // ledgerd --api-tokens
  const r = await fetch(path, { headers });
  const body = await r.json();
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  return body;
}

function query() {
  const q = new URLSearchParams();
  q.set("view", $("view").value);
  q.set("measure", $("measure").value);
  if ($("unit").value) q.set("unit", $("unit").value);
  return q;
}

function status(text, state) {
  const s = $("status");
  s.textContent = text;
  s.dataset.state = state;
}

function fillBody(table, rows) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...rows);
}

function drawChart(d) {
  const c = $("chart");
  c.replaceChildren();
  const W = 760, H = 300, L = 56, R = 16, T = 14, B = 34;
  // The measure's progress to each month's end (certified: less those
  // revoked), which ends the year at the progress shown above.
  const key = "cumulative_progress";
  const vals = d.months.map((m) => m[key]);
  const top = Math.max(d.target, ...vals, 1);
  const x = (i) => L + ((W - L - R) * (i + 0.5)) / 12;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  // Grid and axis labels.
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    c.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "axis" }));
    c.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", text: int(Math.round(v)) }));
  }
  d.months.forEach((m, i) => {
    c.append(svg("text", { x: x(i), y: H - 12, "text-anchor": "middle", text: String(m.month) }));
    // Monthly bars of the measure.
    const mv = d.measure === "certified" ? m.certified - m.revoked : m.trained;
    const bw = (W - L - R) / 12 - 10;
    c.append(svg("rect", { x: x(i) - bw / 2, y: y(mv), width: bw, height: Math.max(0, y(0) - y(mv)), class: "bar",
      "data-testid": "months." + m.month + "." + (d.measure === "certified" ? "certified" : "trained"), "data-value": String(mv) }));
  });
  const line = (pts, cls) => c.append(svg("polyline", { points: pts.map(([i, v]) => x(i) + "," + y(v)).join(" "), class: cls }));
  line(d.months.map((m, i) => [i, m.pro_rata_target]), "target");
  line(d.months.map((m, i) => [i, m[key]]), "actual");
  d.months.forEach((m, i) => {
    c.append(svg("circle", { cx: x(i), cy: y(m[key]), r: 3, fill: "#c81e1e",
      "data-testid": "months." + m.month + "." + key, "data-value": String(m[key]) }));
    c.append(svg("circle", { cx: x(i), cy: y(m.pro_rata_target), r: 0,
      "data-testid": "months." + m.month + ".pro_rata_target", "data-value": String(m.pro_rata_target) }));
  });
  $("chart-measure").textContent = d.measure;
}

const fundRows = [
  ["appropriation", "Budget allocated"],
  ["budget_available", "Available (uncommitted)"],
  ["committed", "Committed"],
  ["payable", "Payable"],
  ["paid", "Paid"],
  ["held_for_budget", "Held for lack of budget"],
  ["clawed_back", "Clawed back"],
  ["clawback_receivable", "Clawback receivable"],
  ["recovered", "Recovered"],
  ["written_off", "Written off"],
];

function renderQuota(d) {
  $("progress-year").textContent = String(d.year);
  setNum("kpi-target", d.target);
  $("kpi-target-note").textContent = d.target_set ? "set by the bureau" : "default";
  $("kpi-progress-label").textContent = d.measure === "certified" ? "Certified (net of revoked)" : "Trained";
  setNum("kpi-progress", d.progress);
  setNum("kpi-percent", d.percent_of_target, (v) => Number(v).toFixed(2));
  setNum("kpi-trained", d.totals.trained);
  setNum("kpi-certified", d.totals.certified);
  setNum("kpi-subsidised", d.totals.subsidised);
  setNum("kpi-passrate", d.totals.first_attempt_pass_rate, pct);
  drawChart(d);
  fillBody($("by-level"), d.by_level.map((r) => el("tr", {}, el("td", { text: r.name_zh + " " + r.name_en }),
    num("by_level." + r.level + ".trained", r.trained), num("by_level." + r.level + ".certified", r.certified),
    num("by_level." + r.level + ".subsidised", r.subsidised),
    num("by_level." + r.level + ".first_attempt_pass_rate", r.first_attempt_pass_rate, pct))));
  fillBody($("by-occupation"), d.by_occupation.map((r) => el("tr", {}, el("td", { text: r.name_zh + " " + r.name_en }),
    num("by_occupation." + r.occupation + ".trained", r.trained), num("by_occupation." + r.occupation + ".certified", r.certified),
    num("by_occupation." + r.occupation + ".subsidised", r.subsidised),
    num("by_occupation." + r.occupation + ".first_attempts", r.first_attempts),
    num("by_occupation." + r.occupation + ".first_attempt_pass_rate", r.first_attempt_pass_rate, pct))));
  fillBody($("by-unit"), d.by_unit.map((r) => el("tr", {}, el("td", { text: (r.unit_name || r.unit_code) + " (" + r.unit_code + ")" }),
    num("by_unit." + r.unit_code + ".trained", r.trained), num("by_unit." + r.unit_code + ".certified", r.certified),
    num("by_unit." + r.unit_code + ".subsidised", r.subsidised),
    num("by_unit." + r.unit_code + ".subsidised_fen", r.subsidised_fen, yuan),
    num("by_unit." + r.unit_code + ".first_attempt_pass_rate", r.first_attempt_pass_rate, pct))));
  fillBody($("fund-table"), fundRows.map(([k, label]) => el("tr", {}, el("td", { text: label }), num("fund." + k, d.fund[k], yuan))));
}

function renderFund(l) {
  const b = $("fund-balanced");
  b.dataset.value = String(l.trial_balance.balanced);
  b.textContent = l.trial_balance.balanced ? "debits = credits = ¥" + yuan(l.trial_balance.debits_fen) : "UNBALANCED";
  b.className = l.trial_balance.balanced ? "ok" : "bad";
}

function renderFlags(a) {
  const c = $("flags-count");
  c.dataset.value = String(a.open);
  c.textContent = "(" + int(a.open) + " open)";
  fillBody($("flags"), a.flags.slice(0, 25).map((f) => el("tr", { "data-flag": f.flag_id },
    el("td", { text: f.reason.code.replace("REASON_CODE_", "") }),
    el("td", { text: f.institution_id ? f.institution_id + (f.institution_name ? " " + f.institution_name : "") : "" }),
    // A district is not told which trainee of another unit a flag at one
    // of its institutions is about (the API withholds it, and the event).
    el("td", { text: f.subject_kind === "person" ? (f.subject ? f.subject.slice(0, 12) + "…" : "a trainee of another unit") : f.subject }),
    el("td", { text: f.detail }),
    el("td", {}, f.subject_kind === "person" && !f.subject ? String(f.position) :
      el("a", { href: "/v1/audit/events/" + f.position, text: String(f.position) })))));
}

async function load() {
  const year = $("year").value;
  const q = query();
  const aq = new URLSearchParams();
  if ($("unit").value) aq.set("unit", $("unit").value);
  aq.set("limit", "25");
  document.body.dataset.ready = "0";
  status("loading…", "loading");
  try {
    const [d, l, a] = await Promise.all([
      api("/v1/quota/" + year + "?" + q),
      api("/v1/fund?" + new URLSearchParams({ view: $("view").value, year, unit: $("unit").value })),
      api("/v1/anomalies?" + aq),
    ]);
    renderQuota(d);
    renderFund(l);
    renderFlags(a);
    const p = $("position");
    p.dataset.value = String(d.position);
    p.textContent = "log position " + int(d.position) + " · scope " + ($("scope").value || "default");
    status("up to date as of log position " + int(d.position), "ok");
    document.body.dataset.ready = "1";
  } catch (e) {
    status(String(e.message || e), "error");
    document.body.dataset.ready = "error";
  }
}

// Lookup: a trainee (by key, or masked ID and name) or an institution,
// with its timeline from the audit trail.
function timeline(trail) {
  return el("table", { class: "list" },
    el("thead", {}, el("tr", {}, el("th", { text: "Position" }), el("th", { text: "Rev" }), el("th", { text: "Committed" }),
      el("th", { text: "Event" }), el("th", { text: "Hash link" }))),
    el("tbody", {}, ...trail.events.map((e) => el("tr", {},
      el("td", {}, el("a", { href: "/v1/audit/events/" + e.position, text: String(e.position) })),
      el("td", { text: String(e.revision) }),
      el("td", { text: e.committed.slice(0, 19).replace("T", " ") }),
      el("td", { text: e.type.replace("subsidy.v1.", "") }),
      el("td", { class: e.hash_ok && e.link_ok ? "ok" : "bad", text: e.hash.slice(0, 12) + (e.hash_ok && e.link_ok ? " ✓" : " ✗") })))));
}

async function showTrainee(key) {
  const out = $("trainee-result");
  // An institution's scope reads no trainee's audit trail (it names the
  // other institutions the person dealt with): the status alone then.
  const [t, trail] = await Promise.all([api("/v1/trainees/" + encodeURIComponent(key)),
    api("/v1/audit/streams/trainee-" + encodeURIComponent(key) + "?limit=1000").catch(() => null)]);
  out.replaceChildren(
    el("h3", { text: t.masked_name + " " + t.masked_id + " · " + (t.unit.current_name || t.unit.code) }),
    el("table", { class: "num" },
      el("thead", {}, el("tr", {}, el("th", { text: "Entitlement" }), el("th", { text: "State" }), el("th", { text: "Amount ¥" }), el("th", { text: "Paid ¥" }), el("th", { text: "Holds" }))),
      el("tbody", {}, ...t.entitlements.map((e) => el("tr", {},
        el("td", { text: e.qualification.occupation + "/" + e.qualification.level }),
        el("td", { "data-testid": "trainee.entitlement.state", text: e.state }),
        num("trainee.entitlement.amount_fen", e.amount_fen, yuan), num("trainee.entitlement.paid_fen", e.paid_fen, yuan),
        el("td", { text: e.holds.filter((h) => h.active).map((h) => h.hold_id + (h.held_on ? " since " + h.held_on : "")).join(", ") }))),
        ...t.denials.map((d) => el("tr", {}, el("td", { text: d.qualification.occupation + "/" + d.qualification.level }),
          el("td", { text: "denied: " + d.reason.code.replace("REASON_CODE_", "") + (d.revised ? " (now: " + d.revised.reason.code.replace("REASON_CODE_", "") + ")" : "") + (d.superseded_by ? " (superseded: entitled later)" : "") }),
          el("td", { text: "" }), el("td", { text: "" }), el("td", { text: d.detail }))))),
    ...(trail ? [el("h3", { text: "Timeline (" + trail.events.length + " events, chain " + (trail.verified ? "verified" : "BROKEN") + ")" }),
      timeline(trail)] : [el("h3", { text: "Timeline: not in your scope" })]));
}

async function showInstitution(id) {
  const out = $("institution-result");
  const [c, trail] = await Promise.all([api("/v1/institutions/" + encodeURIComponent(id)), api("/v1/audit/streams/institution-" + encodeURIComponent(id) + "?limit=1000")]);
  out.replaceChildren(
    el("h3", { text: c.institution_id + " " + c.name + " · " + c.kind + " · " + (c.unit_name || c.unit_code) + (c.suspended ? " · SUSPENDED" : "") }),
    el("table", { class: "num" }, el("tbody", {},
      el("tr", {}, el("td", { text: "Enrolments / completions" }), el("td", { text: int(c.enrolments) + " / " + int(c.completions) })),
      el("tr", {}, el("td", { text: "First-attempt pass rate" }), num("institution.first_attempt.rate", c.first_attempt.rate, pct)),
      el("tr", {}, el("td", { text: "Advances outstanding ¥" }), num("institution.advances.outstanding_fen", c.advances.outstanding_fen, yuan)),
      el("tr", {}, el("td", { text: "Reimbursed ¥" }), num("institution.reimbursed_fen", c.reimbursed_fen, yuan)),
      el("tr", {}, el("td", { text: "Clawed back ¥ (outstanding)" }), el("td", { text: yuan(c.clawbacks.raised_fen) + " (" + yuan(c.clawbacks.outstanding_fen) + ")" })),
      el("tr", {}, el("td", { text: "Open flags / active holds" }), el("td", { text: int(c.open_flags) + " / " + int(c.active_holds) })))),
    el("h3", { text: "Timeline" }), timeline(trail));
}

async function lookupTrainee(ev) {
  ev.preventDefault();
  const v = $("lookup-trainee").value.trim();
  const out = $("trainee-result");
  try {
    if (/^[0-9a-f]{64}$/.test(v)) return await showTrainee(v);
    const l = await api("/v1/trainees?" + new URLSearchParams({ masked_id: v, masked_name: $("lookup-name").value.trim() }));
    if (l.trainees.length === 1) return await showTrainee(l.trainees[0].person_key);
    out.replaceChildren(el("p", { text: l.trainees.length + " match(es)" }),
      ...l.trainees.map((t) => {
        const b = el("button", { type: "button", text: t.masked_name + " " + t.masked_id + " " + t.current_unit_code });
        b.addEventListener("click", () => showTrainee(t.person_key).catch((e) => out.replaceChildren(el("p", { class: "bad", text: e.message }))));
        return b;
      }));
  } catch (e) {
    out.replaceChildren(el("p", { class: "bad", text: e.message }));
  }
}

async function init() {
  for (let y = 2025; y <= 2030; y++) $("year").append(el("option", { value: String(y), text: String(y) }));
  const now = new Date().getFullYear();
  $("year").value = params.get("year") || String(Math.min(2030, Math.max(2025, now)));
  if (params.get("view")) $("view").value = params.get("view");
  if (params.get("measure")) $("measure").value = params.get("measure");
  $("scope").value = params.get("scope") || localStorage.getItem("ledger-scope") || "";
  try {
    const units = await api("/v1/fund?view=current");
    const codes = [...new Set(units.funds.map((f) => f.unit_code + "\t" + f.unit_name))].sort();
    for (const c of codes) {
      const [code, name] = c.split("\t");
      $("unit").append(el("option", { value: code, text: (name || code) + " " + code }));
    }
  } catch (e) { /* a district or institution scope: the unit list stays short */ }
  if (params.get("unit")) $("unit").value = params.get("unit");
  for (const id of ["year", "view", "measure", "unit"]) $(id).addEventListener("change", load);
  $("scope").addEventListener("change", () => { localStorage.setItem("ledger-scope", $("scope").value.trim()); load(); });
  // The bearer token lives for this browser tab only.
  $("token").value = sessionStorage.getItem("ledger-token") || "";
  $("token").addEventListener("change", () => { sessionStorage.setItem("ledger-token", $("token").value.trim()); load(); });
  $("lookup").addEventListener("submit", lookupTrainee);
  $("lookup-institution-go").addEventListener("click", () => showInstitution($("lookup-institution").value.trim())
    .catch((e) => $("institution-result").replaceChildren(el("p", { class: "bad", text: e.message }))));
  await load();
  if (params.get("trainee")) await showTrainee(params.get("trainee")).catch(() => {});
  if (params.get("institution")) await showInstitution(params.get("institution")).catch(() => {});
}

document.addEventListener("DOMContentLoaded", init);
