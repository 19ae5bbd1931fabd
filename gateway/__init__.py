"""The gateway Django app: client routes (views), one request's life (pipeline for the unified routes, passthrough
for the native ones, context), error bodies (errors, envelopes), keys and authentication, and the
packages routing/, budgets/, usage/ and config/. Models, migrations, admin and management commands stay
where Django expects them."""
