"""`distill-bot shell` and `distill-bot demo`: the real app driven from a terminal against the sandbox servers.

    script.py      the script language (one step per line)
    session.py     a session: stand-ins, database, the app from build_bot, the steps carried out
    render.py      Slack messages as terminal text
    transcript.py  --transcript: every Slack Web API call the app made, as JSON lines
    cli.py         the `shell` command; demo.py and demo.distill: the `demo` command and its script
"""
