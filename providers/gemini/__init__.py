"""Google Gemini API (generateContent, streamGenerateContent, embedContent, batchEmbedContents)."""
