"""Numbered schema migrations, applied in order by db.migrate."""
