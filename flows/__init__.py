"""Prefect flows. They compose library calls from pipeline/; they do not compute."""
