// petseg review page: NiiVue viewer + lesion list + edits + scoring.
// All computation (lesion statistics, seeded growing, saving) happens on the server
// through petseg's library functions; this page only displays and sends requests.
import { Niivue, NVImage, SHOW_RENDER } from "./vendor/niivue.js";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const headers = token ? { "X-Petseg-Token": token } : {};

const state = {
  listing: null,
  caseId: null,
  session: null,
  meta: null,
  revision: 0,
  baseVersion: 0,
  lesions: [],
  removed: [], // components removed as physiological organ uptake (removed.nii.gz)
  lastVox: null, // [i, j, k] of the crosshair in NIfTI order
  dims: null, // [X, Y, Z] of the images shown
  step: 1, // reduction of the images shown: > 1 while the preview of a large study is up
  loadToken: 0,
  display: null,
  activeSeconds: 0,
  lastInteraction: performance.now(),
  busy: false,
  display: "fused",
  timings: {},
};
window.petsegReview = state; // for tests and for debugging in the console

const $ = (id) => document.getElementById(id);
const fmt = (x, n = 2) => (x === null || x === undefined ? "—" : Number(x).toFixed(n));

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(method, path, body, extra = {}) {
  // every POST carries X-Petseg-Request: the server refuses POSTs without it, which a
  // page of another site cannot send (petseg.review.security)
  const init = { method, headers: { ...headers, ...(method === "POST" ? { "X-Petseg-Request": "1" } : {}) }, ...extra };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const err = new Error(data.error || `HTTP ${response.status}`);
    err.status = response.status;
    throw err;
  }
  return data;
}

