"""roi_align against onnxruntime's RoiAlign (an independent C++ implementation), average mode.

ONNX's RoiAlign takes the boxes ``[K, 4]`` and their batch indices ``[K]`` apart;
``coordinate_transformation_mode`` ``half_pixel`` is ``aligned=True`` and ``output_half_pixel``
``aligned=False`` (opset 16); its ``sampling_ratio=0`` is the adaptive grid. Its max mode is not
torchvision's max and is not compared.
"""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import lamina
from lamina.ops.kernels import roi_align as KA
from lamina.ops.kernels import roi_numba
from lamina.vision.ops import roi_align

KERNELS = ["numpy"] + (["numba"] if roi_numba.AVAILABLE else [])


def ort_roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    node = helper.make_node(
        "RoiAlign", ["X", "rois", "batch_indices"], ["Y"], mode="avg", output_height=output_size[0],
        output_width=output_size[1], sampling_ratio=max(sampling_ratio, 0), spatial_scale=spatial_scale,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
    graph = helper.make_graph(
        [node], "roi_align",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("batch_indices", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x, "rois": np.ascontiguousarray(rois[:, 1:]),
                              "batch_indices": rois[:, 0].astype(np.int64)})[0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_roi_align_matches_onnxruntime_on_random_configurations(kernel):
    rng = np.random.default_rng(17)
    configs = 0
    with KA.force_impl(kernel):
        for _ in range(220):
            n = int(rng.integers(1, 4))
            c = int(rng.integers(1, 5))
            h, w = (int(v) for v in rng.integers(1, 12, 2))
            size = tuple(int(v) for v in rng.integers(1, 5, 2))
            scale = float(rng.choice([1.0, 0.5, 0.25, 0.8]))
            sr = int(rng.choice([0, 0, 1, 2, 3]))
            aligned = bool(rng.integers(0, 2))
            k = int(rng.integers(1, 8))
            xy = rng.uniform(-4, max(h, w) / scale + 4, (k, 2))
            wh = rng.uniform(0, 2 * max(h, w) / scale, (k, 2)) * rng.choice([0.1, 1.0])
            wh[rng.random(k) < 0.15] = 0  # boxes of size 0 (onnxruntime rejects x2 < x1 when aligned)
            rois = np.concatenate([rng.integers(0, n, (k, 1)), xy, xy + wh], 1).astype(np.float32)
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            y = roi_align(lamina.tensor(x), lamina.tensor(rois), size, scale, sr, aligned).numpy()
            np.testing.assert_allclose(y, ort_roi_align(x, rois, size, scale, sr, aligned), rtol=1e-4, atol=2e-5,
                                       err_msg=f"config {configs}: size={size} scale={scale} sr={sr} aligned={aligned}")
            configs += 1
    assert configs >= 200
