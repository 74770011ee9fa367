"""Package what the SOC imports into dist/: byte-identical for the same input."""
