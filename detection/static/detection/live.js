// The live page: history from GET /image, new detections pushed on /faces, uploads of every kind.
import { VIDEO_MESSAGES, catchUpVideos, isVideo, showVideo, videoAccepted } from "./live-videos.js";

const feed = document.getElementById("detections");
const feedEmpty = document.getElementById("feed-empty");
const connection = document.getElementById("connection");
const uploads = document.getElementById("uploads");
const fileInput = document.getElementById("image");
const dropZone = document.getElementById("drop-zone");
const annotate = document.getElementById("annotate");
const detail = document.getElementById("detail");
const csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;

const shown = new Map(); // id -> detection: nothing is shown twice
let newestSeen = null; // created_at of the newest detection shown, for catching up

// ---- the feed ----

function facesText(count) {
  return count === 1 ? "1 face" : `${count} faces`;
}

function card(detection) {
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.id = detection.id;

  const open = document.createElement("button");
  open.type = "button";
  open.className = "card-open";
  open.setAttribute("aria-label", `Open detection with ${facesText(detection.face_count)}`);
  const image = document.createElement("img");
  image.src = detection.url;
  image.alt = `Annotated photo with ${facesText(detection.face_count)}`;
  image.width = detection.width;
  image.height = detection.height;
  open.append(image);
  open.addEventListener("click", () => openDetail(detection));

  const caption = document.createElement("p");
  const count = document.createElement("strong");
  count.className = "face-count";
  count.textContent = facesText(detection.face_count);
  const time = document.createElement("time");
  time.dateTime = detection.created_at;
  time.textContent = new Date(detection.created_at).toLocaleString();
  const json = link(detection.detail_url, "JSON");
  const original = link(detection.original_url, "original");
  caption.append(count, time, json, original);

  item.append(open, caption);
  return item;
}

function link(href, text) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = text;
  return anchor;
}

export function show(detection, { atTop }) {
  if (shown.has(detection.id)) return;
  shown.set(detection.id, detection);
  if (!newestSeen || Date.parse(detection.created_at) > Date.parse(newestSeen)) newestSeen = detection.created_at;
  const item = card(detection);
  if (atTop) feed.prepend(item);
  else feed.append(item);
  feedEmpty.hidden = true;
}

async function fetchJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

// Only finished detections with their faces: in queue mode the list also holds pending and failed ones.
async function loadRecent() {
  const page = await fetchJSON("/image?status=done&page_size=24");
  page.results.forEach((detection) => show(detection, { atTop: false }));
}

// Everything created after the newest detection shown, oldest first so the newest ends on top.
async function catchUp() {
  if (!newestSeen) return loadRecent();
  const missed = [];
  let url = `/image?status=done&page_size=100&after=${encodeURIComponent(newestSeen)}`;
  while (url && missed.length < 1000) {
    const page = await fetchJSON(url);
    missed.push(...page.results);
    url = page.next;
  }
  missed.reverse().forEach((detection) => show(detection, { atTop: true }));
  queued.forEach((status, id) => fetchJSON(`/image/${id}`).then(settle).catch(() => {}));
}

// ---- the websocket ----

let socket = null;
let attempts = 0;
let reconnectTimer = null;

function setConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

function connect() {
  clearTimeout(reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/faces`);
  socket.addEventListener("open", () => {
    attempts = 0;
    setConnection("connected", "Live");
    catchUp().catch(() => {}); // anything that arrived while we were away
    catchUpVideos(fetchJSON).catch(() => {});
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (VIDEO_MESSAGES.has(message.type)) {
      showVideo(message.video);
      return;
    }
    if (message.type === "detection.created") show(message, { atTop: true });
    settle(message); // this page's own queued upload, if it is one: failures are shown only there
  });
  socket.addEventListener("close", () => {
    socket = null;
    if (!navigator.onLine) {
      setConnection("offline", "Offline");
      return; // the "online" event reconnects
    }
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 30 s.
    const delay = Math.min(30000, 500 * 2 ** attempts) * (0.75 + Math.random() / 2);
    attempts += 1;
    setConnection("reconnecting", `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(connect, delay);
  });
}

window.addEventListener("offline", () => {
  setConnection("offline", "Offline");
  if (socket) socket.close();
});
window.addEventListener("online", () => {
  if (!socket) connect();
});

// ---- uploads: picker, drag and drop, paste, camera; one at a time, a progress bar each ----
// Photos go to /image, videos to /video, both with the style chosen for the faces.

const queue = [];
let uploading = false;
// Queue mode: uploads the server accepted (202) that a worker has not finished; id -> their row's status.
const queued = new Map();

function uploaded(status, detection) {
  status.closest("li").classList.add("done");
  status.textContent = `${facesText(detection.face_count)} found`;
  show(detection, { atTop: true });
}

function settle(detection) {
  const status = queued.get(detection.id);
  if (!status || detection.status === "pending") return;
  queued.delete(detection.id);
  if (detection.status === "done") {
    uploaded(status, detection);
  } else {
    status.closest("li").classList.add("failed");
    status.textContent = detection.error.message;
  }
}

function enqueue(files) {
  for (const file of files) {
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name || (isVideo(file) ? "pasted video" : "pasted image");
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", `Upload of ${name.textContent}`);
    const status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = "waiting";
    row.append(name, progress, status);
    uploads.prepend(row);
    queue.push({ file, row, progress, status });
  }
  if (!uploading) next();
}

async function next() {
  const job = queue.shift();
  if (!job) {
    uploading = false;
    return;
  }
  uploading = true;
  await send(job);
  next();
}

