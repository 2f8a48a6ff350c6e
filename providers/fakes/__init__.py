"""Local fake provider servers, built from each provider's published spec (DESIGN §4, §8)."""
