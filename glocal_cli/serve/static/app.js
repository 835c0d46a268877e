// glocal serve: the page. Plain JavaScript, no framework, no network but this server.
//
// Poses are arrays of 18 [x, y, v] in the photo's pixels (pixel-centre convention, v = 0: missing),
// the same layout the JSON API takes (docs/serve.md). Everything the page does goes through /api/*.
"use strict";

const NAMES = ["nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
  "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear"];
const LIMBS = [[1, 2], [2, 3], [3, 4], [1, 5], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11], [11, 12],
  [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17]];
const FLIP = NAMES.map((n) => NAMES.indexOf(n.startsWith("r_") ? "l_" + n.slice(2) : n.startsWith("l_") ? "r_" + n.slice(2) : n));
const COLORS = NAMES.map((_, i) => `hsl(${Math.round((360 * i) / NAMES.length)}, 95%, 45%)`);
const DISPLAY_HEIGHT = 440;
const DISPLAY_WIDTH = 330;

const $ = (id) => document.getElementById(id);

const state = {
  health: null,
  image: null, // {image_id, name, width, height, pose, ...}
  photo: null, // HTMLImageElement of the stored photo
  scale: 1,
  sourcePose: null,
  targetPose: null,
  defaultPose: null,
  poseA: null,
  poseB: null,
  library: [],
  channel: "tab-" + Math.random().toString(36).slice(2, 10),
  seq: 0,
  shownSeq: 0,
  results: 0, // results shown so far
  requests: 0, // transfer requests sent
  controller: null,
  timer: null,
  maskDirty: false,
  editAt: 0, // performance.now() of the last edit
  latencyMs: null, // last edit -> its result shown (debounce + request + model + decode)
};
window.glocal = state; // for scripts and the browser test

// ------------------------------------------------------------------------------------- helpers

function copyPose(p) { return p.map((q) => [q[0], q[1], q[2]]); }

function visible(q) { return q[2] > 0; }

function mirrorPose(p) {
  // about the vertical line through the pose's own box: the person stays where it stands
  const xs = p.filter(visible).map((q) => q[0]);
  if (!xs.length) return copyPose(p);
  const c = (Math.min(...xs) + Math.max(...xs)) / 2;
  return FLIP.map((j) => (visible(p[j]) ? [2 * c - p[j][0], p[j][1], p[j][2]] : [0, 0, 0]));
}

function interpolatePose(a, b, t) {
  // same rule as glocal_cli.serve.poses.interpolate_poses
  return a.map((qa, i) => {
    const qb = b[i];
    if (visible(qa) && visible(qb)) return [(1 - t) * qa[0] + t * qb[0], (1 - t) * qa[1] + t * qb[1], 1];
    if (visible(qa)) return t < 0.5 ? [qa[0], qa[1], qa[2]] : [0, 0, 0];
    if (visible(qb)) return t >= 0.5 ? [qb[0], qb[1], qb[2]] : [0, 0, 0];
    return [0, 0, 0];
  });
}

function message(text, isError = false) {
  const el = $("message");
  el.textContent = text || "";
  el.classList.toggle("error", Boolean(isError));
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = { error: `HTTP ${response.status} ${response.statusText}` };
  }
  if (!response.ok) {
    const err = new Error(body && body.error ? body.error : `HTTP ${response.status}`);
    err.status = response.status;
    err.kind = body && body.kind;
    throw err;
  }
  return body;
}

function postJSON(path, payload, signal) {
  return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload), signal });
}

function postFile(path, file) {
  return api(path, { method: "POST", headers: { "content-type": file.type || "application/octet-stream" }, body: file });
}

function download(url, name) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name || "";
  document.body.appendChild(a);
  a.click();
  a.remove();
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

// ------------------------------------------------------------------------------- pose editor

class PoseEditor {
  // A canvas showing the photo and a skeleton whose joints can be dragged.
  constructor(canvas, { getPose, setPose, ghost = 0.35, onEdit }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.getPose = getPose;
    this.setPose = setPose;
    this.ghost = ghost; // opacity of the photo behind the skeleton
    this.onEdit = onEdit;
    this.drag = -1;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    canvas.addEventListener("dblclick", (e) => this.toggle(e));
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    const cx = ((e.clientX - r.left) * this.canvas.width) / r.width;
    const cy = ((e.clientY - r.top) * this.canvas.height) / r.height;
    return [cx / state.scale - 0.5, cy / state.scale - 0.5];
  }

