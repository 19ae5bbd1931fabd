"""OpenAI and every provider that speaks its wire format (Azure, Groq, Mistral, vLLM, any custom api_base)."""
