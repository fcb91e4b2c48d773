// TrueScore web page: a product list by topic and a product page with a per-observer rating.
// Plain JavaScript against the JSON API of the same server; no framework, nothing from a CDN.
"use strict";

const PAGE = 25;
const state = { topic: "", q: "", offset: 0, observers: null, baseline: "operator" };

// ------------------------------------------------------------------------------------------ helpers
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 2) {
  return value === null || value === undefined || Number.isNaN(value) ? "-" : Number(value).toFixed(digits);
}

function signed(value, digits = 2) {
  if (value === null || value === undefined) return "-";
  return (value >= 0 ? "+" : "\u2212") + Math.abs(value).toFixed(digits);
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached. Is `truescore serve` running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

function showError(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = false;
}

function clearError() {
  const banner = $("#banner");
  banner.hidden = true;
  banner.textContent = "";
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function itemHref(id, observer) {
  const query = new URLSearchParams();
  if (observer) query.set("observer", observer);
  const at = ($("#at") && $("#at").value.trim()) || "";
  if (at) query.set("at", at);
  const q = query.toString() ? `?${query}` : "";
  return `#/item/${encodeURIComponent(id)}${q}`;
}

// ------------------------------------------------------------------------------------------ list
async function loadTopics() {
  const select = $("#topic");
  if (select.dataset.loaded) return;
  const topics = await api("/topics");
  for (const t of topics.data) {
    select.append(el("option", { value: t.topic, text: `${t.topic.replace(/^reviews\.public\./, "")} (${t.n_items})` }));
  }
  select.dataset.loaded = "1";
}

async function showList(params) {
  $("#item-view").hidden = true;
  $("#list-view").hidden = false;
  document.title = "TrueScore: products";
  state.topic = params.get("topic") || "";
  state.q = params.get("q") || "";
  state.offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const status = $("#list-status");
  status.textContent = "Loading products\u2026";
  try {
    await loadTopics();
    $("#topic").value = state.topic;
    $("#q").value = state.q;
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
    if (state.topic) query.set("topic", state.topic);
    if (state.q) query.set("q", state.q);
    const page = await api(`/items?${query}`);
    renderItems(page);
    clearError();
  } catch (err) {
    status.textContent = "";
    showError(`Could not load the products: ${err.message}`);
  }
}

function renderItems(page) {
  const body = $("#items tbody");
  body.replaceChildren();
  const status = $("#list-status");
  if (page.count === 0) {
    status.textContent = state.q || state.topic ? "No product matches this filter." : "The store has no products yet.";
  } else {
    const last = Math.min(page.offset + page.data.length, page.count);
    status.textContent = `Products ${page.offset + 1}\u2013${last} of ${page.count}`;
  }
  for (const item of page.data) {
    const fused = item.fused_mean !== null
      ? el("span", {}, el("strong", { text: fmt(item.fused_mean) }), ` \u00b1 ${fmt(item.fused_sd)}`)
      : item.quality !== null
        ? el("span", { title: "reliability-weighted quality (no fused ranking yet)" }, fmt(item.quality),
          ` \u00b1 ${fmt(item.quality_sd)}`)
        : el("span", { class: "muted", text: "not ranked" });
    const love = item.love_score !== null
      ? el("span", {}, fmt(item.love_score, 0), " ", el("span", { class: `tier tier-${(item.tier || "").toLowerCase()}`, text: item.tier || "" }))
      : el("span", { class: "muted", text: "-" });
    body.append(el("tr", {},
      el("th", { scope: "row" }, el("a", { href: itemHref(item.id), text: item.title || item.id })),
      el("td", { class: "topic", text: item.topic.replace(/^reviews\.public\./, "") }),
      el("td", { class: "num" }, fused),
      el("td", { class: "num" }, love),
      el("td", { class: "num", text: item.n_reviews }),
      el("td", { class: "num", text: fmt(item.plain_mean) })));
  }
  $("#prev").disabled = page.offset === 0;
  $("#next").disabled = page.offset + page.data.length >= page.count;
  $("#page-info").textContent = page.count ? `page ${Math.floor(page.offset / PAGE) + 1} of ${Math.ceil(page.count / PAGE)}` : "";
}

function listHash(offset) {
  const query = new URLSearchParams();
  if (state.topic) query.set("topic", state.topic);
  if (state.q) query.set("q", state.q);
  if (offset) query.set("offset", String(offset));
  const q = query.toString();
  return `#/${q ? "?" + q : ""}`;
}

// ------------------------------------------------------------------------------------------ item
async function loadObservers() {
  if (state.observers) return state.observers;
  const body = await api("/observers?limit=30");
  state.baseline = body.baseline_observer;
  state.observers = body.data;
  const select = $("#observer");
  for (const o of body.data) {
    const label = o.id === body.baseline_observer
      ? `${o.display_name || o.id} (public baseline)`
      : `${o.display_name || o.id} (trusts ${o.n_trusted})`;
    select.append(el("option", { value: o.id, text: label }));
  }
  return state.observers;
}

async function allReviews(id) {
  const out = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api(`/items/${encodeURIComponent(id)}/reviews?limit=500&offset=${offset}`);
    out.push(...page.data);
    if (out.length >= page.count || page.data.length === 0) return out;
  }
}

async function showItem(id, params) {
  $("#list-view").hidden = true;
  $("#item-view").hidden = false;
  const observer = params.get("observer") || null;
  const at = params.get("at") || "";
  $("#at").value = at;
  $("#rating-box").setAttribute("aria-busy", "true");
  try {
    await loadObservers();
    const who = observer || state.baseline;
    const select = $("#observer");
    if (![...select.options].some((o) => o.value === who)) select.append(el("option", { value: who, text: who }));
    select.value = who;
    const enc = encodeURIComponent(id);
    const [item, rating, reviews] = await Promise.all([
      api(`/items/${enc}`),
      api(`/items/${enc}/rating?observer=${encodeURIComponent(who)}&paths=false${at ? `&at=${encodeURIComponent(at)}` : ""}`),
      allReviews(id),
    ]);
    const love = await api(`/items/${enc}/love`).catch(() => null);
    const integrity = await api(`/items/${enc}/integrity`).catch(() => null);
    renderItem(item, love);
    renderIntegrity(integrity);
    renderRating(rating);
    renderChart(rating, reviews);
    renderContributions(rating, reviews);
    clearError();
  } catch (err) {
    if (err.status === 404) {
      $("#item-title").textContent = "Product not found";
      $("#item-meta").textContent = err.message;
    }
    showError(`Could not load this product: ${err.message}`);
  } finally {
    $("#rating-box").setAttribute("aria-busy", "false");
  }
}

function renderIntegrity(g) {
  const rings = $("#integrity-rings");
  rings.replaceChildren();
  if (!g || g.n_scored === 0) {
    $("#integrity-status").textContent = "Not checked yet (run `truescore score`).";
    $("#integrity-flagged").textContent = "-";
    $("#integrity-grade").textContent = "-";
    $("#integrity-reasons").textContent = "";
    return;
  }
  $("#integrity-status").textContent = g.attack_detected
    ? "Manipulation detected: the flagged reviews count less in the scores shown."
    : "No manipulation detected.";
  $("#integrity-flagged").textContent = `${g.n_flagged} of ${g.n_reviews} (${fmt(100 * g.share_flagged, 1)}%)`;
  $("#integrity-grade").textContent = g.evidence_grade;
  for (const ring of g.rings) rings.append(el("li", { text: `${ring.ring_id}: ${ring.description}` }));
  $("#integrity-reasons").textContent = g.top_reasons.length ? `Most common reasons: ${g.top_reasons.join("; ")}` : "";
}

function renderItem(item, love) {
  document.title = `TrueScore: ${item.title || item.id}`;
  $("#item-title").textContent = item.title || item.id;
  $("#item-meta").textContent = `${item.topic} \u00b7 ${item.n_reviews} review${item.n_reviews === 1 ? "" : "s"} \u00b7 id ${item.id}`;
  $("#fact-fused").textContent = item.fused_mean !== null ? `${fmt(item.fused_mean)} \u00b1 ${fmt(item.fused_sd)}` : "not ranked yet";
  $("#fact-love").textContent = item.love_score !== null ? `${fmt(item.love_score, 0)} / 100 (${item.tier})` : "-";
  $("#fact-quality").textContent = item.quality !== null ? `${fmt(item.quality)} \u00b1 ${fmt(item.quality_sd)}` : "-";
  $("#fact-plain").textContent = item.plain_mean !== null ? fmt(item.plain_mean) : "no reviews";
  const explanation = love && love.details && love.details.love ? love.details.love.explanation : "";
  $("#love-explanation").textContent = explanation || "";
}

function renderRating(r) {
  // headline: the observer's personal estimate for_you (issue 13); the seed's trust-weighted rating beside it
  const value = $("#rating-value");
  const mine = r.for_you === null || r.for_you === undefined ? null : r.for_you;
  value.dataset.rating = mine === null ? "" : String(mine);
  value.dataset.observer = r.observer;
  value.textContent = mine === null ? "\u2013" : fmt(mine);
  $("#rating-sd").textContent = mine === null ? "" : ` \u00b1 ${fmt(r.for_you_sd)}`;
  $("#rating-scale").textContent = mine === null ? "" : ` / ${fmt(r.scale_max, 0)}`;
  $("#for-you-explanation").textContent = r.for_you_explanation || "";
  const seed = $("#seed-rating-value");
  seed.dataset.rating = r.rating === null ? "" : String(r.rating);
  seed.textContent = r.rating === null ? "\u2013" : fmt(r.rating);
  $("#rating-display").textContent = r.rating === null
    ? `None of the reviewers ${r.observer} trusts (directly or through others) reviewed this product.`
    : r.display;
  $("#confidence-bar").style.width = `${Math.max(0, Math.min(100, r.confidence_pct))}%`;
  $("#confidence-text").textContent = `confidence ${fmt(r.confidence_pct, 0)}% \u00b7 ${r.contributing_reviews} of ${r.total_reviews_considered} reviews count \u00b7 total weight ${fmt(r.total_weight, 3)}`;
  const badge = $("#agreement");
  badge.textContent = r.agreement || (r.contributing_reviews === 1 ? "one trusted source" : "");
  badge.className = `badge ${r.agreement && r.agreement.endsWith("split") ? "split" : "agree"}`;
  badge.hidden = !badge.textContent;
  const delta = $("#delta");
  if (r.observer === state.baseline) {
    delta.textContent = "This is the public baseline: the operator's view, the same for every visitor.";
  } else if (r.anonymous_baseline_rating === null) {
    delta.textContent = "No public baseline for this product yet.";
  } else if (r.personalization_delta === null) {
    delta.textContent = `Public baseline ${fmt(r.anonymous_baseline_rating)}.`;
  } else {
    delta.textContent = `${signed(r.personalization_delta)} against the public baseline of ${fmt(r.anonymous_baseline_rating)}`;
  }
}

function renderChart(r, reviews) {
  const chart = $("#chart");
  chart.replaceChildren();
  if (reviews.length === 0) {
    chart.append(el("p", { class: "empty", text: "No reviews yet." }));
    return;
  }
  const lo = r.scale_min;
  const hi = r.scale_max;
  const buckets = [];
  for (let v = Math.ceil(lo); v <= Math.floor(hi); v += 1) buckets.push(v);
  const bucketOf = (x) => Math.min(buckets.length - 1, Math.max(0, Math.round(x) - buckets[0]));
  const raw = new Array(buckets.length).fill(0);
  const weighted = new Array(buckets.length).fill(0);
  for (const review of reviews) {
    const onScale = lo + ((review.rating - review.min_rating) / (review.max_rating - review.min_rating)) * (hi - lo);
    raw[bucketOf(onScale)] += 1 / reviews.length;
  }
  const total = r.total_weight || 0;
  for (const c of r.contributions) if (total > 0) weighted[bucketOf(c.rating)] += c.weight / total;
  const W = 520, H = 200, pad = 30, bw = (W - 2 * pad) / buckets.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 30}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-labelledby", "chart-title");
  const title = document.createElementNS(ns, "title");
  title.id = "chart-title";
  title.textContent = buckets.map((b, k) => `${b} stars: ${Math.round(raw[k] * 100)}% of reviews, ${Math.round(weighted[k] * 100)}% of trusted weight`).join("; ");
  svg.append(title);
  const peak = Math.max(0.01, ...raw, ...weighted);
  buckets.forEach((b, k) => {
    const x = pad + k * bw;
    for (const [share, cls, dx] of [[raw[k], "raw", 0.12], [weighted[k], "weighted", 0.5]]) {
      const h = (share / peak) * (H - 20);
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", String(x + dx * bw));
      rect.setAttribute("y", String(H - h));
      rect.setAttribute("width", String(bw * 0.36));
      rect.setAttribute("height", String(Math.max(h, share > 0 ? 1 : 0)));
      rect.setAttribute("class", `bar ${cls}`);
      svg.append(rect);
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(x + dx * bw + bw * 0.18));
      label.setAttribute("y", String(H - h - 4));
      label.setAttribute("class", "bar-label");
      label.setAttribute("text-anchor", "middle");
      label.textContent = share > 0 ? `${Math.round(share * 100)}%` : "";
      svg.append(label);
    }
    const axis = document.createElementNS(ns, "text");
    axis.setAttribute("x", String(x + bw / 2));
    axis.setAttribute("y", String(H + 20));
    axis.setAttribute("text-anchor", "middle");
    axis.setAttribute("class", "axis");
    axis.textContent = `${b}\u2605`;
    svg.append(axis);
  });
  chart.append(svg);
  if (r.contributions.length === 0) {
    chart.append(el("p", { class: "empty", text: "No trusted weight for this observer: only the raw distribution is shown." }));
  }
}

