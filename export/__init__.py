"""Export stage: Keras model -> checked, optimised ONNX (+ FP16 / INT8 / TensorRT variants).

``python -m export`` writes one model-repository entry ``<repo>/<name>/<version>/`` with
``model.onnx`` and ``metadata.json`` (see docs/CONTRACTS.md) after a Keras-vs-ONNX parity
check; ``python -m export.tensorrt`` adds a TensorRT engine ``model.plan`` to an entry.
Importing this package does not import TensorFlow: only the Keras-facing steps do.
"""
