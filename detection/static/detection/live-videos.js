// Videos on the page: a card each, newest first, whose progress bar the live feed moves ("video.progress"
// on /faces) until a player of the result replaces it ("video.done") or the reason it failed does
// ("video.failed"). Videos uploaded from anywhere appear, not only this page's.
const list = document.getElementById("videos");
const empty = document.getElementById("videos-empty");

export const VIDEO_MESSAGES = new Set(["video.progress", "video.done", "video.failed"]);
// What the browser may not label video/* (an .mkv often comes with no type at all).
const VIDEO_NAME = /\.(mp4|m4v|mov|mkv|webm|avi)$/i;
const STAGE = { pending: 0, running: 1, done: 2, failed: 2 };
const STYLE_WORDS = { box: "outlined", blur: "blurred", pixelate: "pixelated" };

const cards = new Map(); // id -> { video, item, parts }: one card per video, updated in place
const names = new Map(); // id -> the file's name, for this page's own uploads
const uploadRows = new Map(); // id -> the status line of this page's upload row, told when the video ends

export function isVideo(file) {
  if (file.type.startsWith("video/")) return true;
  return !file.type.startsWith("image/") && VIDEO_NAME.test(file.name ?? "");
}

// ---- words and numbers ----

function tracksText(count) {
  return count === 1 ? "1 face tracked" : `${count} faces tracked`;
}

function clock(seconds) {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function timeLeft(seconds) {
  if (seconds === null || seconds === undefined) return null;
  if (seconds < 1) return "almost done";
  if (seconds < 60) return `about ${Math.ceil(seconds)} s left`;
  return `about ${Math.ceil(seconds / 60)} min left`;
}

function progressText(video) {
  const parts = [`${video.frames_done} of ${video.frames_total} frames`];
  if (video.processing_fps > 0) parts.push(`${video.processing_fps.toFixed(video.processing_fps < 10 ? 1 : 0)} fps`);
  const left = timeLeft(video.seconds_left);
  if (left) parts.push(left);
  return parts.join(" · ");
}

function link(href, text) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = text;
  return anchor;
}

// ---- the cards ----

function card(video) {
  const item = document.createElement("li");
  item.className = "video-card";
  item.dataset.id = video.id;

  const head = document.createElement("p");
  head.className = "video-head";
  const title = document.createElement("strong");
  title.className = "video-title";
  const time = document.createElement("time");
  time.dateTime = video.created_at;
  time.textContent = new Date(video.created_at).toLocaleString();
  head.append(title, time);

  const stage = document.createElement("div"); // the progress bar, then the player
  stage.className = "video-stage";
  const state = document.createElement("p");
  state.className = "video-state";
  const links = document.createElement("p");
  links.className = "video-links";
  item.append(head, stage, state, links);
  return { item, parts: { title, stage, state, links } };
}

function titleText(video) {
  const name = names.get(video.id) ?? "Video";
  const size = video.width && video.height ? ` · ${video.width}×${video.height}` : "";
  const length = video.duration ? ` · ${clock(video.duration)}` : "";
  return `${name}${length}${size}`;
}

