// Live list of detections: history from GET /image, then new ones pushed on /faces.
const list = document.getElementById("detections");
const form = document.getElementById("upload");
const uploadStatus = document.getElementById("upload-status");
const connection = document.getElementById("connection");
const shown = new Set();

function card(detection) {
  const item = document.createElement("li");
  item.dataset.id = detection.id;
  const link = document.createElement("a");
  link.href = detection.url;
  const image = document.createElement("img");
  image.src = detection.url;
  image.alt = `Detection with ${detection.face_count} face(s)`;
  image.loading = "lazy";
  link.append(image);
  const caption = document.createElement("p");
  const faces = detection.face_count === 1 ? "1 face" : `${detection.face_count} faces`;
  caption.textContent = `${faces} · ${new Date(detection.created_at).toLocaleString()} · `;
  const json = document.createElement("a");
  json.href = detection.detail_url;
  json.textContent = "JSON";
  const original = document.createElement("a");
  original.href = detection.original_url;
  original.textContent = "original";
  caption.append(json, " · ", original);
  item.append(link, caption);
  return item;
}

function show(detection, { atTop }) {
  if (shown.has(detection.id)) return;
  shown.add(detection.id);
  if (atTop) list.prepend(card(detection));
  else list.append(card(detection));
}

async function loadRecent() {
  const response = await fetch("/image");
  const page = await response.json();
  page.results.forEach((detection) => show(detection, { atTop: false }));
}

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/faces`);
  socket.onopen = () => {
    connection.textContent = "connected";
    delay = 1000;
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "detection.created") show(message, { atTop: true });
  };
  socket.onclose = () => {
    connection.textContent = "reconnecting…";
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  uploadStatus.textContent = "uploading…";
  const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
  const body = await response.json();
  uploadStatus.textContent = response.ok ? `${body.face_count} face(s) found` : body.error.message;
  if (response.ok) form.reset();
});

loadRecent().finally(() => connect());
