"""Local stand-ins for the outside services (OpenAI, Slack), served on 127.0.0.1 for tests, the shell and the demo.

Never imported by bot/ or handlers/: the product reaches them only over HTTP, through the real SDKs.
"""
