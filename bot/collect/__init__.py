"""Asking models: the rate limiter, the collection engine (live and Batch), the collect stage, the pilot."""
