"""The Slack surface: Bolt listeners, Block Kit rendering and the notifier. The only package importing slack_bolt."""
