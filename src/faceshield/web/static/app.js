// faceshield serve: the page. Plain JS, no build step; every text from the server goes in through textContent.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};
const fmt = (v, d = 3) => (v === null || v === undefined ? "–" : typeof v === "number" ? v.toFixed(d) : String(v));
const mb = (n) => (n / 1e6).toFixed(n < 10e6 ? 1 : 0) + " MB";

const input = $("#files");
const drop = $("#drop");
const go = $("#go");
let dropped = null; // files dropped on the zone (a FileList cannot always be assigned to the input)

function chosenFiles() {
  return dropped || input.files;
}

function showChosen() {
  const list = $("#chosen");
  list.replaceChildren();
  for (const f of chosenFiles()) list.append(el("li", { textContent: `${f.name} (${mb(f.size)})` }));
  go.disabled = chosenFiles().length === 0;
}

input.addEventListener("change", () => { dropped = null; showChosen(); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (!e.dataTransfer.files.length) return;
  try { input.files = e.dataTransfer.files; dropped = null; } catch (_) { dropped = e.dataTransfer.files; }
  showChosen();
});

async function loadConfig() {
  const r = await fetch("/api/config");
  const c = await r.json();
  const sel = $("#preset");
  for (const p of c.presets) sel.append(el("option", { value: p.name, textContent: p.label, selected: p.name === c.default_preset }));
  $("#checks").checked = c.checks;
  $("#limits").textContent = `JPEG, PNG, WebP, BMP, TIFF, GIF photos, or MP4, MOV, MKV, WebM, AVI videos up to ${c.max_video_seconds} s; ` +
    `at most ${mb(c.max_upload_bytes)} and ${(c.max_pixels / 1e6).toFixed(0)} megapixels per file, ${c.max_files} files at once.`;
  $("#keep").textContent = `${Math.round(c.keep_seconds / 60)} minutes after they are done`;
}

function message(text) {
  $("#messages").append(el("p", { className: "error", textContent: text }));
}

$("#upload").addEventListener("submit", async (e) => {
  e.preventDefault();
  const files = chosenFiles();
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  form.append("preset", $("#preset").value);
  form.append("checks", $("#checks").checked ? "1" : "0");
  go.disabled = true;
  $("#messages").replaceChildren();
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      message(body.error || body.detail || `upload refused (HTTP ${r.status})`);
      return;
    }
    for (const m of body.messages || []) message(m);
    track(body);
  } catch (err) {
    message(`upload failed: ${err}`);
  } finally {
    go.disabled = chosenFiles().length === 0;
  }
});

function track(job) {
  const cards = job.files.map((f) => {
    const card = $("#file-template").content.firstElementChild.cloneNode(true);
    $(".name", card).textContent = f.name;
    card.dataset.index = f.index;
    $("#results").prepend(card);
    return card;
  });
  const poll = async () => {
    let state = job;
    try {
      const r = await fetch(`/api/jobs/${job.id}`);
      if (r.ok) state = await r.json();
      else if (r.status === 404) { for (const c of cards) $(".status", c).textContent = "this job was deleted"; return; }
    } catch (_) { /* the server may be busy: try again */ }
    state.files.forEach((f, i) => render(cards[i], f, state));
    if (state.state !== "done") setTimeout(poll, 700);
  };
  job.files.forEach((f, i) => render(cards[i], f, job));
  if (job.state !== "done") setTimeout(poll, 300);
}

function stepText(s) {
  const li = el("li", { className: s.state });
  li.append(s.label);
  if (s.state === "running" && s.total > 1) {
    li.append(el("progress", { max: s.total, value: s.done }), ` ${s.done}/${s.total}`);
    if (s.done === 0) li.append(" · finding faces");
  } else if (s.state === "skipped" && s.note) {
    li.title = s.note;
  }
  return li;
}

