"""Reads, one module per subject. Selectors never import services (DESIGN.md, "Layout")."""
