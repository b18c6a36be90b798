"""The HTTP API and its web server."""
