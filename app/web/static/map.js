// The map page: the week's lägesbild of an area, from the published run the caller may see.
//
// Beside the map, /api/v1/lagesbild gives the ranked hotspots, what changed, the figures and
// the run's provenance (the text alternative to the map). On the map, each run layer is drawn
// from that run's vector tiles (TiledFeatures); boundaries and raw incidents from OGC API –
// Features items (PagedFeatures). The URL holds area, week, profile,
// layers, map view and the open hotspot, so a link opens the same picture; ?print=1 is the
// A4 print view.

const boot = JSON.parse(document.getElementById("bootstrap").textContent);
const BASE = boot.base;
const NAMES = boot.names;
const PAGE_SIZE = 1000;
const MAX_PAGES = 20; // 20 000 features a layer at most; zooming in shows the rest
const EMPTY = { type: "FeatureCollection", features: [] };
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the URL

function readState() {
  const q = new URLSearchParams(location.search);
  const view = (q.get("view") || "").split(",").map(Number);
  return {
    area: q.get("area"),
    week: q.get("week"),
    profile: q.get("profile"),
    layers: q.has("layers") ? q.get("layers").split(",").filter(Boolean) : ["hotspots"],
    view: view.length === 3 && view.every(Number.isFinite)
      ? { lon: view[0], lat: view[1], zoom: view[2] } : null,
    hotspot: q.get("hotspot"),
    print: q.get("print") === "1",
  };
}

const state = readState();

function query(print) {
  const q = new URLSearchParams();
  for (const name of ["area", "week", "profile"]) if (state[name]) q.set(name, state[name]);
  q.set("layers", state.layers.join(","));
  if (state.view) {
    const v = state.view;
    q.set("view", `${v.lon.toFixed(5)},${v.lat.toFixed(5)},${v.zoom.toFixed(2)}`);
  }
  if (state.hotspot) q.set("hotspot", state.hotspot);
  if (print) q.set("print", "1");
  return q.toString();
}

function writeState() {
  history.replaceState(null, "", `${location.pathname}?${query(state.print)}`);
  $("print-link").href = `${location.pathname}?${query(true)}`;
  $("back-link").href = `${location.pathname}?${query(false)}`;
}

// ---------------------------------------------------------------- reading the service

async function getJSON(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 401) {
    const here = location.pathname.slice(BASE.length) + location.search;
    location.assign(`${BASE}/login?next=${encodeURIComponent(here)}`);
    throw new Error("the session has ended");
  }
  if (!answer.ok) {
    let detail = answer.statusText;
    try { detail = (await answer.json()).detail || detail; } catch { /* not JSON */ }
    const error = new Error(detail);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}

function say(text) {
  $("status").textContent = text;
  if (text) setTimeout(() => { if ($("status").textContent === text) $("status").textContent = ""; }, 6000);
}

// A layer's features from paged OGC API items: the items in the view (padded by half a view
// each way), PAGE_SIZE a page, `next` links followed. The boundaries and the raw incidents are
// read so; the run layers come as vector tiles (TiledFeatures), whose style layers read the
// same properties.
class PagedFeatures {
  constructor(map, collection, params = {}) {
    this.map = map;
    this.collection = collection;
    this.params = params;
    this.loaded = null; // the bbox whose features the source holds
    this.reading = null; // the bbox being read, and the promise of its reading
    this.generation = 0;
    this.count = 0;
    this.complete = true;
  }

  get sourceId() { return `src-${this.collection}-${this.params.kind || "run"}`; }

  sourceSpec() { return { type: "geojson", data: EMPTY }; }

  setParams(params) {
    this.params = params;
    this.loaded = null;
    this.reading = null;
  }

  async refresh(bounds) {
    if (this.loaded && contains(this.loaded, bounds)) return false;
    if (this.reading && contains(this.reading.box, bounds)) return this.reading.done;
    const box = padded(bounds);
    const done = this.read(box);
    this.reading = { box, done };
    try {
      return await done;
    } finally {
      if (this.reading && this.reading.done === done) this.reading = null;
    }
  }

