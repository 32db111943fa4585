"""Go: the rules engine in JAX (`jaxai.go.rules`) and GTP coordinates (`jaxai.go.coords`)."""
