// The live camera: the camera's frames go to /stream one or two at a time, and the faces the server
// answers are drawn over the video. Nothing is stored unless the user saves a snapshot.
import { show } from "./live.js";

const startButton = document.getElementById("live-start");
const stopButton = document.getElementById("live-stop");
const anonymiseButton = document.getElementById("live-anonymise");
const snapshotButton = document.getElementById("live-snapshot");
const status = document.getElementById("live-status");
const view = document.getElementById("live-view");
const video = document.getElementById("live-video");
const overlay = document.getElementById("live-overlay");
const faceBoxes = document.getElementById("live-faces");
const readouts = {
  fps: document.getElementById("live-fps"),
  rtt: document.getElementById("live-rtt"),
  detect: document.getElementById("live-detect"),
  count: document.getElementById("live-count"),
};

const LONG_SIDE = 640; // frames sent are at most this long: the fast profile detects at 640 px anyway
const JPEG_QUALITY = 0.8;
// One frame being detected and one waiting: the server's next frame is ready the moment it is free,
// and it never has a third to drop (the newest waiting frame replaces an older one).
const MAX_IN_FLIGHT = 2;
const READOUT_WINDOW_MS = 2000; // the numbers shown are over the answers of the last two seconds
const ANONYMISE_MARGIN = 0.2; // as the server's: hairline, ears and chin too
const PIXELATE_BLOCKS = 8; // squares across a pixelated face, as the server's
const BLUR_BLOCKS = 5; // a face shrunk this far and smoothly enlarged has no feature left to recognise
const LIVE_TEXT = "Live: finding faces in every frame.";
const ERROR_SHOWN_MS = 5000; // a passing error stays readable this long while answers keep coming
const STYLES = [
  { style: "box", text: "Faces shown" },
  { style: "blur", text: "Faces blurred" },
  { style: "pixelate", text: "Faces pixelated" },
];
// A new video frame is worth sending; where the browser cannot say when one arrives, every answer sends.
const WATCHES_FRAMES = "requestVideoFrameCallback" in HTMLVideoElement.prototype;