  toCanvas(q) { return [(q[0] + 0.5) * state.scale, (q[1] + 0.5) * state.scale]; }

  ghostPosition(j) {
    // where a missing joint waits to be dragged in: the source's position, else the default pose
    const s = state.sourcePose && state.sourcePose[j];
    if (s && visible(s) && this.getPose() !== state.sourcePose) return s;
    return state.defaultPose ? state.defaultPose[j] : [10 + 8 * j, 10, 0];
  }

  nearest(e, radius = 14) {
    const [x, y] = this.toImage(e);
    const pose = this.getPose();
    let best = -1;
    let bestD = (radius / state.scale) ** 2;
    for (let pass = 0; pass < 2 && best < 0; pass++) {
      pose.forEach((q, j) => {
        const isVisible = visible(q);
        if ((pass === 0) !== isVisible) return; // visible joints first, then missing ones
        const p = isVisible ? q : this.ghostPosition(j);
        const d = (p[0] - x) ** 2 + (p[1] - y) ** 2;
        if (d < bestD) { bestD = d; best = j; }
      });
    }
    return best;
  }

  down(e) {
    if (!state.image) return;
    const j = this.nearest(e);
    if (j < 0) return;
    this.drag = j;
    this.canvas.setPointerCapture(e.pointerId);
    this.move(e);
  }

  move(e) {
    if (this.drag < 0) return;
    const [x, y] = this.toImage(e);
    const pose = copyPose(this.getPose());
    const w = state.image.width;
    const h = state.image.height;
    pose[this.drag] = [Math.min(Math.max(x, 0), w - 1), Math.min(Math.max(y, 0), h - 1), 1];
    this.setPose(pose);
    this.draw();
    this.onEdit("drag");
  }

  up(e) {
    if (this.drag < 0) return;
    this.drag = -1;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.onEdit("end");
  }

  toggle(e) {
    if (!state.image) return;
    const j = this.nearest(e);
    if (j < 0) return;
    const pose = copyPose(this.getPose());
    pose[j] = visible(pose[j]) ? [0, 0, 0] : [...this.ghostPosition(j).slice(0, 2), 1];
    this.setPose(pose);
    this.draw();
    this.onEdit("end");
  }

  draw() {
    const ctx = this.ctx;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    if (state.photo) {
      ctx.globalAlpha = this.ghost;
      ctx.drawImage(state.photo, 0, 0, width, height);
      ctx.globalAlpha = 1;
    }
    const pose = this.getPose();
    if (!pose) return;
    ctx.lineWidth = Math.max(2, state.scale * 1.6);
    for (const [a, b] of LIMBS) {
      if (!visible(pose[a]) || !visible(pose[b])) continue;
      const [x0, y0] = this.toCanvas(pose[a]);
      const [x1, y1] = this.toCanvas(pose[b]);
      ctx.strokeStyle = COLORS[b];
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      ctx.stroke();
    }
    const r = Math.max(4, state.scale * 2.5);
    pose.forEach((q, j) => {
      const isVisible = visible(q);
      const [x, y] = this.toCanvas(isVisible ? q : this.ghostPosition(j));
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      if (isVisible) {
        ctx.fillStyle = COLORS[j];
        ctx.fill();
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 1.5;
        ctx.stroke();
      } else {
        ctx.setLineDash([3, 3]);
        ctx.strokeStyle = "#888";
        ctx.lineWidth = 1.5;
        ctx.stroke();
        ctx.setLineDash([]);
      }
    });
  }
}

const sourceEditor = new PoseEditor($("source-canvas"), {
  getPose: () => state.sourcePose,
  setPose: (p) => { state.sourcePose = p; },
  ghost: 1.0,
  onEdit: () => { state.editAt = performance.now(); scheduleTransfer(); },
});

const targetEditor = new PoseEditor($("target-canvas"), {
  getPose: () => state.targetPose,
  setPose: (p) => { state.targetPose = p; },
  ghost: 0.25,
  onEdit: () => { state.editAt = performance.now(); scheduleTransfer(); },
});

function drawAll() {
  sourceEditor.draw();
  targetEditor.draw();
}

// ------------------------------------------------------------------------------------ results

