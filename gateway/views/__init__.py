"""Thin async views for the /gateway/ routes: parse, authenticate, call the pipeline or the native relay,
render errors through gateway/envelopes.py."""