const frameCanvas = document.createElement("canvas"); // the frame as sent
const faceCanvas = document.createElement("canvas"); // a face shrunk, to blur or pixelate it
let styleIndex = 0;
let session = null; // the running stream, null when stopped

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function mean(values) {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

// ---- start and stop ----

function cameraRefusal(error) {
  const reasons = {
    NotAllowedError: "The camera was not allowed. Allow it in the browser's site settings, then start again.",
    NotFoundError: "No camera was found.",
    NotReadableError: "The camera is busy in another application.",
  };
  return reasons[error.name] ?? `The camera could not start: ${error.message}`;
}

async function start() {
  startButton.disabled = true;
  setStatus("starting", "Asking for the camera…");
  let camera;
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (error) {
    setStatus("error", cameraRefusal(error));
    startButton.disabled = false;
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/stream`);
  socket.binaryType = "arraybuffer";
  session = {
    camera,
    socket,
    ready: false,
    limits: null,
    framesSent: 0,
    inFlight: new Map(), // seq -> when it was sent
    encoding: false,
    freshFrame: !WATCHES_FRAMES,
    answer: null, // the latest frame.faces
    recent: [], // { at, rtt, detect } of the answers in the last READOUT_WINDOW_MS
    drawing: 0,
    errorAt: 0,
  };
  const current = session;
  // Unplugged, or its permission withdrawn: the stream has nothing more to send.
  camera.getVideoTracks()[0].addEventListener("ended", () => {
    if (session === current) stop("closed", "The camera stopped. Start again to retry.");
  });
  socket.addEventListener("message", (event) => received(current, JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (session === current) stop("closed", closeReason(current, event));
  });

  video.srcObject = camera;
  Object.values(readouts).forEach((readout) => (readout.textContent = "–"));
  view.hidden = false;
  startButton.hidden = true;
  stopButton.hidden = false;
  startButton.disabled = false;
  setStatus("starting", "Connecting to the server…");
  if (WATCHES_FRAMES) watchFrames(current);
  current.drawing = requestAnimationFrame(() => draw(current));
}

function stop(state, text) {
  const ended = session;
  session = null;
  ended.camera.getTracks().forEach((track) => track.stop());
  if (ended.socket.readyState <= WebSocket.OPEN) ended.socket.close(1000, "stopped");
  cancelAnimationFrame(ended.drawing);
  video.srcObject = null;
  view.hidden = true;
  faceBoxes.replaceChildren();
  stopButton.hidden = true;
  startButton.hidden = false;
  snapshotButton.disabled = true;
  setStatus(state, text);
}

function closeReason(ended, event) {
  if (!ended.ready) {
    // A refused handshake reaches the page as a bare 1006, whatever the reason: the likely ones.
    return (
      "The server refused the live stream: it may need you to log in, " +
      "or too many streams are open from this address."
    );
  }
  if (event.code === 1009) {
    const limit = Math.round(ended.limits.max_frame_bytes / 1024);
    return `A frame was larger than the server accepts (${limit} KiB), so it closed the stream.`;
  }
  if (event.code === 1008) return "The server closed the stream: more was sent than it allows, or access ended.";
  if (event.code === 1000 || event.code === 1001) return "The server ended the stream, perhaps restarting.";
  return `The connection to the server was lost (code ${event.code}). Start again to retry.`;
}

// ---- frames out, answers in ----

function watchFrames(current) {
  video.requestVideoFrameCallback(() => {
    if (session !== current) return;
    current.freshFrame = true;
    sendFrame(current);
    watchFrames(current);
  });
}

function sendFrame(current) {
  const { socket } = current;
  if (!current.ready || current.encoding || !current.freshFrame || current.inFlight.size >= MAX_IN_FLIGHT) return;
  if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || socket.bufferedAmount > 0) return;
  current.encoding = true;
  current.freshFrame = !WATCHES_FRAMES;
  const scale = Math.min(1, LONG_SIDE / Math.max(video.videoWidth, video.videoHeight));
  frameCanvas.width = Math.round(video.videoWidth * scale);
  frameCanvas.height = Math.round(video.videoHeight * scale);
  frameCanvas.getContext("2d").drawImage(video, 0, 0, frameCanvas.width, frameCanvas.height);
  frameCanvas.toBlob(
    async (blob) => {
      const frame = await blob?.arrayBuffer();
      current.encoding = false;
      if (!frame || session !== current || socket.readyState !== WebSocket.OPEN) return;
      current.framesSent += 1; // the server counts binary messages the same way: this is its seq
      current.inFlight.set(current.framesSent, performance.now());
      socket.send(frame);
      sendFrame(current); // the second one in flight, if a new frame is already there
    },
    "image/jpeg",
    JPEG_QUALITY,
  );
}

// Frames up to `seq` were answered or replaced by a newer one: none of them is in flight any more.
function settle(current, seq) {
  for (const sent of current.inFlight.keys()) if (sent <= seq) current.inFlight.delete(sent);
}

function received(current, message) {
  if (session !== current) return;
  if (message.type === "stream.ready") {
    current.ready = true;
    current.limits = message.limits;
    sendStyle();
    snapshotButton.disabled = false;
    setStatus("live", LIVE_TEXT);
    sendFrame(current);
  } else if (message.type === "frame.faces") {
    answered(current, message);
    sendFrame(current);
  } else if (message.type === "snapshot.created") {
    show(message.detection, { atTop: true });
    const count = message.detection.face_count;
    setStatus("live", `Snapshot saved with ${count === 1 ? "1 face" : `${count} faces`}; it is in the list below.`);
  } else if (message.type === "error") {
    if (message.seq !== null && message.seq !== undefined) settle(current, message.seq);
    current.errorAt = performance.now();
    setStatus("error", `The server said: ${message.error.message}`);
    sendFrame(current);
  }
}

function answered(current, message) {
  const now = performance.now();
  const sentAt = current.inFlight.get(message.seq);
  settle(current, message.seq);
  current.answer = message;
  if (status.dataset.state === "error" && now - current.errorAt > ERROR_SHOWN_MS) setStatus("live", LIVE_TEXT);

  const { recent } = current;
  recent.push({ at: now, rtt: sentAt === undefined ? null : now - sentAt, detect: message.detect_ms });
  while (recent[0].at < now - READOUT_WINDOW_MS) recent.shift();
  const rtts = recent.map((answer) => answer.rtt).filter((rtt) => rtt !== null);
  readouts.fps.textContent = recent.length > 1 ? ((1000 * (recent.length - 1)) / (now - recent[0].at)).toFixed(1) : "–";
  readouts.rtt.textContent = rtts.length ? `${Math.round(mean(rtts))} ms` : "–";
  readouts.detect.textContent = `${Math.round(mean(recent.map((answer) => answer.detect)))} ms`;
  readouts.count.textContent = message.faces.length;
  placeFaceBoxes(message);
}

// ---- drawing ----

// Invisible boxes over the faces, in percent of the frame: a hover or a tap shows each one's confidence.
function placeFaceBoxes({ faces, width, height }) {
  while (faceBoxes.children.length > faces.length) faceBoxes.lastElementChild.remove();
  while (faceBoxes.children.length < faces.length) {
    const box = document.createElement("div");
    box.className = "face-box live-face";
    box.append(Object.assign(document.createElement("span"), { className: "face-label" }));
    faceBoxes.append(box);
  }
  faces.forEach((face, index) => {
    const box = faceBoxes.children[index];
    const confidence = `${Math.round(face.confidence * 100)}%`;
    box.title = `Face ${index + 1}: ${confidence} confident`;
    box.firstElementChild.textContent = `#${index + 1} ${confidence}`;
    box.style.left = `${(100 * face.box.x) / width}%`;
    box.style.top = `${(100 * face.box.y) / height}%`;
    box.style.width = `${(100 * face.box.width) / width}%`;
    box.style.height = `${(100 * face.box.height) / height}%`;
  });
}

