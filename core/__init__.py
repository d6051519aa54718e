"""Shared, TensorFlow-free building blocks: preprocessing, decisions, model repository."""