function renderContributions(r, reviews) {
  const byId = new Map(reviews.map((x) => [x.id, x]));
  const body = $("#contributions tbody");
  body.replaceChildren();
  const empty = $("#contrib-empty");
  empty.hidden = r.contributions.length > 0;
  empty.textContent = r.contributions.length ? "" : `No review counts for ${r.observer}: nobody they trust reviewed this product. The public view is on the right.`;
  const top = r.contributions.length ? r.contributions[0].weight : 1;
  for (const c of r.contributions) {
    const review = byId.get(c.review_id) || {};
    const text = review.text || review.title || "";
    const weight = el("span", { class: "weight" },
      el("span", { class: "weight-bar", style: `width:${Math.round((c.weight / top) * 100)}%` }),
      el("span", { class: "weight-num", text: fmt(c.weight, 3) }));
    const via = c.top_intermediary_quid
      ? el("span", {}, "via ", el("strong", { text: c.top_intermediary_quid }))
      : c.trust_source === "verified_purchase" ? "verified purchase" : "direct";
    body.append(el("tr", {},
      el("th", { scope: "row", text: c.reviewer }),
      el("td", { class: "num", text: fmt(c.rating, 1) }),
      el("td", {}, weight),
      el("td", {}, via),
      el("td", { class: "num factors", text: [c.T, c.H, c.A, c.R, c.F].map((v) => fmt(v)).join(" \u00b7 ") }),
      el("td", { class: "num", text: fmt(review.quality) }),
      el("td", { class: `num ${review.fake_probability > 0.5 ? "warn" : ""}`, text: fmt(review.fake_probability) }),
      el("td", { class: "num", text: fmt(review.sentiment) }),
      el("td", { class: "text", title: text, text: text.length > 90 ? `${text.slice(0, 90)}\u2026` : text })));
  }
}

// ------------------------------------------------------------------------------------------ routing
function route() {
  const { path, params } = parseHash();
  const match = path.match(/^\/item\/(.+)$/);
  if (match) showItem(decodeURIComponent(match[1]), params);
  else showList(params);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.topic = $("#topic").value;
    state.q = $("#q").value.trim();
    location.hash = listHash(0);
  });
  $("#topic").addEventListener("change", () => {
    state.topic = $("#topic").value;
    location.hash = listHash(0);
  });
  $("#prev").addEventListener("click", () => { location.hash = listHash(Math.max(0, state.offset - PAGE)); });
  $("#next").addEventListener("click", () => { location.hash = listHash(state.offset + PAGE); });
  $("#observer").addEventListener("change", () => {
    const { path } = parseHash();
    const id = decodeURIComponent(path.replace(/^\/item\//, ""));
    location.hash = itemHref(id, $("#observer").value);
  });
  $("#observer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const other = $("#observer-other").value.trim() || $("#observer").value;
    if (!other) return;
    const { path } = parseHash();
    location.hash = itemHref(decodeURIComponent(path.replace(/^\/item\//, "")), other);
  });
  window.addEventListener("hashchange", route);
  route();
});