async function fetchBuffer(path) {
  const response = await fetch(path, { headers });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

// ---------------------------------------------------------------- viewer
const nv = new Niivue({
  backColor: [0, 0, 0, 1],
  show3Dcrosshair: true,
  isRadiologicalConvention: true,
  multiplanarShowRender: SHOW_RENDER.ALWAYS,
  dragAndDropEnabled: false,
  isNearestInterpolation: true,
  crosshairColor: [0.2, 0.8, 1, 1],
});
window.petsegReviewNv = nv;
let petVol = null;
let ctVol = null;
let labelVol = null;
let removedVol = null;
let uncertaintyVol = null;

function labelLut(maxLabel) {
  // label 0 transparent; lesions in well separated hues (golden angle)
  const R = [0], G = [0], B = [0], A = [0], I = [0];
  for (let l = 1; l <= Math.max(1, maxLabel); l++) {
    const h = (l * 137.508) % 360;
    const [r, g, b] = hsl(h, 0.9, 0.55);
    R.push(r); G.push(g); B.push(b); A.push(255); I.push(l);
  }
  return { R, G, B, A, I };
}

/** One colour (cyan) for every component of the removed-uptake layer. */
function removedLut(maxLabel) {
  const R = [0], G = [0], B = [0], A = [0], I = [0];
  for (let l = 1; l <= Math.max(1, maxLabel); l++) {
    R.push(0); G.push(200); B.push(255); A.push(255); I.push(l);
  }
  return { R, G, B, A, I };
}

function hsl(h, s, l) {
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}

function labelMax() {
  let m = 0;
  for (const l of state.lesions) m = Math.max(m, l.label);
  return m;
}

async function loadLabels() {
  const suffix = state.step > 1 ? ".preview" : "";
  const buffer = await fetchBuffer(`/api/session/${state.session}/labels${suffix}.nii.gz`);
  const vol = await NVImage.loadFromUrl({ url: "labels.nii.gz", name: "labels.nii.gz", buffer });
  vol.setColormapLabel(labelLut(labelMax()));
  vol.opacity = Number($("label-opacity").value);
  if (labelVol) nv.removeVolume(labelVol);
  nv.addVolume(vol);
  labelVol = vol;
  drawLabelMip();
}

/** Open a case; `viewerReady` resolves once the viewer can take images (first case only). */
async function openCase(caseId, viewerReady = Promise.resolve()) {
  if (state.unsaved && !confirm(`${state.caseId} has unsaved edits; discard them and open ${caseId}?`)) return;
  const t0 = performance.now();
  const token = ++state.loadToken; // a newer openCase makes this one stop swapping images
  state.timings = {};
  state.display = null;
  setStatus(`opening ${caseId}…`);
  const opened = await api("POST", `/api/case/${encodeURIComponent(caseId)}/open`);
  state.timings.opened_ms = performance.now() - t0;
  state.caseId = caseId;
  closeSession(); // the previous case's session, once the new one is open
  state.session = opened.session;
  state.meta = opened.meta;
  $("uncertainty-control").hidden = !state.meta.has_uncertainty;
  state.activeSeconds = 0;
  applyState(opened);
  $("case-title").textContent = caseId;
  $("synthetic").hidden = !opened.meta.synthetic;
  const older = opened.meta.older_result_versions || [];
  $("older-result").hidden = !older.length;
  $("older-result").textContent = older.length
    ? `${older.join(", ")}: made on an older segmentation (kept in review/); this review starts from the new one`
    : "";
  showReference(opened.meta);
  const [w0, w1] = opened.meta.suv_window;
  $("suv-min").value = w0;
  $("suv-max").value = w1;
  const step = opened.meta.preview_step;
  delete document.body.dataset.loaded;
  // Large studies: a reduced first view (petseg.review.preview), then full resolution,
  // fetched after the first paint so that it does not compete with the preview.
  const mipDownload = fetchMip(caseId);
  const firstBuffers = await fetchLayers(caseId, step > 1 ? ".preview" : "");
  state.timings.fetched_ms = performance.now() - t0;
  await viewerReady;
  await showLayers(firstBuffers, step); // uploads and draws the slices (NiiVue waits for the GPU)
  await loadMip(mipDownload);
  await nextFrame(); // the first paint is when the browser has put the frame on screen
  if (token !== state.loadToken) return;
  state.timings.first_paint_ms = performance.now() - t0;
  state.timings.since_navigation_ms = performance.now(); // performance.now() counts from navigation start
  document.body.dataset.firstPaint = caseId;
  const lesionsText = `${caseId}: ${opened.lesions.length} lesions`;
  if (step > 1) {
    setStatus(`${lesionsText}, preview (${step}× coarser) in ${(state.timings.first_paint_ms / 1000).toFixed(2)} s; loading full resolution…`);
    const layers = await fetchLayers(caseId, "");
    if (token !== state.loadToken) return;
    await showLayers(layers, 1);
    drawLabelMip();
    await nextFrame();
    state.timings.full_resolution_ms = performance.now() - t0;
  }
  document.body.dataset.loaded = caseId;
  const seconds = ((state.timings.full_resolution_ms ?? state.timings.first_paint_ms) / 1000).toFixed(2);
  setStatus(`${lesionsText}, loaded in ${seconds} s`);
  renderCases();
}

/** Resolve once the browser has produced the next frame (after rendering the page). */
function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

/** Download the case's PET, CT (if any) and the session's labels; suffix "" or ".preview". */
async function fetchLayers(caseId, suffix) {
  const base = `/api/case/${encodeURIComponent(caseId)}`;
  // the removed-uptake layer comes with the full-resolution images only
  const [pet, labels, ct, removed, uncertainty] = await Promise.all([
    fetchBuffer(`${base}/pet${suffix}.nii.gz`),
    fetchBuffer(`/api/session/${state.session}/labels${suffix}.nii.gz`),
    state.meta.has_ct ? fetchBuffer(`${base}/ct${suffix}.nii.gz`) : null,
    state.meta.removed_count > 0 && suffix === "" ? fetchBuffer(`${base}/removed.nii.gz`) : null,
    state.meta.has_uncertainty && suffix === "" ? fetchBuffer(`${base}/uncertainty.nii.gz`) : null,
  ]);
  return { pet, labels, ct, removed, uncertainty };
}

/** Decode downloaded layers and show them in one GPU upload; `step` is their reduction. */
async function showLayers(buffers, step) {
  const [w0, w1] = state.meta.suv_window;
  const decode = (name, buffer, opts = {}) => NVImage.loadFromUrl({ url: name, name, buffer, ...opts });
  const ct = buffers.ct ? await decode("ct.nii.gz", buffers.ct, { colormap: "gray", cal_min: -160, cal_max: 240 }) : null;
  const pet = await decode("pet.nii.gz", buffers.pet, { colormap: "hot", cal_min: w0, cal_max: w1 });
  const labels = await decode("labels.nii.gz", buffers.labels);
  labels.setColormapLabel(labelLut(labelMax()));
  const removed = buffers.removed ? await decode("removed.nii.gz", buffers.removed) : null;
  if (removed) removed.setColormapLabel(removedLut(state.meta.removed_count));
  // the folds' disagreement in blue-green, from 0.05 bit (below: transparent) to 1 bit
  const uncertainty = buffers.uncertainty ? await decode("uncertainty.nii.gz", buffers.uncertainty, { colormap: "winter", cal_min: 0.05, cal_max: 1 }) : null;
  [ctVol, petVol, labelVol, removedVol, uncertaintyVol] = [ct, pet, labels, removed, uncertainty];
  state.step = step;
  state.dims = [pet.hdr.dims[1], pet.hdr.dims[2], pet.hdr.dims[3]];
  applyDisplay(state.display ?? (ct ? "fused" : "pet"));
  // One upload of all layers: nv.addVolume per volume would rebuild every layer already
  // shown each time (1 + 2 + 3 layer uploads), which a software WebGL pays in seconds.
  const layers = [ct, pet, uncertainty, removed, labels].filter((v) => v);
  nv.volumes = layers;
  nv.back = layers[0];
  nv.overlays = layers.slice(1);
  nv.updateGLVolume();
}

function setDisplay(mode) {
  applyDisplay(mode);
  if (petVol) nv.updateGLVolume();
}

/** Set the layers' opacity, colour map and SUV window for a display mode (no redraw). */
function applyDisplay(mode) {
  state.display = mode;
  for (const b of document.querySelectorAll("#display button")) b.classList.toggle("on", b.dataset.display === mode);
  if (!petVol) return;
  const labelOpacity = Number($("label-opacity").value);
  if (ctVol) {
    ctVol.opacity = mode === "pet" ? 0 : 1;
  }
  petVol.opacity = mode === "ct" ? 0 : mode === "fused" && ctVol ? 0.55 : 1;
  petVol.colormap = mode === "pet" || !ctVol ? "gray" : "hot";
  if (mode === "pet" || !ctVol) petVol.colormapInvert = true;
  else petVol.colormapInvert = false;
  petVol.cal_min = Number($("suv-min").value);
  petVol.cal_max = Number($("suv-max").value);
  if (labelVol) labelVol.opacity = labelOpacity;
  if (removedVol) removedVol.opacity = Number($("removed-opacity").value);
  if (uncertaintyVol) uncertaintyVol.opacity = Number($("uncertainty-opacity").value);
}

function setView(view) {
  for (const b of document.querySelectorAll("#views button")) b.classList.toggle("on", b.dataset.view === view);
  const type = { axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal, multiplanar: nv.sliceTypeMultiplanar }[view];
  nv.setSliceType(type);
}

function voxelIndex(i, j, k) {
  const [X, Y] = state.dims;
  return i + X * (j + Y * k);
}

function labelAt(vox) {
  if (!labelVol || !vox) return 0;
  return labelVol.img[voxelIndex(vox[0], vox[1], vox[2])];
}

/** Move the crosshair to full-resolution voxel (i, j, k) (its block while the preview is up). */
function jumpToVoxel(i, j, k) {
  if (!petVol) return;
  const s = state.step;
  const frac = nv.vox2frac([Math.floor(i / s), Math.floor(j / s), Math.floor(k / s)]);
  nv.scene.crosshairPos = frac;
  nv.createOnLocationChange();
  nv.drawScene();
}

nv.onLocationChange = (data) => {
  if (!data || !data.vox || !state.dims) return;
  state.lastVox = data.vox.map((v) => Math.round(v));
  showLocation();
};

function showLocation() {
  const vox = state.lastVox;
  if (!vox) return;
  const [i, j, k] = vox;
  const suv = petVol ? petVol.img[voxelIndex(i, j, k)] : NaN;
  const label = labelAt(vox);
  const where = state.step > 1 ? `preview block (k, j, i) = (${k}, ${j}, ${i}) of ${state.step}³ voxels, max` : `voxel (k, j, i) = (${k}, ${j}, ${i})  `;
  $("location").textContent = `${where} SUV ${fmt(suv)} g/mL   ${label ? "lesion " + label : "background"}`;
  highlightLesion(label);
}

// A click (not a drag) on the slices in remove/add mode edits at the clicked voxel.
let downAt = null;
$("gl").addEventListener("pointerdown", (e) => { downAt = [e.clientX, e.clientY]; });
$("gl").addEventListener("pointerup", (e) => {
  if (!downAt) return;
  const moved = Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]);
  downAt = null;
  const mode = document.querySelector("input[name=mode]:checked").value;
  if (moved > 4 || mode === "navigate" || e.button !== 0) return;
  setTimeout(() => editAtCrosshair(mode), 0);
});