  async read(box) {
    const generation = ++this.generation;
    const q = new URLSearchParams({ ...this.params, limit: String(PAGE_SIZE), bbox: box.map((v) => v.toFixed(5)).join(",") });
    let url = `${BASE}/ogc/collections/${this.collection}/items?${q}`;
    const features = [];
    let pages = 0;
    while (url && pages < MAX_PAGES) {
      const page = await getJSON(url);
      if (generation !== this.generation) return false; // a newer view or run took over
      features.push(...page.features);
      const next = (page.links || []).find((l) => l.rel === "next");
      url = next ? next.href : null;
      pages += 1;
    }
    this.complete = !url;
    this.count = features.length;
    this.map.getSource(this.sourceId).setData({ type: "FeatureCollection", features });
    this.loaded = box;
    return true;
  }
}

// A run layer's features from its vector tiles (/ogc/collections/{id}/tiles/WebMercatorQuad):
// MapLibre asks for the tiles of the view itself, the browser keeps them (ETag, private), and
// each feature's id is the same at every zoom, so feature state (hotspot labels) stays put.
class TiledFeatures {
  constructor(map, collection, params = {}) {
    this.map = map;
    this.collection = collection;
    this.params = params;
    this.changed = true; // the run changed since the last refresh
    this.count = 0;
    this.complete = true; // tiles hold every feature of their box
  }

  get sourceId() { return `tiles-${this.collection}`; }

  get sourceLayer() { return this.collection; }

  url() {
    const q = new URLSearchParams(this.params).toString();
    return `${location.origin}${BASE}/ogc/collections/${this.collection}/tiles/WebMercatorQuad/{z}/{y}/{x}${q ? `?${q}` : ""}`;
  }

  sourceSpec() { return { type: "vector", tiles: [this.url()], minzoom: 5, maxzoom: 16 }; }

  setParams(params) {
    this.params = params;
    this.changed = true;
    const source = this.map.getSource(this.sourceId);
    if (source) source.setTiles([this.url()]);
  }

  async refresh() {
    if (!this.changed) return false;
    this.changed = false;
    const idle = new Promise((resolve) => this.map.once("idle", resolve));
    this.map.triggerRepaint();
    await idle;
    this.count = this.map.querySourceFeatures(this.sourceId, { sourceLayer: this.sourceLayer }).length;
    return true;
  }

  features() { return this.map.querySourceFeatures(this.sourceId, { sourceLayer: this.sourceLayer }); }
}

function contains(outer, inner) {
  return outer[0] <= inner[0] && outer[1] <= inner[1] && outer[2] >= inner[2] && outer[3] >= inner[3];
}

function padded(b) {
  const dx = (b[2] - b[0]) / 2;
  const dy = (b[3] - b[1]) / 2;
  return [Math.max(-180, b[0] - dx), Math.max(-85, b[1] - dy), Math.min(180, b[2] + dx), Math.min(85, b[3] + dy)];
}

// ---------------------------------------------------------------- the layers

const CHANGE_COLOURS = { new: "#b2182b", grown: "#e66101", shrunk: "#2166ac", stable: "#5e3c99", gone: "#737373" };
const GISTAR_COLOURS = { "-3": "#2166ac", "-2": "#67a9cf", "-1": "#d1e5f0", 1: "#fddbc7", 2: "#ef8a62", 3: "#b2182b" };
const GISTAR_WORDS = { 3: "hotspot, 99 %", 2: "hotspot, 95 %", 1: "hotspot, 90 %", "-1": "kallfläck, 90 %", "-2": "kallfläck, 95 %", "-3": "kallfläck, 99 %" };
const EMERGING_COLOURS = {
  new_hot: "#fcbba1", consecutive_hot: "#fc9272", intensifying_hot: "#a50f15", persistent_hot: "#de2d26",
  diminishing_hot: "#fb6a4a", sporadic_hot: "#feb24c", oscillating_hot: "#fd8d3c", historical_hot: "#bdbdbd",
  new_cold: "#c6dbef", consecutive_cold: "#9ecae1", intensifying_cold: "#08519c", persistent_cold: "#3182bd",
  diminishing_cold: "#6baed6", sporadic_cold: "#a1d99b", oscillating_cold: "#41ab5d", historical_cold: "#d9d9d9",
};
const FORECAST_STEPS = [[10, "#7a0177", "de 10 rutorna med högst risk"], [25, "#c51b8a", "plats 11–25"], [50, "#f768a1", "plats 26–50"]];
const GRID_STEPS = [[5, "#edf8e9"], [10, "#bae4b3"], [20, "#74c476"], [40, "#238b45"]];

