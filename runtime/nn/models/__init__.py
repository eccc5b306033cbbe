"""Complete models built from the layers."""
