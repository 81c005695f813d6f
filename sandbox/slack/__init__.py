"""A local Slack: the Web API server (`SlackSandbox`) and the people using it (`SlackDriver`).

    slack = SlackSandbox(bot_token="xoxb-...", signing_secret="...")
    client = AsyncWebClient(token="xoxb-...", base_url=await slack.start())
    driver = SlackDriver(slack, deliver=app)   # a Bolt AsyncApp, or the app's base URL
    await driver.slash_command(user="alice", channel="general", text="new wine")
"""

from sandbox.slack.calls import ApiCall
from sandbox.slack.delivery import AppReply
from sandbox.slack.driver import SlackDriver
from sandbox.slack.server import SlackSandbox
from sandbox.slack.workspace import SlackEvent

__all__ = ["ApiCall", "AppReply", "SlackDriver", "SlackEvent", "SlackSandbox"]