function render(entry) {
  const { video, item, parts } = entry;
  const moved = item.dataset.status !== video.status; // links are rebuilt only then: focus stays put
  item.dataset.status = video.status;
  parts.title.textContent = titleText(video);
  if (video.status === "pending" || video.status === "running") {
    let bar = parts.stage.querySelector("progress");
    if (!bar) {
      bar = document.createElement("progress");
      bar.max = 1;
      bar.setAttribute("aria-label", `Finding faces in ${names.get(video.id) ?? "the video"}`);
      parts.stage.replaceChildren(bar);
    }
    if (video.status === "pending") {
      bar.removeAttribute("value"); // indeterminate: no worker has it yet
      parts.state.textContent = "Waiting for its turn…";
    } else {
      bar.value = video.progress;
      parts.state.textContent = progressText(video);
    }
    if (moved) parts.links.replaceChildren(link(video.original_url, "original"), link(video.detail_url, "JSON"));
  } else if (video.status === "done") {
    const player = document.createElement("video");
    player.controls = true;
    player.preload = "metadata";
    player.playsInline = true;
    // Its size before the first frame arrives, so the page does not jump when it does.
    player.width = video.width;
    player.height = video.height;
    if (video.poster_url) player.poster = video.poster_url;
    player.src = video.url;
    player.setAttribute("aria-label", `The video with its faces ${STYLE_WORDS[video.annotate_style] ?? "marked"}`);
    parts.stage.replaceChildren(player);
    const audio = video.has_audio ? "" : " · no sound";
    parts.state.textContent = `${tracksText(video.track_count)} · ${clock(video.duration)}${audio}`;
    const download = link(video.url, "Download");
    download.className = "video-download";
    download.download = ""; // saved, not opened, under the name the server gives it
    parts.links.replaceChildren(
      download,
      link(video.faces_url, "faces per frame"),
      link(video.original_url, "original"),
      link(video.detail_url, "JSON"),
    );
  } else {
    parts.stage.replaceChildren();
    parts.state.textContent = video.error?.message ?? "The video could not be processed.";
    parts.links.replaceChildren(link(video.detail_url, "JSON"));
  }
}

// Messages and answers can cross (a catch-up's list sent before the last progress message): a video
// only ever moves forward, pending -> running -> done or failed, its frames done never going down.
function isNewer(video, old) {
  if (STAGE[video.status] !== STAGE[old.status]) return STAGE[video.status] > STAGE[old.status];
  return video.status === "running" && video.frames_done >= old.frames_done; // the speed may be newer
}

function place(item, video) {
  // Newest first, whatever order they arrive in.
  const created = Date.parse(video.created_at);
  const later = [...list.children].find((other) => Date.parse(cards.get(other.dataset.id).video.created_at) < created);
  list.insertBefore(item, later ?? null);
}

export function showVideo(video) {
  let entry = cards.get(video.id);
  if (!entry) {
    entry = { video, ...card(video) };
    cards.set(video.id, entry);
    place(entry.item, video);
    empty.hidden = true;
  } else if (isNewer(video, entry.video)) {
    entry.video = video;
  } else {
    return;
  }
  render(entry);
  tellUploadRow(video);
}

function tellUploadRow(video) {
  const status = uploadRows.get(video.id);
  if (!status || STAGE[video.status] < 2) return;
  uploadRows.delete(video.id);
  if (video.status === "done") {
    status.closest("li").classList.add("done");
    status.textContent = `${tracksText(video.track_count)}, ready to play below`;
  } else {
    status.closest("li").classList.add("failed");
    status.textContent = video.error?.message ?? "The video could not be processed.";
  }
}

// This page's own upload, answered 202: its card, and its upload row told when it ends.
export function videoAccepted(video, name, status) {
  if (name) names.set(video.id, name);
  uploadRows.set(video.id, status);
  status.textContent = "uploaded, finding faces in every frame…";
  showVideo(video);
  // The live feed may have told of it before this answer came: its card takes the name, the row its end.
  const entry = cards.get(video.id);
  entry.parts.title.textContent = titleText(entry.video);
  tellUploadRow(entry.video);
}

// On load and after every reconnect: the newest videos as they are now (some may have moved on, or
// ended, while no messages reached us), and any unfinished one too far back to be among them.
export async function catchUpVideos(fetchJSON) {
  const page = await fetchJSON("/video?page_size=24");
  page.results.forEach(showVideo);
  const listed = new Set(page.results.map((video) => video.id));
  for (const { video } of cards.values()) {
    if (STAGE[video.status] < 2 && !listed.has(video.id)) refresh(video).catch(() => {});
  }
}

async function refresh(video) {
  const response = await fetch(video.detail_url, { headers: { Accept: "application/json" } });
  if (response.ok) showVideo(await response.json());
  else if (response.status === 404) forget(video.id); // deleted (DELETE /video/<id>) while we were away
}

function forget(id) {
  cards.get(id)?.item.remove();
  cards.delete(id);
  empty.hidden = cards.size > 0;
}
