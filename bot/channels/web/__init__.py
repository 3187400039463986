"""The web chat: a page, an embeddable widget and a JSON/SSE API for the shop's own website."""