function matchOn(expression, colours, fallback) {
  return ["match", expression, ...Object.entries(colours).flatMap(([k, c]) => [isNaN(Number(k)) ? k : Number(k), c]), fallback];
}

// the picture's label (the viewer's is its own), else the feature's (an analyst's gone hotspot)
const hotspotColour = matchOn(["coalesce", ["feature-state", "label"], ["get", "change_label"], "stable"], CHANGE_COLOURS, CHANGE_COLOURS.stable);

const LAYER_STYLES = {
  hotspots: [
    { id: "hotspots-fill", type: "fill", paint: { "fill-color": hotspotColour, "fill-opacity": 0.45 } },
    { id: "hotspots-line", type: "line", paint: { "line-color": hotspotColour, "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 4, 2] } },
  ],
  density: [{ id: "density-fill", type: "fill", paint: { "fill-color": "#fd8d3c", "fill-opacity": 0.6 } }],
  gistar: [{ id: "gistar-fill", type: "fill", filter: ["!=", ["get", "bin"], 0], paint: { "fill-color": matchOn(["get", "bin"], GISTAR_COLOURS, "rgba(0,0,0,0)"), "fill-opacity": 0.65 } }],
  emerging: [{ id: "emerging-fill", type: "fill", paint: { "fill-color": matchOn(["get", "pattern"], EMERGING_COLOURS, "rgba(0,0,0,0)"), "fill-opacity": 0.7 } }],
  forecast: [{ id: "forecast-fill", type: "fill", filter: ["<=", ["get", "rank"], 50], paint: { "fill-color": ["step", ["get", "rank"], FORECAST_STEPS[0][1], 11, FORECAST_STEPS[1][1], 26, FORECAST_STEPS[2][1]], "fill-opacity": 0.6 } }],
  "viewer-grid": [{ id: "grid-fill", type: "fill", paint: { "fill-color": ["step", ["get", "incident_count"], GRID_STEPS[0][1], ...GRID_STEPS.slice(1).flatMap(([n, c]) => [n, c])], "fill-opacity": 0.6 } }],
  incidents: [{ id: "incidents-dots", type: "circle", paint: { "circle-radius": 4, "circle-color": "#1b1f24", "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 } }],
};
const DRAW_ORDER = ["viewer-grid", "density", "gistar", "emerging", "forecast", "hotspots", "incidents"];

let map = null;
let picture = null;
const sources = {}; // layer id -> PagedFeatures
const markers = [];
let moveTimer = null;

function runParams(layer) {
  if (layer === "incidents") {
    return { area: picture.area.code, datetime: `${picture.week.start}/${picture.week.end}` };
  }
  return { run: String(picture.run.id) };
}

function allowed() {
  return new Set((picture ? picture.layers : []).map((l) => l.id));
}

function baseStyle() {
  const url = boot.basemap.url;
  const style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f3" } }],
  };
  if (url && url.includes("{z}")) {
    style.sources.basemap = { type: "raster", tiles: [url], tileSize: 256, attribution: boot.basemap.attribution || "" };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
    return style;
  }
  return url || style;
}

function createMap() {
  maplibregl.setWorkerUrl(boot.worker);
  const options = {
    container: "map",
    style: baseStyle(),
    center: [15, 62],
    zoom: 4,
    attributionControl: { compact: true, customAttribution: boot.basemap.url ? boot.basemap.attribution || undefined : undefined },
    locale: {
      "Map.Title": "Karta",
      "NavigationControl.ZoomIn": "Zooma in",
      "NavigationControl.ZoomOut": "Zooma ut",
      "NavigationControl.ResetBearing": "Återställ kartan mot norr",
      "AttributionControl.ToggleAttribution": "Visa källor",
      "ScaleControl.Meters": "m",
      "ScaleControl.Kilometers": "km",
    },
    canvasContextAttributes: { preserveDrawingBuffer: state.print },
  };
  if (state.view) Object.assign(options, { center: [state.view.lon, state.view.lat], zoom: state.view.zoom });
  map = new maplibregl.Map(options);
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  return new Promise((resolve) => map.on("load", resolve));
}

function addLayers() {
  const boundary = new PagedFeatures(map, "areas", { kind: "kommun" });
  const tatort = new PagedFeatures(map, "areas", { kind: "tatort" });
  sources.kommun = boundary;
  sources.tatort = tatort;
  for (const id of DRAW_ORDER) {
    // the raw incidents are no run layer and have no tiles: they stay paged items
    sources[id] = id === "incidents" ? new PagedFeatures(map, id, {}) : new TiledFeatures(map, id, {});
    map.addSource(sources[id].sourceId, sources[id].sourceSpec());
    const from = sources[id].sourceLayer ? { "source-layer": sources[id].sourceLayer } : {};
    for (const style of LAYER_STYLES[id]) {
      map.addLayer({ ...style, ...from, source: sources[id].sourceId, layout: { visibility: "none" } });
    }
  }
  map.addSource(boundary.sourceId, boundary.sourceSpec());
  map.addSource(tatort.sourceId, tatort.sourceSpec());
  map.addLayer({ id: "tatort-line", type: "line", source: tatort.sourceId, paint: { "line-color": "#4a525c", "line-width": 1.2, "line-dasharray": [3, 2] } });
  map.addLayer({ id: "kommun-line", type: "line", source: boundary.sourceId, paint: { "line-color": "#1b1f24", "line-width": 2 } });
  map.on("click", "hotspots-fill", (event) => {
    const hit = event.features && event.features[0];
    const found = hit && picture.hotspots.find((h) => h.id === hit.id);
    if (found) openPanel(found);
  });
  map.on("mouseenter", "hotspots-fill", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "hotspots-fill", () => { map.getCanvas().style.cursor = ""; });
  map.on("moveend", () => {
    const c = map.getCenter();
    state.view = { lon: c.lng, lat: c.lat, zoom: map.getZoom() };
    writeState();
    clearTimeout(moveTimer);
    moveTimer = setTimeout(refreshLayers, 200);
  });
}

function bounds() {
  const b = map.getBounds();
  return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
}

async function refreshLayers() {
  const view = bounds();
  const visible = state.layers.filter((id) => allowed().has(id));
  const reads = [sources.kommun.refresh(view), sources.tatort.refresh(view)];
  for (const id of visible) reads.push(sources[id].refresh(view).then((changed) => { if (changed) afterLoad(id); }));
  const hadTatorter = sources.tatort.count > 0;
  try {
    await Promise.all(reads);
  } catch (error) {
    say(`Lagret kunde inte läsas: ${error.message}`);
  }
  if ((sources.tatort.count > 0) !== hadTatorter && picture) renderLegend();
  const partial = visible.filter((id) => !sources[id].complete);
  $("map-note").hidden = partial.length === 0;
  $("map-note").textContent = partial.length ? "Zooma in för att se alla rutor." : "";
  map.once("idle", () => {
    if (!performance.getEntriesByName("est-first-layers").length) performance.mark("est-first-layers");
    document.body.dataset.state = "ready";
  });
  map.triggerRepaint();
}

function afterLoad(id) {
  if (id === "hotspots") markHotspots();
  if (id === "density") {
    const values = sources.density.features().map((f) => f.properties.density).filter(Number.isFinite);
    const top = values.length ? Math.max(...values) : 1;
    map.setPaintProperty("density-fill", "fill-color", ["interpolate", ["linear"], ["get", "density"], 0, "#ffffcc", top / 2, "#fd8d3c", top, "#bd0026"]);
    sources.density.top = top;
    renderLegend();
  }
}

function showLayers() {
  const on = new Set(state.layers.filter((id) => allowed().has(id)));
  for (const id of DRAW_ORDER) {
    for (const style of LAYER_STYLES[id]) map.setLayoutProperty(style.id, "visibility", on.has(id) ? "visible" : "none");
  }
}

function useRun() {
  for (const id of DRAW_ORDER) {
    if (allowed().has(id)) sources[id].setParams(runParams(id));
    else if (!sources[id].sourceLayer) map.getSource(sources[id].sourceId).setData(EMPTY);
  }
}

function markHotspots() {
  for (const h of picture.hotspots) {
    if (h.id == null) continue;
    const where = { source: sources.hotspots.sourceId, sourceLayer: sources.hotspots.sourceLayer, id: h.id };
    map.setFeatureState(where, { label: h.label, selected: h.key === state.hotspot });
  }
}

function placeMarkers() {
  markers.splice(0).forEach((m) => m.remove());
  if (!state.layers.includes("hotspots")) return;
  for (const h of picture.hotspots) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "marker";
    button.textContent = String(h.number);
    button.setAttribute("aria-label", `Hotspot ${h.number}: ${h.label_sv}, ${h.count_text} händelser`);
    button.addEventListener("click", (e) => { e.stopPropagation(); openPanel(h); });
    const [w, s, e, n] = h.bbox;
    markers.push(new maplibregl.Marker({ element: button }).setLngLat([(w + e) / 2, (s + n) / 2]).addTo(map));
  }
}

// ---------------------------------------------------------------- the side column

function option(select, value, text, selected, disabled = false) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  o.selected = selected;
  o.disabled = disabled;
  select.append(o);
}

function fillChoices() {
  const area = $("area"), week = $("week"), group = $("group"), profile = $("profile");
  for (const s of [area, week, group, profile]) s.replaceChildren();
  for (const a of picture.areas) option(area, a.code, a.name, a.code === picture.area.code);
  for (const w of picture.weeks) option(week, w.label, w.title + (w.provisional ? " (pågår)" : ""), w.label === picture.week.label);
  const current = picture.profiles.find((p) => p.name === picture.profile);
  for (const g of picture.groups) {
    const computed = picture.profiles.find((p) => p.group === g.code);
    option(group, g.code, computed ? g.name : `${g.name} (ingen körning)`, current && current.group === g.code, !computed);
  }
  for (const p of picture.profiles) option(profile, p.name, `${p.name} (${p.group_name})`, p.name === picture.profile);
}

function renderTitle() {
  $("title-area").textContent = picture.area.name;
  const version = picture.audience === "viewer" ? "visningsversion med skyddade värden" : "analytikerversion med exakta antal";
  $("title-week").textContent = `${picture.week.title}, ${picture.week.days}${picture.week.provisional ? " (veckan pågår)" : ""} · ${version}`;
  document.title = `Lägesbild ${picture.area.name}, ${picture.week.title} – EST`;
}

function renderLayerList() {
  const list = $("layer-list");
  list.replaceChildren();
  for (const layer of picture.layers) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `layer-${layer.id}`;
    box.value = layer.id;
    box.checked = state.layers.includes(layer.id);
    box.addEventListener("change", () => {
      state.layers = box.checked ? [...new Set([...state.layers, layer.id])] : state.layers.filter((l) => l !== layer.id);
      showLayers();
      placeMarkers();
      renderLegend();
      writeState();
      refreshLayers();
    });
    label.append(box, document.createTextNode(layer.title));
    list.append(label);
  }
}

function entry(colour, text, kind = "") {
  const row = document.createElement("div");
  row.className = "entry";
  const swatch = document.createElement("span");
  swatch.className = `swatch ${kind}`;
  swatch.style.background = kind === "line" ? "transparent" : colour;
  swatch.style.borderColor = kind === "line" ? colour : "";
  swatch.setAttribute("aria-hidden", "true");
  row.append(swatch, document.createTextNode(text));
  return row;
}

function legendBlock(title, rows) {
  const block = document.createElement("div");
  const h = document.createElement("h3");
  h.textContent = title;
  block.append(h, ...rows);
  return block;
}

function renderLegend() {
  const legend = $("legend");
  const lines = [entry("#1b1f24", "kommungräns", "line")];
  if (sources.tatort && sources.tatort.count) lines.push(entry("#4a525c", "tätort", "line")); // only when loaded
  legend.replaceChildren(legendBlock("Gränser", lines));
  const titles = Object.fromEntries(picture.layers.map((l) => [l.id, l.title]));
  const on = state.layers.filter((id) => allowed().has(id));
  for (const id of DRAW_ORDER.slice().reverse()) {
    if (!on.includes(id)) continue;
    let rows = [];
    if (id === "hotspots") rows = Object.entries(CHANGE_COLOURS).map(([k, c]) => entry(c, NAMES.change[k]));
    if (id === "gistar") rows = [3, 2, 1, -1, -2, -3].map((b) => entry(GISTAR_COLOURS[b], GISTAR_WORDS[b]));
    if (id === "emerging") {
      const present = picture.emerging.map((e) => e.class);
      const shown = present.length ? present : Object.keys(EMERGING_COLOURS);
      rows = shown.filter((c) => EMERGING_COLOURS[c]).map((c) => entry(EMERGING_COLOURS[c], NAMES.emerging[c]));
    }
    if (id === "forecast") rows = FORECAST_STEPS.map(([, c, t]) => entry(c, t));
    if (id === "viewer-grid") rows = GRID_STEPS.map(([n, c], i) => entry(c, i + 1 < GRID_STEPS.length ? `${n}–${GRID_STEPS[i + 1][0] - 1} händelser` : `${n} eller fler`));
    if (id === "density") {
      const top = sources.density.top;
      rows = [entry("#ffffcc", "låg"), entry("#fd8d3c", "medel"), entry("#bd0026", top ? `hög (${Math.round(top)} per km²)` : "hög")];
    }
    if (id === "incidents") rows = [entry("#1b1f24", "en händelse", "dot")];
    legend.append(legendBlock(titles[id], rows));
  }
}

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function renderSummary() {
  const box = $("summary");
  box.replaceChildren();
  const fresh = picture.new.length ? `nr ${picture.new.join(", ")}` : "inga";
  box.append(
    text("p", `Nya hotspotar: ${fresh}. Försvunna sedan förra veckan: ${picture.gone}.`),
    text("p", `Koncentration: ${picture.concentration.words}`),
  );
  if (picture.audience === "viewer") box.append(text("p", `Visade antal: avrundade, under ${picture.k} visas < ${picture.k}.`, "hint"));
}

function renderList() {
  const list = $("hotspot-list");
  list.replaceChildren();
  if (!picture.hotspots.length) list.append(text("li", "Inga hotspotar den här veckan."));
  for (const h of picture.hotspots) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.key = h.key;
    button.setAttribute("aria-pressed", String(h.key === state.hotspot));
    const place = h.name ? `${h.name}, ` : "";
    button.append(
      text("span", String(h.number), "number"),
      text("span", `${place}${h.count_text} händelser`),
      text("span", h.label_sv, "chip"),
    );
    button.addEventListener("click", () => openPanel(h, true));
    item.append(button);
    list.append(item);
  }
}

