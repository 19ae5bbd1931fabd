"""The raw proxy route: /gateway/proxy/<endpoint>/<path>."""
