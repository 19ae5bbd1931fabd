"""Provider adapters behind one interface (base), the shared HTTP layer (http), the vendors' wire-format
vocabulary (wire: API names, SSE parsing, usage readers) and one package per provider (adapter +
translate)."""
