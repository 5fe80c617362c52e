"""Fuzzing machinery: a model of the heaps, its drivers, and the atheris target."""
