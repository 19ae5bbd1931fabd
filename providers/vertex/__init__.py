"""Google Vertex AI: Gemini models (generateContent, :predict embeddings), Claude models (rawPredict)."""
