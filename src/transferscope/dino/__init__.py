"""transferscope.dino (see the spec and the README)."""
