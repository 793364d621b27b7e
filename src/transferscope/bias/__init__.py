"""transferscope.bias (see the spec and the README)."""
