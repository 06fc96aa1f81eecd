"""The embeddable pledge widget server: partner-attributed signatures, live counts, no trackers."""