// Every animation frame: an anonymised face must follow the video, not only the answers.
function draw(current) {
  if (session !== current) return;
  current.drawing = requestAnimationFrame(() => draw(current));
  const ratio = window.devicePixelRatio || 1;
  const width = video.clientWidth;
  const height = video.clientHeight;
  if (overlay.width !== Math.round(width * ratio) || overlay.height !== Math.round(height * ratio)) {
    overlay.width = Math.round(width * ratio);
    overlay.height = Math.round(height * ratio);
  }
  const context = overlay.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const { answer } = current;
  if (!answer || !video.videoWidth) return;
  // The answer is in the pixels of the frame sent; the video shows at its own size.
  const scaleX = width / answer.width;
  const scaleY = height / answer.height;
  const style = STYLES[styleIndex].style;
  for (const face of answer.faces) {
    if (style === "box") {
      outline(context, face.box, scaleX, scaleY);
      dotLandmarks(context, face, scaleX, scaleY);
    } else {
      // Anonymised, the face keeps its box but not its landmarks: where the eyes and mouth are is a trace of it.
      anonymise(context, face.box, answer, style, scaleX, scaleY);
      outline(context, face.box, scaleX, scaleY);
    }
  }
}

function anonymise(context, box, answer, style, scaleX, scaleY) {
  const marginX = box.width * ANONYMISE_MARGIN;
  const marginY = box.height * ANONYMISE_MARGIN;
  const left = Math.max(0, box.x - marginX);
  const top = Math.max(0, box.y - marginY);
  const right = Math.min(answer.width, box.x + box.width + marginX);
  const bottom = Math.min(answer.height, box.y + box.height + marginY);
  const toVideo = video.videoWidth / answer.width;
  const blocks = style === "pixelate" ? PIXELATE_BLOCKS : BLUR_BLOCKS;
  const across = right - left;
  const down = bottom - top;
  faceCanvas.width = Math.max(1, Math.round((blocks * across) / Math.max(across, down)));
  faceCanvas.height = Math.max(1, Math.round((blocks * down) / Math.max(across, down)));
  const shrink = faceCanvas.getContext("2d");
  const [sourceX, sourceY, sourceWidth, sourceHeight] = [left, top, across, down].map((value) => value * toVideo);
  shrink.drawImage(video, sourceX, sourceY, sourceWidth, sourceHeight, 0, 0, faceCanvas.width, faceCanvas.height);
  const [x, y, width, height] = [left * scaleX, top * scaleY, across * scaleX, down * scaleY];
  context.save();
  // Enlarged smoothly it is a blur; without smoothing, squares.
  context.imageSmoothingEnabled = style === "blur";
  if (style === "blur") {
    // A Gaussian (where the browser has canvas filters) smooths the seams between the squares; drawn
    // past the region's edges and clipped to them, so that it does not fade the edges.
    const radius = width / BLUR_BLOCKS / 2;
    context.beginPath();
    context.rect(x, y, width, height);
    context.clip();
    context.filter = `blur(${radius}px)`;
    context.drawImage(faceCanvas, x - radius, y - radius, width + 2 * radius, height + 2 * radius);
  } else {
    context.drawImage(faceCanvas, x, y, width, height);
  }
  context.restore();
}

function outline(context, box, scaleX, scaleY) {
  const rectangle = [box.x * scaleX, box.y * scaleY, box.width * scaleX, box.height * scaleY];
  context.lineWidth = 3;
  context.strokeStyle = "rgb(0 0 0 / 0.55)"; // a dark edge keeps the box visible on light skin and walls
  context.strokeRect(...rectangle);
  context.lineWidth = 2;
  context.strokeStyle = "#35d07f";
  context.strokeRect(...rectangle);
}

function dotLandmarks(context, face, scaleX, scaleY) {
  context.fillStyle = "#ffd400";
  const radius = Math.max(2, (face.box.width * scaleX) / 40);
  for (const [x, y] of face.landmarks) {
    context.beginPath();
    context.arc(x * scaleX, y * scaleY, radius, 0, 2 * Math.PI);
    context.fill();
  }
}

// ---- the buttons ----

// Snapshots are stored the way the preview shows them: boxed, blurred or pixelated.
function sendStyle() {
  if (session?.ready) session.socket.send(JSON.stringify({ type: "options", annotate: STYLES[styleIndex].style }));
}

anonymiseButton.addEventListener("click", () => {
  styleIndex = (styleIndex + 1) % STYLES.length;
  anonymiseButton.textContent = STYLES[styleIndex].text;
  anonymiseButton.dataset.style = STYLES[styleIndex].style;
  sendStyle();
});

snapshotButton.addEventListener("click", () => {
  if (!session?.ready) return;
  session.socket.send(JSON.stringify({ type: "snapshot" }));
  setStatus("live", "Saving a snapshot…");
});

stopButton.addEventListener("click", () => stop("idle", "Stopped. The camera is off."));

if (navigator.mediaDevices?.getUserMedia) {
  startButton.addEventListener("click", start);
} else {
  startButton.disabled = true;
  setStatus(
    "error",
    window.isSecureContext
      ? "This browser offers no camera to web pages."
      : "The camera needs a secure page: open this site over https, or on localhost.",
  );
}