function send({ file, row, progress, status }) {
  return new Promise((resolve) => {
    const video = isVideo(file);
    const body = new FormData();
    body.append(video ? "video" : "image", file, file.name || (video ? "pasted-video" : "pasted-image"));
    body.append("annotate", annotate.value);
    const request = new XMLHttpRequest();
    request.open("POST", video ? "/video" : "/image");
    request.responseType = "json";
    request.setRequestHeader("Accept", "application/json");
    // When the server needs API keys, a logged-in operator uploads with the session and this token.
    request.setRequestHeader("X-CSRFToken", csrfToken);
    status.textContent = "uploading…";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = (100 * event.loaded) / event.total;
    });
    request.addEventListener("load", () => {
      progress.value = 100;
      const answer = request.response;
      if (video && request.status === 202 && answer) {
        videoAccepted(answer, file.name, status);
      } else if (request.status === 201 && answer) {
        uploaded(status, answer);
      } else if (request.status === 202 && answer) {
        status.textContent = "queued, finding faces…";
        queued.set(answer.id, status);
        // It may have finished before we were listening for it.
        fetchJSON(answer.detail_url).then(settle).catch(() => {});
      } else {
        row.classList.add("failed");
        status.textContent = answer?.error?.message ?? `The server answered ${request.status}.`;
      }
      resolve();
    });
    request.addEventListener("error", () => {
      row.classList.add("failed");
      status.textContent = "The server could not be reached.";
      resolve();
    });
    request.send(body);
  });
}

fileInput.addEventListener("change", () => {
  enqueue([...fileInput.files]);
  fileInput.value = "";
});

for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
document.addEventListener("drop", (event) => {
  event.preventDefault();
  enqueue([...event.dataTransfer.files]);
});
document.addEventListener("paste", (event) => {
  const files = [...event.clipboardData.files];
  if (files.length) enqueue(files);
});

// The camera, where the browser offers one (https or localhost).
const camera = document.getElementById("camera");
const cameraVideo = document.getElementById("camera-video");
const cameraOpen = document.getElementById("camera-open");
let cameraStream = null;

function closeCamera() {
  cameraStream?.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  camera.hidden = true;
  cameraOpen.hidden = false;
}

if (navigator.mediaDevices?.getUserMedia) {
  cameraOpen.hidden = false;
  cameraOpen.addEventListener("click", async () => {
    try {
      cameraStream = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (error) {
      cameraOpen.textContent = `Camera unavailable: ${error.message}`;
      cameraOpen.disabled = true;
      return;
    }
    cameraVideo.srcObject = cameraStream;
    camera.hidden = false;
    cameraOpen.hidden = true;
  });
  document.getElementById("camera-close").addEventListener("click", closeCamera);
  document.getElementById("camera-snap").addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = cameraVideo.videoWidth;
    canvas.height = cameraVideo.videoHeight;
    canvas.getContext("2d").drawImage(cameraVideo, 0, 0);
    canvas.toBlob((blob) => {
      if (blob) enqueue([new File([blob], `camera-${Date.now()}.jpg`, { type: "image/jpeg" })]);
    }, "image/jpeg", 0.92);
  });
}

// ---- the detail view ----

function openDetail(detection) {
  document.getElementById("detail-caption").textContent = detection.faces.length
    ? "Original, each face outlined from the JSON: hover, tap or focus one for its confidence"
    : "Original";
  document.getElementById("detail-title").textContent =
    `${facesText(detection.face_count)} · ${new Date(detection.created_at).toLocaleString()}`;
  const original = document.getElementById("detail-original");
  original.src = detection.original_url;
  original.width = detection.width;
  original.height = detection.height;
  document.getElementById("detail-annotated").src = detection.url;
  document.getElementById("detail-json").href = detection.detail_url;
  document.getElementById("detail-original-link").href = detection.original_url;

  const overlay = document.getElementById("detail-overlay");
  const list = document.getElementById("detail-faces");
  overlay.replaceChildren();
  list.replaceChildren();
  detection.faces.forEach((face, index) => {
    const confidence = `${Math.round(face.confidence * 100)}%`;
    const box = document.createElement("div");
    box.className = "face-box";
    box.tabIndex = 0;
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", `Face ${index + 1}, confidence ${confidence}`);
    // Percentages keep the boxes on the faces at any displayed size.
    box.style.left = `${(100 * face.box.x) / detection.width}%`;
    box.style.top = `${(100 * face.box.y) / detection.height}%`;
    box.style.width = `${(100 * face.box.width) / detection.width}%`;
    box.style.height = `${(100 * face.box.height) / detection.height}%`;
    const label = document.createElement("span");
    label.className = "face-label";
    label.textContent = `#${index + 1} ${confidence}`;
    box.append(label);
    overlay.append(box);

    const item = document.createElement("li");
    item.textContent = `Confidence ${confidence}, at (${face.box.x}, ${face.box.y}), ${face.box.width} × ${face.box.height} px`;
    list.append(item);
  });
  if (!detection.faces.length) {
    const item = document.createElement("li");
    item.textContent = "No faces found.";
    list.append(item);
  }
  detail.showModal();
}

document.getElementById("detail-close").addEventListener("click", () => detail.close());
detail.addEventListener("click", (event) => {
  if (event.target === detail) detail.close(); // a click on the backdrop
});

// ---- start: history first, then live ----

Promise.all([
  loadRecent().catch(() => setConnection("offline", "Cannot load detections")),
  catchUpVideos(fetchJSON).catch(() => {}),
]).finally(connect);
