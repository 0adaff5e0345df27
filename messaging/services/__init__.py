"""Writes. Each public function is one transaction and publishes only after it commits."""
