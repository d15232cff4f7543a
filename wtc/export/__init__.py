"""Exporters: a spec's network at given widths (and trained weights) to a deployable file,
verified before it lands. ONNX today (onnx.py); another format is one more module here."""

from wtc.export.onnx import ExportReport, export_onnx

__all__ = ["ExportReport", "export_onnx"]
