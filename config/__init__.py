"""Settings: the only package that reads the process environment."""
