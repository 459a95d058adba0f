"""Content-addressed blob stores."""
