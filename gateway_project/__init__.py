"""Django project: settings, URLs and the ASGI entry point that sends /gateway/ routes to the lean handler."""
