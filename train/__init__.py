"""Keras training and evaluation of the deepfake detectors (see docs/TRAINING.md).

``python -m train`` trains, ``python -m train.split`` makes the train/val/test layout,
``python -m train.evaluate`` writes the report, ``python -m train.per_source`` and
``python -m train.holdout`` judge it by source, ``python -m train.readme`` renders README's
model section from the reports. :mod:`train.files`, :mod:`train.split`,
:mod:`train.metrics`, :mod:`train.report` and :mod:`train.synthetic` work without TensorFlow.
"""