function selectedLayers() {
  return [...document.querySelectorAll("input[name=layer]:checked")].map((el) => el.value);
}

function scheduleTransfer(delay) {
  if (!state.image) return;
  clearTimeout(state.timer);
  const wait = delay === undefined ? (state.health ? state.health.page.debounce_ms : 120) : delay;
  state.timer = setTimeout(runTransfer, wait);
}

async function runTransfer() {
  if (!state.image) return;
  const seq = ++state.seq;
  if (state.controller) state.controller.abort(); // the newer request supersedes the older one
  const controller = new AbortController();
  state.controller = controller;
  const started = performance.now();
  $("result").classList.add("pending");
  state.requests += 1;
  try {
    const out = await postJSON("/api/transfer", {
      image_id: state.image.image_id,
      source_pose: state.sourcePose,
      target_pose: state.targetPose,
      layers: selectedLayers(),
      channel: state.channel + ":transfer",
      seq,
    }, controller.signal);
    if (seq < state.shownSeq) return;
    state.shownSeq = seq;
    await showResult(out, `${Math.round(performance.now() - started)} ms (model ${out.ms.model} ms)`);
    if (state.editAt) state.latencyMs = performance.now() - state.editAt;
  } catch (err) {
    if (err.name === "AbortError" || err.status === 409) return; // superseded by a newer edit
    message(err.message, true);
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      $("result").classList.remove("pending");
    }
  }
}

async function showResult(out, info) {
  const img = $("result");
  img.src = out.image;
  try {
    await img.decode(); // the picture is ready to paint
  } catch (_) {
    // a superseded src or an undecodable picture: nothing to wait for
  }
  if (img.getAttribute("src") !== out.image) return; // a newer result took its place meanwhile
  img.width = Math.round(out.width * state.scale);
  img.height = Math.round(out.height * state.scale);
  state.results += 1;
  img.dataset.count = String(state.results);
  for (const name of ["parsing", "flow", "visibility"]) {
    const layer = $("layer-" + name);
    const src = out.layers && out.layers[name];
    layer.hidden = !src;
    if (src) {
      layer.src = src;
      layer.width = img.width;
      layer.height = img.height;
    }
  }
  const link = $("download-result");
  link.href = out.image;
  link.download = `${state.image.name.replace(/\.[^.]*$/, "")}-result.png`;
  $("result-info").textContent = info;
  message((out.notes || []).join("\n"));
}

// ------------------------------------------------------------------------------------- photos

function setStageSize(w, h) {
  state.scale = Math.min(DISPLAY_HEIGHT / h, DISPLAY_WIDTH / w);
  const cw = Math.round(w * state.scale);
  const ch = Math.round(h * state.scale);
  for (const id of ["source-canvas", "target-canvas"]) {
    $(id).width = cw;
    $(id).height = ch;
  }
  const mask = $("mask-canvas");
  mask.width = w; // the mask is painted at the photo's own resolution
  mask.height = h;
  mask.style.width = cw + "px";
  mask.style.height = ch + "px";
  state.maskDirty = false;
}

async function usePhoto(described) {
  state.image = described;
  state.photo = await loadImage(described.image_url);
  setStageSize(described.width, described.height);
  state.sourcePose = copyPose(described.pose);
  state.targetPose = copyPose(described.pose);
  state.poseA = state.poseB = null;
  $("interp").disabled = true;
  for (const id of ["pose-tools", "inpaint-tools", "download-tools"]) $(id).disabled = false;
  await loadLibrary();
  drawAll();
  const how = described.detected ? `keypoints by ${described.pose_source}` :
    described.pose_source === "sidecar" ? "keypoints from the example's pose file" : "default pose: drag it onto the person";
  $("status").textContent = statusLine() + ` | ${described.name} ${described.width}x${described.height}, ${how}`;
  message((described.notes || []).join("\n"));
  document.body.dataset.image = described.image_id;
  scheduleTransfer(0);
}

async function uploadPhoto(file) {
  if (!file) return;
  message(`uploading ${file.name}...`);
  try {
    await usePhoto(await postFile(`/api/keypoints?name=${encodeURIComponent(file.name)}`, file));
  } catch (err) {
    message(err.message, true);
  }
}