async function editAtCrosshair(mode) {
  if (!state.lastVox) return;
  const [i, j, k] = state.lastVox;
  if (mode === "remove") {
    const label = labelAt(state.lastVox);
    if (!label) { setStatus(`no lesion at voxel (${k}, ${j}, ${i}); click inside a coloured lesion`, true); return; }
    await edit("remove", { label });
  } else {
    const body = { seed: [k, j, i], method: $("method").value };
    const value = $("method-value").value;
    if (value !== "") body.value = Number(value);
    await edit("add", body);
  }
}

async function edit(action, body = {}) {
  if (state.busy) return;
  if (state.step > 1) {
    setStatus("the full-resolution images are still loading; edits open when they are shown", true);
    return;
  }
  state.busy = true;
  const t0 = performance.now();
  try {
    const result = await api("POST", `/api/session/${state.session}/${action}`, body);
    await applyEdit(result);
    state.timings[`${action}_ms`] = performance.now() - t0;
    const what = action === "add" || action === "restore" ? `${action === "add" ? "added" : "restored"} lesion ${result.edits.at(-1)?.new_label}` : action === "remove" ? `removed lesion ${body.label}` : action;
    setStatus(`${what} (${(performance.now() - t0).toFixed(0)} ms)`);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    state.busy = false;
  }
}

