"""Databricks Model Serving: OpenAI-compatible serving endpoints, with a personal access token or OAuth M2M."""