async function loadExamples() {
  const { sources } = await api("/api/examples");
  const box = $("examples");
  box.textContent = "";
  for (const ex of sources) {
    const b = document.createElement("button");
    b.type = "button";
    b.title = ex.name;
    b.dataset.example = ex.name;
    const img = document.createElement("img");
    img.src = ex.image_url;
    img.alt = ex.name;
    b.appendChild(img);
    b.addEventListener("click", async () => {
      try {
        await usePhoto(await api(`/api/examples/${encodeURIComponent(ex.name)}`, { method: "POST" }));
      } catch (err) {
        message(err.message, true);
      }
    });
    box.appendChild(b);
  }
}

// -------------------------------------------------------------------------------- pose library

async function loadLibrary() {
  const { poses } = await api(`/api/poses?align_to=${state.image.image_id}`);
  state.library = poses;
  const select = $("library");
  select.textContent = "";
  poses.forEach((item, i) => {
    const opt = document.createElement("option");
    opt.value = String(i);
    opt.textContent = item.name;
    select.appendChild(opt);
    if (item.name.startsWith("standing")) state.defaultPose = item.pose;
  });
}

function setTarget(pose) {
  state.targetPose = copyPose(pose);
  targetEditor.draw();
  scheduleTransfer(0);
}

function updateInterp() {
  if (!state.poseA || !state.poseB) return;
  const t = Number($("interp").value) / 100;
  state.targetPose = interpolatePose(state.poseA, state.poseB, t);
  targetEditor.draw();
  scheduleTransfer();
}

// ----------------------------------------------------------------------------------- inpainting

const mask = { ctx: $("mask-canvas").getContext("2d"), last: null };

function maskPoint(e) {
  const c = $("mask-canvas");
  const r = c.getBoundingClientRect();
  return [((e.clientX - r.left) * c.width) / r.width, ((e.clientY - r.top) * c.height) / r.height];
}

