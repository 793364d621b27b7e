"""transferscope.ntk (see the spec and the README)."""