async function applyEdit(result) {
  const previous = state.revision;
  applyState(result);
  const fitsType = !labelVol || labelMax() <= (labelVol.img instanceof Uint8Array ? 255 : 65535);
  if (result.patch && labelVol && fitsType && result.revision === previous + 1) {
    const { index, value } = result.patch;
    for (let n = 0; n < index.length; n++) labelVol.img[index[n]] = value[n];
    labelVol.setColormapLabel(labelLut(labelMax()));
    nv.updateGLVolume();
    drawLabelMip();
  } else {
    await loadLabels();
  }
  showLocation();
  document.body.dataset.revision = String(state.revision);
}

function applyState(s) {
  state.revision = s.revision;
  state.unsaved = s.unsaved;
  state.baseVersion = s.base_version_number;
  state.lesions = s.lesions;
  state.removed = s.removed || [];
  $("undo").disabled = !s.can_undo;
  $("redo").disabled = !s.can_redo;
  const p = s.patient || {};
  $("patient").textContent = `${p.lesion_count ?? 0} lesions, TTV ${fmt(p.total_tumour_volume_ml, 1)} mL · from ${s.base_version}`;
  renderLesions();
  renderRemoved();
  $("edits").textContent = s.edits.length
    ? "unsaved edits: " + s.edits.map((e) => (e.op === "remove" ? `remove ${e.label}` : e.op === "restore" ? `restore ${e.organ} ${e.removed_label} as ${e.new_label}` : `add ${e.new_label} (${e.method})`)).join(", ")
    : "no unsaved edits";
}