function paintTo(e) {
  const p = maskPoint(e);
  const ctx = mask.ctx;
  const size = (Number($("brush").value) / state.scale);
  ctx.strokeStyle = "rgb(255, 40, 40)";
  ctx.fillStyle = "rgb(255, 40, 40)";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = size;
  ctx.beginPath();
  if (mask.last) {
    ctx.moveTo(mask.last[0], mask.last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  } else {
    ctx.arc(p[0], p[1], size / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  mask.last = p;
  state.maskDirty = true;
}

function setupMask() {
  const c = $("mask-canvas");
  c.addEventListener("pointerdown", (e) => { c.setPointerCapture(e.pointerId); mask.last = null; paintTo(e); });
  c.addEventListener("pointermove", (e) => { if (mask.last) paintTo(e); });
  const stop = (e) => { mask.last = null; if (c.hasPointerCapture(e.pointerId)) c.releasePointerCapture(e.pointerId); };
  c.addEventListener("pointerup", stop);
  c.addEventListener("pointercancel", stop);
  $("paint-mode").addEventListener("change", (e) => c.classList.toggle("painting", e.target.checked));
  $("clear-mask").addEventListener("click", () => {
    mask.ctx.clearRect(0, 0, c.width, c.height);
    state.maskDirty = false;
  });
  $("fill").addEventListener("click", runInpaint);
}

// the request's own fill settings (POST /api/inpaint's fill, texture_strength, texture_depth); none: the server's
function fillSettings(fill) {
  if (!fill) return {};
  if (fill !== "texture") return { fill };
  const out = { fill, texture_strength: Number($("texture-strength").value) / 100 };
  if (!$("texture-fade").checked) out.texture_depth = 0;
  return out;
}

async function runInpaint() {
  if (!state.image) return;
  const classes = [...document.querySelectorAll("input[name=class]:checked")].map((el) => el.value);
  if (!state.maskDirty && !classes.length) {
    message("paint a mask on the photo or tick a class to remove first", true);
    return;
  }
  const started = performance.now();
  try {
    const fill = $("fill-mode").value;
    const out = await postJSON("/api/inpaint", {
      image_id: state.image.image_id,
      source_pose: state.sourcePose,
      mask: state.maskDirty ? $("mask-canvas").toDataURL("image/png") : null,
      classes,
      channel: state.channel + ":inpaint",
      ...fillSettings(fill),
    });
    state.shownSeq = ++state.seq; // an older transfer answer must not replace the filled photo
    out.layers = {};
    await showResult(out, `filled ${(100 * out.hole_fraction).toFixed(1)}% of the frame in ${Math.round(performance.now() - started)} ms`);
  } catch (err) {
    if (err.status !== 409) message(err.message, true);
  }
}

// ------------------------------------------------------------------------------------- startup

function statusLine() {
  const h = state.health;
  if (!h) return "";
  const weights = h.weights ? h.weights.split("/").filter(Boolean).slice(-2).join("/") : "random weights";
  const det = h.detector.available ? h.detector.name : "no detector";
  return `${weights} | frame ${h.frame[0]}x${h.frame[1]} | ${h.device} | ${det}`;
}

function wire() {
  $("upload").addEventListener("change", (e) => uploadPhoto(e.target.files[0]));
  $("use-library").addEventListener("click", () => {
    const item = state.library[Number($("library").value)];
    if (item) setTarget(item.pose);
  });
  $("pose-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const item = await postFile(`/api/poses/file?align_to=${state.image.image_id}`, file);
      setTarget(item.pose);
      message((item.notes || []).join("\n"));
    } catch (err) {
      message(err.message, true);
    }
    e.target.value = "";
  });
  $("pose-photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    message(`finding the pose in ${file.name}...`);
    try {
      const item = await postFile(
        `/api/keypoints?store=false&align_to=${state.image.image_id}&name=${encodeURIComponent(file.name)}`, file);
      setTarget(item.pose);
      message((item.notes || []).join("\n"));
    } catch (err) {
      message(err.message, true);
    }
    e.target.value = "";
  });
  $("mirror").addEventListener("click", () => setTarget(mirrorPose(state.targetPose)));
  $("reset-target").addEventListener("click", () => setTarget(state.sourcePose));
  $("set-a").addEventListener("click", () => {
    state.poseA = copyPose(state.targetPose);
    $("interp").value = "0";
    $("interp").disabled = !state.poseB;
    message("pose A set" + (state.poseB ? "; slide from A to B" : "; now set B"));
  });
  $("set-b").addEventListener("click", () => {
    state.poseB = copyPose(state.targetPose);
    $("interp").value = "100";
    $("interp").disabled = !state.poseA;
    message("pose B set" + (state.poseA ? "; slide from A to B" : "; now set A"));
  });
  $("interp").addEventListener("input", updateInterp);
  $("animate").addEventListener("click", async () => {
    const a = state.poseA || state.sourcePose;
    const b = state.poseB || state.targetPose;
    message("rendering the animation...");
    try {
      const out = await postJSON("/api/animation", {
        image_id: state.image.image_id,
        source_pose: state.sourcePose,
        poses: [a, b],
        frames: Number($("frames").value),
        bounce: $("bounce").checked,
      });
      const link = $("download-animation");
      link.href = out.url;
      link.download = out.file;
      link.textContent = `Animation (${out.frames} frames)`;
      link.hidden = false;
      const preview = $("animation-preview");
      preview.src = out.url;
      preview.hidden = false;
      message(`animation written: ${out.file}`);
    } catch (err) {
      message(err.message, true);
    }
  });
  $("download-pose").addEventListener("click", async () => {
    try {
      const out = await postJSON("/api/poses/openpose", {
        pose: state.targetPose, width: state.image.width, height: state.image.height,
      });
      download(out.url, out.file);
      message(`pose written: ${out.file}`);
    } catch (err) {
      message(err.message, true);
    }
  });
  for (const el of document.querySelectorAll("input[name=layer]")) el.addEventListener("change", () => scheduleTransfer(0));
  $("layer-opacity").addEventListener("input", (e) => {
    for (const el of document.querySelectorAll("img.layer")) el.style.opacity = String(Number(e.target.value) / 100);
  });
  setupMask();
}

async function start() {
  wire();
  try {
    state.health = await api("/api/health");
  } catch (err) {
    $("status").textContent = "server not reachable";
    message(err.message, true);
    return;
  }
  const h = state.health;
  $("status").textContent = statusLine();
  $("random-warning").hidden = !h.random_init;
  $("frames").max = String(h.limits.animation_max_frames);
  const box = $("classes");
  for (const name of h.classes.slice(1)) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "class";
    input.value = name;
    label.append(input, " " + name);
    box.appendChild(label);
  }
  try {
    await loadExamples();
  } catch (err) {
    message(err.message, true);
  }
  document.body.dataset.ready = "1";
}

start();
