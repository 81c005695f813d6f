"""The `distill-bot` command: the composition root above handlers/ and sandbox/."""