/** Lesions in label order, or with the result's review_first lesions first (⚑ first). */
function lesionOrder() {
  const flagged = new Set(state.meta.review_first || []);
  const rows = [...state.lesions];
  if (state.flagFirst) rows.sort((a, b) => flagged.has(b.label) - flagged.has(a.label) || a.label - b.label);
  return { rows, flagged };
}

function renderLesions() {
  const tbody = $("lesion-table").querySelector("tbody");
  tbody.replaceChildren();
  const { rows, flagged } = lesionOrder();
  $("flag-sort").hidden = flagged.size === 0;
  $("flag-sort").classList.toggle("on", Boolean(state.flagFirst));
  for (const l of rows) {
    const tr = document.createElement("tr");
    tr.dataset.label = l.label;
    tr.classList.toggle("review-first", flagged.has(l.label));
    const sw = hsl((l.label * 137.508) % 360, 0.9, 0.55);
    const flag = flagged.has(l.label) ? `<span title="review first: not every fold would segment it on its own">⚑</span>` : "";
    tr.innerHTML = `<td><span style="color:rgb(${sw})">■</span> ${l.label}</td><td class="num">${fmt(l.volume_ml)}</td><td class="num">${fmt(l.suv_max)}</td><td class="num">${fmt(l.suv_mean)}</td><td>${flag}</td><td><button class="rm" title="remove lesion ${l.label}">✕</button></td>`;
    tr.addEventListener("click", (e) => {
      if (e.target.classList.contains("rm")) {
        edit("remove", { label: l.label });
      } else {
        const [k, j, i] = l.max_voxel_kji;
        jumpToVoxel(i, j, k);
      }
    });
    tbody.append(tr);
  }
}

/** The components removed as physiological uptake, each with a button that restores it. */
function renderRemoved() {
  $("removed-section").hidden = state.removed.length === 0;
  const tbody = $("removed-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of state.removed) {
    const tr = document.createElement("tr");
    tr.dataset.label = r.label;
    tr.classList.toggle("restored", r.restored);
    tr.innerHTML = `<td>${r.label}</td><td>${escapeHtml(String(r.organ))}${r.rule === "cut" ? " (cut)" : ""}</td><td class="num">${fmt(r.volume_ml)}</td><td class="num">${fmt(r.suv_max)}</td><td>${r.restored ? "restored" : `<button class="restore" title="give it back as a lesion">restore</button>`}</td>`;
    tr.addEventListener("click", (e) => {
      if (e.target.classList.contains("restore")) {
        edit("restore", { removed_label: r.label });
      } else {
        const [k, j, i] = r.max_voxel_kji;
        jumpToVoxel(i, j, k);
      }
    });
    tbody.append(tr);
  }
}

function highlightLesion(label) {
  for (const tr of $("lesion-table").querySelectorAll("tbody tr")) {
    const on = Number(tr.dataset.label) === label;
    tr.classList.toggle("current", on);
    if (on) tr.scrollIntoView({ block: "nearest" });
  }
}

// ---------------------------------------------------------------- coronal MIP
let mip = null; // {Z, X, values: Float32Array, depth: Int16Array}
/** Fetch the case's coronal MIP (start it early: the answer is read after the images). */
function fetchMip(caseId) {
  return fetchBuffer(`/api/case/${encodeURIComponent(caseId)}/mip.bin`);
}

