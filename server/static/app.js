// The avsearch page: search by words, a dropped file or a hit ("more like this"), play hits.
// Plain JS over the JSON API (/docs); the token travels in the cookie the printed link set.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { hits: [], playing: null, lastSearch: null };

function fmt(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `the service answered ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `the service answered ${response.status}`);
  return data;
}

function say(text) { $("message").textContent = text; }

function options() {
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const text = (id) => $(id).value.trim() || null;
  return {
    k: num("k") || 48, per_file: num("perfile"), path_prefix: text("path"), path_glob: text("glob"),
    views: $("views").value ? [$("views").value] : null, merge: $("merge").checked,
  };
}

async function run(label, request) {
  say(`searching ${label} …`);
  state.lastSearch = { label, request };
  try {
    const answer = await request();
    render(answer.hits);
    say(answer.hits.length ? `${answer.hits.length} hits ${label} (${answer.seconds.toFixed(2)} s)` : `no hits ${label}`);
  } catch (err) {
    say(err.message);
  }
}

function searchText(text) {
  const body = JSON.stringify({ ...options(), text });
  return run(`for “${text}”`, () => api("/api/search", { method: "POST", headers: { "Content-Type": "application/json" }, body }));
}

function searchLike(hit) {
  const body = JSON.stringify({ ...options(), clip_id: hit.clip_id });
  return run(`like ${hit.file_name} ${fmt(hit.start_s)}–${fmt(hit.end_s)}`,
    () => api("/api/search", { method: "POST", headers: { "Content-Type": "application/json" }, body }));
}

function searchFile(file) {
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const request = { ...options(), view: $("mediaview").value || null, start_s: num("start"), end_s: num("end") };
  const form = new FormData();
  form.append("file", file);
  form.append("request", JSON.stringify(request));
  return run(`by ${file.name}`, () => api("/api/search/media", { method: "POST", body: form }));
}

function render(hits) {
  state.hits = hits;
  const list = $("hits"), template = $("hit-template");
  const items = hits.map((hit, i) => {
    const li = template.content.firstElementChild.cloneNode(true);
    li.dataset.index = i;
    li.dataset.clipId = hit.clip_id;
    const img = li.querySelector("img");
    img.src = `/api/clips/${encodeURIComponent(hit.clip_id)}/thumbnail`;
    img.addEventListener("error", () => { img.replaceWith("♪"); }, { once: true });  // the file cannot be read now
    li.querySelector(".name").textContent = hit.file_name;
    li.querySelector(".name").title = hit.path;
    li.querySelector(".time").textContent = `${fmt(hit.start_s)}–${fmt(hit.end_s)}`;
    li.querySelector(".view").textContent = hit.view;
    li.querySelector(".score").textContent = hit.score.toFixed(3);
    const others = hit.duplicate_paths || [];
    if (others.length) {  // one content, several paths (copies, links): listed, never repeated as hits
      const also = li.querySelector(".also");
      also.hidden = false;
      also.textContent = `also at: ${others.map((p) => p.split("/").pop()).join(", ")}`;
      also.title = others.join("\n");
    }
    const play = li.querySelector(".play");
    play.setAttribute("aria-label", `Play ${hit.file_name} from ${fmt(hit.start_s)} to ${fmt(hit.end_s)}, ${hit.view}, score ${hit.score.toFixed(3)}`);
    play.addEventListener("click", () => playHit(i));
    li.querySelector(".like").addEventListener("click", () => searchLike(hit));
    li.querySelector(".like").setAttribute("aria-label", `More like ${hit.file_name} ${fmt(hit.start_s)}`);
    return li;
  });
  list.replaceChildren(...items);
}

function jobPhase(job) {  // "probing 3 of 12", "embedding 40 of 96 clips, 2/12 files"
  if (!job.phase) return "starting";
  const count = job.phase_total == null ? (job.phase_done ? ` ${job.phase_done}` : "") : ` ${job.phase_done} of ${job.phase_total}`;
  return job.phase === "embedding"
    ? `embedding${count} clips, ${job.files_done}/${job.files_total} files`
    : `${job.phase}${count}`;
}

function copies(report) {  // paths of content indexed already: recorded, not embedded again
  const n = (report.duplicates || []).length;
  return n ? `${n} ${n === 1 ? "copy" : "copies"} of indexed content, ` : "";
}

function skipped(report) {  // symlinks leading out of the service's roots: not followed
  const n = (report.skipped || []).length;
  return n ? `${n} skipped (${n === 1 ? "a symlink" : "symlinks"} out of the roots), ` : "";
}

function playHit(i) {
  const hit = state.hits[i];
  const video = $("video");
  state.playing = { hit, index: i };
  document.querySelectorAll(".hit.playing").forEach((el) => el.classList.remove("playing"));
  $("hits").children[i]?.classList.add("playing");
  $("player").hidden = false;
  $("nowplaying").textContent = `${hit.file_name} ${fmt(hit.start_s)}–${fmt(hit.end_s)} (${hit.view})`;
  const src = `/api/clips/${encodeURIComponent(hit.clip_id)}/media`;
  const start = () => { video.currentTime = hit.start_s; video.play().catch(() => {}); };
  if (video.dataset.src !== src) {
    video.dataset.src = src;
    video.src = src;
    video.addEventListener("loadedmetadata", start, { once: true });
  } else {
    start();
  }
}

// Stop at the end of the hit's range: a hit is a time range, not the whole file.
$("video").addEventListener("timeupdate", () => {
  const p = state.playing, video = $("video");
  if (p && video.currentTime >= p.hit.end_s) { video.pause(); }
});

function closePlayer() {
  $("video").pause();
  $("player").hidden = true;
  const i = state.playing?.index;
  state.playing = null;
  if (i !== undefined) $("hits").children[i]?.querySelector(".play").focus();
}

// Arrow keys move between hits in the grid; '/' goes to the search box; Esc closes the player.
function moveFocus(event) {
  const buttons = [...document.querySelectorAll("#hits .play")];
  const at = buttons.indexOf(document.activeElement.closest(".hit")?.querySelector(".play"));
  if (at < 0) return false;
  // Hits in the first row share its top edge (offsetTop would be the button's within its card).
  const top = (b) => b.getBoundingClientRect().top;
  const perRow = Math.max(1, buttons.filter((b) => top(b) === top(buttons[0])).length);
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow, Home: -at, End: buttons.length }[event.key];
  if (step === undefined) return false;
  buttons[Math.min(buttons.length - 1, Math.max(0, at + step))].focus();
  return true;
}

document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
  if (event.key === "/" && !typing) { event.preventDefault(); $("q").focus(); $("q").select(); return; }
  if (event.key === "Escape" && !$("player").hidden) { closePlayer(); return; }
  if (!typing && moveFocus(event)) event.preventDefault();
});

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("q").value.trim();
  if (text) searchText(text); else say("type some words to search for");
});
$("file").addEventListener("change", () => { if ($("file").files[0]) searchFile($("file").files[0]); });
$("close-player").addEventListener("click", closePlayer);
$("like-playing").addEventListener("click", () => { if (state.playing) searchLike(state.playing.hit); });

// Drag and drop anywhere on the page.
let dragDepth = 0;
document.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; document.body.classList.remove("dragging"); } });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove("dragging");
  const file = e.dataTransfer?.files?.[0];
  if (file) searchFile(file);
});

// Index status, and indexing jobs.
async function loadStatus() {
  try {
    const s = await api("/api/status");
    const hours = Object.values(s.hours_by_view).reduce((a, b) => Math.max(a, b), 0);
    const media = hours >= 1 ? `${hours.toFixed(1)} h` : `${Math.max(1, Math.round(hours * 60))} min`;
    $("status").textContent = `${s.files_ok} files · ${s.clips} clips · ${media} of media · `
      + `${s.files_failed} failed · model ${s.model_source}`;
    const roots = $("root");
    if (roots.options.length !== s.roots.length) {
      roots.replaceChildren(...s.roots.map((r, i) => new Option(r, i)));
    }
    $("indexing").hidden = s.roots.length === 0;
    return s;
  } catch (err) {
    $("status").textContent = err.message;
  }
}

async function watchJob(id) {
  const bar = $("jobprogress");
  bar.hidden = false;
  for (;;) {
    const job = await api(`/api/jobs/${id}`).catch((err) => ({ state: "failed", error: err.message }));
    bar.max = Math.max(1, job.files_total);
    bar.value = job.files_done;
    $("jobstate").textContent = job.state === "running"
      ? `${jobPhase(job)}${job.current ? " · " + job.current : ""}`
      : job.state === "done" ? `done: ${job.report.indexed} indexed, ${copies(job.report)}${skipped(job.report)}${job.report.failed.length} failed, ${job.report.unchanged} unchanged`
      : `failed: ${job.error}`;
    if (job.state !== "running") break;
    await loadStatus();
    await new Promise((r) => setTimeout(r, 700));
  }
  bar.hidden = true;
  loadStatus();
}

$("jobform").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const job = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ root: Number($("root").value || 0), folder: $("folder").value.trim() }) });
    watchJob(job.id);
  } catch (err) {
    $("jobstate").textContent = err.message;
  }
});

$("failures-link").addEventListener("click", async (event) => {
  event.preventDefault();
  try {
    const rows = await api("/api/failures");
    say(rows.length ? rows.map((r) => `${r.path}: ${r.error}`).join("\n") : "no failed files");
  } catch (err) { say(err.message); }
});

loadStatus().then((s) => { if (s?.job?.state === "running") watchJob(s.job.id); });