function render(card, f, job) {
  card.classList.toggle("done", f.state === "done");
  card.classList.toggle("failed", f.state === "failed" || f.state === "rejected");
  $(".fill", card).style.width = `${Math.round(100 * f.progress)}%`;
  const status = $(".status", card);
  let err = $(".error", card);
  if (f.error) {
    if (!err) { err = el("p", { className: "error" }); status.after(err); }
    err.textContent = f.error;
  }
  const running = f.steps.find((s) => s.state === "running");
  status.textContent = f.state === "queued" ? (job.queue_position ? `waiting (${job.queue_position} job(s) before this one)` : "waiting")
    : f.state === "running" ? `working: ${running ? running.label : "…"}`
    : f.state === "done" ? `done in ${fmt(f.seconds, 1)} s${f.size ? ` · ${f.size[0]}×${f.size[1]} px` : ""}${f.notes.length ? " · " + f.notes.join("; ") : ""}`
    : f.state === "rejected" ? "refused" : "failed";
  $(".steps", card).replaceChildren(...f.steps.map(stepText));
  const imgs = f.images;
  if (!imgs.original || !imgs.protected) return;
  const result = $(".result", card);
  result.hidden = false;
  const before = $(".before", card), after = $(".after", card), amp = $(".amplify", card);
  if (!before.getAttribute("src")) before.src = imgs.original;
  const want = amp.checked && imgs.diff ? imgs.diff : imgs.protected;
  if (after.getAttribute("src") !== want) after.src = want;
  $(".after-caption", card).textContent = amp.checked ? "difference × 10 (black = unchanged)" : "after (protected)";
  if (!amp.dataset.bound) {
    amp.dataset.bound = "1";
    amp.addEventListener("change", () => render(card, f, job));
  }
  const dl = $(".download", card);
  if (f.download) { dl.href = f.download; dl.setAttribute("download", f.download_name || ""); dl.hidden = false; } else dl.hidden = true;
  renderEvaluation($(".evaluation", card), f.evaluation);
  renderChecks($(".deepfake", card), f);
}

function renderEvaluation(table, ev) {
  if (!ev || table.dataset.done) return;
  table.dataset.done = "1";
  const row = (cells, th = false) => el("tr", {}, ...cells.map((c) => el(th ? "th" : "td", { textContent: c })));
  table.append(row(["landmark extractor", "faces before", "faces after (same place)", "NME (fraction of " + (ev.extractors[0] || {}).normaliser + ")"], true));
  for (const r of ev.extractors) table.append(row([r.extractor, r.faces_before, r.faces_after, fmt(r.nme)]));
  table.append(row(["SSIM whole image", "SSIM face", "PSNR (dB)", `largest change (8-bit levels, budget ${ev.eps_levels})`], true));
  table.append(row([fmt(ev.ssim_i), fmt(ev.mask_ssim), fmt(ev.psnr, 1), String(ev.linf)]));
  table.append(row(["SSIMULACRA 2 face (100 identical, > 90 invisible, < 50 visibly degraded)", "FLIP face (0 identical)", "", ""], true));
  table.append(row([fmt(ev.ssimulacra2_face, 1), fmt(ev.flip_face), "", ""]));
}

function renderChecks(box, f) {
  const c = f.checks || {};
  const key = JSON.stringify([c, Object.keys(f.images)]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren();
  if (c.swap) {
    box.append(el("h3", { textContent: "DeepFake check: face swap (clean → swap | protected → swap)" }));
    if (c.swap.error) box.append(el("p", { className: "note", textContent: c.swap.error }));
    else {
      box.append(el("p", { textContent: `${c.swap.verdict}; ${c.swap.aligner} landmark NME ${fmt(c.swap.nme)}, SSIM of the two swaps ${fmt(c.swap.ssim_w)} (lower = the protection changed the DeepFake more)` }));
      if (f.images.swap) box.append(el("img", { className: "swap", src: f.images.swap, alt: "face swap of the original and of the protected photo" }));
    }
  }
  if (c.edit) {
    box.append(el("h3", { textContent: "DeepFake check: StarGAN editor (top: original and its edits; bottom: protected and its edits)" }));
    if (c.edit.error) box.append(el("p", { className: "note", textContent: c.edit.error }));
    else {
      box.append(el("p", { textContent: `${c.edit.disrupted} of ${c.edit.edits} edits disrupted (L2 ≥ ${c.edit.threshold}; ${c.edit.domains.join(", ")})` }));
      if (f.images.edit) box.append(el("img", { src: f.images.edit, alt: "editor output for the original and the protected photo" }));
    }
  }
}

loadConfig().catch((e) => message(`cannot load the settings: ${e}`));