async function loadMip(download = fetchMip(state.caseId)) {
  const buffer = await download;
  const [Z, , X] = state.meta.shape_zyx;
  mip = { Z, X, values: new Float32Array(buffer, 0, Z * X), depth: new Int16Array(buffer, 4 * Z * X, Z * X) };
  drawLabelMip();
}

function mipCell(row, col) {
  const { flip_rows, flip_cols } = state.meta.mip;
  return [flip_rows ? mip.Z - 1 - row : row, flip_cols ? mip.X - 1 - col : col];
}

function drawLabelMip() {
  if (!mip || !labelVol) return;
  const canvas = $("mip");
  const { Z, X } = mip;
  canvas.width = X;
  canvas.height = Z;
  canvas.style.aspectRatio = `${X} / ${Z * state.meta.mip.aspect}`;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(X, Z);
  const hi = Number($("suv-max").value) || 1;
  const lo = Number($("suv-min").value) || 0;
  const [Xl, Yl] = state.dims; // the label map shown: full resolution or preview (state.step)
  const s = state.step;
  const lut = labelLut(labelMax());
  for (let row = 0; row < Z; row++) {
    for (let col = 0; col < X; col++) {
      const [k, i] = mipCell(row, col);
      const v = mip.values[k * X + i];
      const g = 255 - Math.max(0, Math.min(255, (255 * (v - lo)) / (hi - lo)));
      let label = 0;
      const column = Math.floor(i / s) + Xl * Yl * Math.floor(k / s);
      for (let j = 0; j < Yl && !label; j++) label = labelVol.img[column + Xl * j];
      const p = 4 * (row * X + col);
      if (label) {
        image.data[p] = 0.5 * g + 0.5 * lut.R[label];
        image.data[p + 1] = 0.5 * g + 0.5 * lut.G[label];
        image.data[p + 2] = 0.5 * g + 0.5 * lut.B[label];
      } else {
        image.data[p] = image.data[p + 1] = image.data[p + 2] = g;
      }
      image.data[p + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  drawReferenceVoi(ctx);
}

$("mip").addEventListener("click", (e) => {
  if (!mip) return;
  const rect = e.target.getBoundingClientRect();
  const col = Math.floor(((e.clientX - rect.left) / rect.width) * mip.X);
  const row = Math.floor(((e.clientY - rect.top) / rect.height) * mip.Z);
  const [k, i] = mipCell(row, col);
  jumpToVoxel(i, mip.depth[k * mip.X + i], k);
});

// ---------------------------------------------------------------- cohort and scoring
function renderCases() {
  const tbody = $("case-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const c of state.listing.cases) {
    const tr = document.createElement("tr");
    tr.classList.toggle("current", c.case_id === state.caseId);
    const older = c.older_result_versions?.length ? ` (+${c.older_result_versions.length} on an older result)` : "";
    tr.innerHTML = `<td>${escapeHtml(c.case_id)}</td><td>${escapeHtml(c.status + older)}</td><td class="num">${c.score ?? ""}</td><td class="num">${c.versions ? (c.active_seconds / 60).toFixed(1) : ""}</td>`;
    if (c.error) tr.title = c.error;
    tr.addEventListener("click", () => openCase(c.case_id).catch((err) => setStatus(err.message, true)));
    tbody.append(tr);
  }
  const s = state.listing.summary;
  const rows = Object.entries(s.score_counts).map(([score, c]) => `<tr><td>${score} (${c.label})</td><td class="num">${c.n}</td><td class="num">${c.percent ?? "—"}%</td><td class="num">${s.paper.table4_n41[score]}</td></tr>`).join("");
  const t = s.correction_time;
  $("summary").innerHTML = `<table><thead><tr><th>score</th><th>n</th><th>%</th><th>paper n=41</th></tr></thead><tbody>${rows}</tbody></table>
    <p>${s.reviewed}/${s.cases} reviewed, ${s.scored} scored; acceptable (1–4): ${s.acceptable.n} (${s.acceptable.percent ?? "—"}%; paper 85%).</p>
    <p>Correction time: ${t.n ? `median ${t.median_min.toFixed(1)} min (IQR ${t.q1_min.toFixed(1)}–${t.q3_min.toFixed(1)}), n = ${t.n}` : "—"}; paper: AI ${s.paper.correction_median_min.ai_median} min vs semiautomatic ${s.paper.correction_median_min.semiautomatic_median} min (median).</p>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderScoreTable() {
  const div = $("score-table");
  for (const row of state.listing.table1) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="radio" name="score" value="${row.score}"><span><b>${row.score}. ${escapeHtml(row.rating)}</b><br><small>${escapeHtml(row.criteria)}</small></span>`;
    div.append(label);
  }
  const note = document.createElement("div");
  note.className = "footnote";
  note.textContent = state.listing.table1_footnote;
  div.append(note);
}

/** The reference VOI under the seed options; seeds grow with its organ's threshold. */
function showReference(meta) {
  const ref = meta.reference && typeof meta.reference === "object" ? meta.reference : null;
  const how = meta.reference_voi && meta.reference_voi.automatic ? "placed automatically" : "given";
  $("reference").textContent = ref
    ? `reference VOI: ${ref.organ} (${how}, magenta on the MIP), threshold ${Number(meta.threshold_suv).toFixed(2)} g/mL`
    : "";
  if (ref && ["liver", "spleen"].includes($("method").value)) {
    $("method").value = ref.organ;
    $("method").dispatchEvent(new Event("change"));
  }
}

/** Outline the reference sphere's coronal projection (an ellipse in MIP pixels). */
function drawReferenceVoi(ctx) {
  const voi = state.meta.reference_voi;
  if (!voi) return;
  const [k, , i] = voi.centre_kji;
  const [dz, , dx] = state.meta.spacing_mm_zyx;
  const { flip_rows, flip_cols } = state.meta.mip;
  const row = flip_rows ? mip.Z - 1 - k : k;
  const col = flip_cols ? mip.X - 1 - i : i;
  ctx.strokeStyle = "#ff00ff";
  ctx.lineWidth = 1;
  ctx.setLineDash([2, 2]);
  ctx.beginPath();
  ctx.ellipse(col + 0.5, row + 0.5, voi.radius_mm / dx, voi.radius_mm / dz, 0, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.setLineDash([]);
}

function renderMethods() {
  const select = $("method");
  const organ = state.listing.seed_methods;
  const help = {
    liver: "liver reference: 1.5·mean + 2·SD of the report's VOI",
    spleen: "spleen reference: 0.67·mean + 2·SD of the report's VOI",
    fixed: "fixed SUV threshold (g/mL) in the value box",
    percent_max: "fraction of the lesion's SUVmax (default 0.40)",
  };
  for (const m of organ) {
    const option = document.createElement("option");
    option.value = m;
    option.textContent = m;
    select.append(option);
  }
  const update = () => {
    $("method-help").textContent = help[select.value] || "";
    $("method-value").disabled = select.value === "liver" || select.value === "spleen";
    $("method-value").placeholder = select.value === "fixed" ? "SUV" : select.value === "percent_max" ? "0.40" : "";
  };
  select.addEventListener("change", update);
  update();
}

async function save() {
  const scoreInput = document.querySelector("input[name=score]:checked");
  const body = {
    base_version: state.baseVersion,
    reviewer: $("reviewer").value,
    score: scoreInput ? Number(scoreInput.value) : null,
    comment: $("comment").value,
    active_seconds: Math.round(state.activeSeconds),
  };
  try {
    const result = await api("POST", `/api/session/${state.session}/save`, body);
    applyState(result);
    state.activeSeconds = 0;
    localStorage.setItem("petseg-reviewer", body.reviewer);
    state.listing = await api("GET", "/api/cases");
    renderCases();
    setStatus(`saved ${result.saved.version}`);
    document.body.dataset.saved = result.saved.version;
  } catch (err) {
    if (err.status === 409 && confirm(`${err.message}\n\nReplay your edits on the newer version now?`)) {
      const result = await api("POST", `/api/session/${state.session}/rebase`);
      await applyEdit(result);
      setStatus(`rebased on ${result.base_version}${result.notes.length ? ": " + result.notes.join("; ") : ""}; check and save again`);
    } else {
      setStatus(err.message, true);
    }
  }
}

async function exportDicom(format) {
  try {
    const result = await api("POST", `/api/session/${state.session}/export`, { format });
    setStatus(`exported ${result.written.join(", ")}`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

// ---------------------------------------------------------------- leaving
/** End this tab's session on the server (it frees the slot; unsaved edits are discarded). */
function closeSession() {
  if (!state.session) return;
  api("POST", `/api/session/${state.session}/close`, undefined, { keepalive: true }).catch(() => {});
  state.session = null;
  state.unsaved = false;
}
window.addEventListener("beforeunload", (e) => {
  if (state.unsaved) e.preventDefault(); // the browser asks before unsaved edits are lost
});
window.addEventListener("pagehide", closeSession);

// ---------------------------------------------------------------- active time
const IDLE = () => 1000 * (state.listing?.idle_pause_s ?? 60);
for (const type of ["pointerdown", "pointermove", "keydown", "wheel"]) {
  window.addEventListener(type, () => { state.lastInteraction = performance.now(); }, { passive: true });
}
setInterval(() => {
  if (!state.session || document.visibilityState !== "visible") return;
  if (performance.now() - state.lastInteraction > IDLE()) return;
  state.activeSeconds += 1;
  const s = Math.round(state.activeSeconds);
  $("active-time").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}, 1000);

// ---------------------------------------------------------------- wiring
for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => setView(b.dataset.view));
for (const b of document.querySelectorAll("#display button")) b.addEventListener("click", () => setDisplay(b.dataset.display));
for (const id of ["suv-min", "suv-max"]) $(id).addEventListener("change", () => { setDisplay(state.display); drawLabelMip(); });
$("label-opacity").addEventListener("input", () => setDisplay(state.display));
$("removed-opacity").addEventListener("input", () => setDisplay(state.display));
$("uncertainty-opacity").addEventListener("input", () => setDisplay(state.display));
$("flag-sort").addEventListener("click", () => {
  state.flagFirst = !state.flagFirst;
  renderLesions();
});
$("undo").addEventListener("click", () => edit("undo"));
$("redo").addEventListener("click", () => edit("redo"));
$("save").addEventListener("click", save);
$("export-rtstruct").addEventListener("click", () => exportDicom("rtstruct"));
$("export-seg").addEventListener("click", () => exportDicom("seg"));
for (const r of document.querySelectorAll("input[name=mode]")) {
  r.addEventListener("change", () => { $("gl").className = `mode-${r.value}`; });
}
window.addEventListener("keydown", (e) => {
  if (e.target.matches("input, textarea, select")) return;
  if ((e.ctrlKey || e.metaKey) && e.key === "z") edit(e.shiftKey ? "redo" : "undo");
});

async function main() {
  $("reviewer").value = localStorage.getItem("petseg-reviewer") || "";
  // the case list, and then the first case, are fetched while the viewer sets up WebGL
  const listing = api("GET", "/api/cases");
  const viewerReady = nv.attachTo("gl").then(() => nv.setSliceType(nv.sliceTypeMultiplanar));
  state.listing = await listing;
  renderScoreTable();
  renderMethods();
  renderCases();
  const wanted = params.get("case") || state.listing.cases[0]?.case_id;
  if (wanted) await openCase(wanted, viewerReady);
  else await viewerReady;
}

main().catch((err) => setStatus(err.message, true));
