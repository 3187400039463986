"""The language model: one engine that owns it, and the role prompts that use it."""
