#!/usr/bin/env python3
"""Check an `accrete export --format onnx` model with onnx and onnxruntime.

Usage: check_onnx_export.py PROBS_MODEL.onnx LOGITS_MODEL.onnx INPUTS.csv PREDICT.csv
PROBS_MODEL was exported with --softmax, LOGITS_MODEL without. INPUTS.csv is a header row
and one sample per row (features only, as `accrete predict` read them); PREDICT.csv is
what `accrete predict` printed for it. Checks: onnx.checker.check_model (full_check, with
shape inference) passes; opset >= 13; one input "input" [batch, ...] with a symbolic batch
dimension and one output "probabilities" / "logits" [batch, classes]; onnxruntime's CPU
provider reproduces accrete's probabilities within 1e-5 (max |difference| printed), for
the whole batch and for a batch of one sample (the batch is dynamic), and softmax of the
logits model's outputs (float64) does too. Exit status 0 when all agree.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-5
probs_path, logits_path, inputs_path, predict_path = sys.argv[1:5]


def table(path):
    rows = [line.split(",") for line in open(path).read().splitlines()[1:] if line]
    return np.array(rows, dtype=np.float64)


def check(path, output):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 13, f"{path}: opset {opset}"
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "input" and out.name == output, (inp.name, out.name)
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and not dims[0].HasField("dim_value"), dims[0]
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"
    shape = [d.dim_value for d in dims[1:]]
    ops = [n.op_type for n in model.graph.node]
    print(f"{path}: checker ok, opset {opset}, input [batch, {', '.join(map(str, shape))}], "
          f"{len(ops)} nodes: {' '.join(ops)}")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]), shape


x = table(inputs_path).astype(np.float32)
want = table(predict_path)
n = x.shape[0]
sess, shape = check(probs_path, "probabilities")
xs = x.reshape([n] + shape)
(p,) = sess.run(None, {"input": xs})
assert p.shape == want.shape, (p.shape, want.shape)
err = np.abs(p.astype(np.float64) - want).max()
(one,) = sess.run(None, {"input": xs[:1]})
err1 = np.abs(one[0].astype(np.float64) - want[0]).max()
print(f"onnxruntime {ort.__version__}: {n} samples, max |p - accrete predict| = {err:.3e} "
      f"(batch of one: {err1:.3e})")

lsess, _ = check(logits_path, "logits")
(z,) = lsess.run(None, {"input": xs})
z = z.astype(np.float64)
e = np.exp(z - z.max(axis=1, keepdims=True))
lerr = np.abs(e / e.sum(axis=1, keepdims=True) - want).max()
print(f"logits model: max |softmax(z) - accrete predict| = {lerr:.3e}")
ok = bool(np.isfinite(p).all()) and err < TOL and err1 < TOL and lerr < TOL
sys.exit(0 if ok else 1)