function renderFigures() {
  const body = $("figures").tBodies[0];
  body.replaceChildren();
  for (const f of picture.figures) {
    const row = document.createElement("tr");
    row.append(text("th", f.name), text("td", f.this_text, "n"), text("td", f.last_text, "n"), text("td", f.words));
    row.firstChild.scope = "row";
    body.append(row);
  }
}

function renderProvenance() {
  const run = picture.run;
  const facts = [
    ["Version", picture.audience === "viewer" ? "visningsversion: skyddade värden" : "analytikerversion: exakta antal"],
    ["Körning", `nr ${run.id}, publicerad ${run.published}`],
    ["Fönster", `${run.window} (${run.window_weeks} veckor)`],
    ["Metod", run.method],
    ["Rutor", `${run.cell_size_m} m`],
    ["Underlag", run.left_out],
  ];
  $("provenance").replaceChildren(...facts.flatMap(([t, d]) => [text("dt", t), text("dd", d)]));
}

// A bar chart of the 12 weeks (the run's week dark) and the same numbers as a table.
function chart(series) {
  const width = 320, height = 120, pad = 16;
  const values = series.map((w) => w.count);
  const top = Math.max(1, ...values);
  const step = (width - 2 * pad) / series.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 28}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Händelser per vecka: " + series.map((w) => `${w.week} ${w.text}`).join(", "));
  series.forEach((w, i) => {
    const h = (w.count / top) * (height - pad);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(pad + i * step + 2));
    bar.setAttribute("y", String(height - h));
    bar.setAttribute("width", String(step - 4));
    bar.setAttribute("height", String(h));
    bar.setAttribute("class", i === series.length - 1 ? "bar-now" : "bar-before");
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", String(pad + i * step + step / 2));
    value.setAttribute("y", String(height - h - 3));
    value.setAttribute("text-anchor", "middle");
    value.textContent = w.text;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(pad + i * step + step / 2));
    label.setAttribute("y", String(height + 14));
    label.setAttribute("text-anchor", "middle");
    label.textContent = w.week;
    svg.append(bar, value, label);
  });
  const table = document.createElement("table");
  table.className = "sr-only";
  const head = document.createElement("tr");
  head.append(text("th", "Vecka"), text("th", "Händelser"));
  table.append(head, ...series.map((w) => { const r = document.createElement("tr"); r.append(text("td", w.week), text("td", w.text)); return r; }));
  return [svg, table];
}

