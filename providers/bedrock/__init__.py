"""Amazon Bedrock: Converse for unified chat; InvokeModel for Titan embeddings and the Anthropic passthrough."""
