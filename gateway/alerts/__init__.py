"""Alert engine and the platform encoder."""