function openPanel(h, fromList = false) {
  state.hotspot = h.key;
  writeState();
  markHotspots();
  for (const b of $("hotspot-list").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.key === h.key));
  $("panel-title").textContent = `Hotspot ${h.number}${h.name ? ` · ${h.name}` : ""}`;
  $("panel-label").textContent = `Sedan förra veckan: ${h.label_sv}`;
  $("panel-count-term").textContent = picture.audience === "viewer"
    ? `Händelser (visat antal, ${picture.run.window_weeks} veckor)` : `Händelser (${picture.run.window_weeks} veckor)`;
  $("panel-count").textContent = h.count_text;
  $("panel-this-week").textContent = h.this_week_text;
  $("panel-last-week").textContent = h.last_week_text;
  $("panel-change").textContent = h.change.words + (picture.week.provisional ? " (veckan pågår)" : "");
  $("panel-emerging").textContent = h.emerging ? `${h.emerging.name}: ${h.emerging.sentence}` : "ingen trendklass för platsen";
  $("panel-busiest").textContent = h.busiest || "visas inte i visningsversionen";
  if (picture.audience === "analyst" && !h.busiest) $("panel-busiest").textContent = "–";
  $("panel-chart").replaceChildren(...chart(h.weekly));
  $("panel-categories-title").textContent = `Per ${picture.audience === "viewer" ? "kategorigrupp" : "kategori"} (${h.categories_scope})`;
  const body = $("panel-categories").tBodies[0];
  body.replaceChildren(...h.categories.map((c) => { const r = document.createElement("tr"); r.append(text("td", c.name), text("td", c.text, "n")); return r; }));
  if (!h.categories.length) {
    const row = document.createElement("tr");
    const cell = text("td", picture.audience === "viewer"
      ? "Inga grupper har visade antal här: små antal visas inte." : "Inga händelser.");
    cell.colSpan = 2;
    row.append(cell);
    body.append(row);
  }
  $("panel-zoom").onclick = () => map.fitBounds(h.bbox, { padding: 60, maxZoom: 15 });
  $("panel").hidden = false;
  $("panel-title").focus({ preventScroll: !fromList && window.innerWidth >= 900 });
}

