"""Shared, TensorFlow-free building blocks: preprocessing, decisions, model repository,
command-line options (:mod:`core.options`) and generated document sections
(:mod:`core.sections`)."""
