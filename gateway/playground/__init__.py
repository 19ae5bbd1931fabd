"""The admin's playground: try an endpoint from its admin page, through the same pipeline as any client
(guardrails, budgets, routing, usage records attributed to the staff user), with copyable client snippets."""