function closePanel() {
  const key = state.hotspot;
  state.hotspot = null;
  $("panel").hidden = true;
  writeState();
  markHotspots();
  const button = $("hotspot-list").querySelector(`button[data-key="${key}"]`);
  if (button) { button.setAttribute("aria-pressed", "false"); button.focus(); }
}

// ---------------------------------------------------------------- putting it together

async function loadPicture() {
  const q = new URLSearchParams();
  for (const name of ["area", "week", "profile"]) if (state[name]) q.set(name, state[name]);
  try {
    picture = await getJSON(`${BASE}/api/v1/lagesbild?${q}`);
  } catch (error) {
    if (error.status === 404 && (state.week || state.profile)) {
      say(`Det som länken visar finns inte längre: ${error.message}. Visar den senaste veckan.`);
      state.week = null;
      state.profile = null;
      return loadPicture();
    }
    throw error;
  }
  if (!picture.areas.length) {
    $("title-week").textContent = "Din organisation har inget område med en publicerad lägesbild ännu.";
    document.body.dataset.state = "ready";
    return false;
  }
  Object.assign(state, { area: picture.area.code, week: picture.week.label, profile: picture.profile });
  if (state.hotspot && !picture.hotspots.some((h) => h.key === state.hotspot)) state.hotspot = null;
  fillChoices();
  renderTitle();
  renderLayerList();
  renderLegend();
  renderSummary();
  renderList();
  renderFigures();
  renderProvenance();
  writeState();
  return true;
}

