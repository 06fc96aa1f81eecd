"""Thin request handlers: one module per kind of page. They hold no SQL."""
