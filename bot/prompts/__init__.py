"""What a request says: templates, the tokenizers' vocabularies, and exact prompt token counts."""