// Where the map opens without a view in the URL: around the week's hotspots with some of the
// town around them (at least MIN_SPAN_DEG each way), or the whole area when there are none.
const MIN_SPAN_DEG = 0.04;

function startView() {
  const boxes = picture.hotspots.map((h) => h.bbox);
  if (!boxes.length) return picture.area.bbox;
  let [w, s, e, n] = [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
    Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
  const grow = (lo, hi) => { const d = Math.max(0, MIN_SPAN_DEG - (hi - lo)) / 2; return [lo - d, hi + d]; };
  [w, e] = grow(w, e);
  [s, n] = grow(s, n);
  return [w, s, e, n];
}

async function show(fit, read = loadPicture()) {
  document.body.dataset.state = "loading";
  if (!(await read)) return;
  useRun();
  showLayers();
  placeMarkers();
  if (fit) map.fitBounds(startView(), { padding: 20, duration: 0 });
  const open = picture.hotspots.find((h) => h.key === state.hotspot);
  if (open) openPanel(open); else $("panel").hidden = true;
  await refreshLayers();
}

function wire() {
  $("area").addEventListener("change", (e) => { Object.assign(state, { area: e.target.value, week: null, profile: null, hotspot: null, view: null }); show(true); });
  $("week").addEventListener("change", (e) => { state.week = e.target.value; show(false); });
  $("profile").addEventListener("change", (e) => { state.profile = e.target.value; state.week = null; show(false); });
  $("group").addEventListener("change", (e) => {
    const computed = picture.profiles.find((p) => p.group === e.target.value);
    if (computed) { state.profile = computed.name; state.week = null; show(false); }
  });
  $("panel-close").addEventListener("click", closePanel);
  $("print-button").addEventListener("click", () => window.print());
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("panel").hidden) closePanel(); });
}

async function main() {
  wire();
  const fit = !state.view;
  const read = loadPicture(); // the picture is read while MapLibre starts
  read.catch(() => {}); // its failure is said below, once the map is there
  await createMap();
  addLayers();
  try {
    await show(fit, read);
  } catch (error) {
    say(`Lägesbilden kunde inte läsas: ${error.message}`);
    document.body.dataset.state = "error";
  }
}

main();
