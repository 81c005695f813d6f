"""Writes it-tickets.csv: the demo's example dataset, made up but shaped like a real help desk export.

Seeded, so the file is the same on every run: `python -m bot.examples.generate_tickets`. Each ticket has a
subject, a body written from phrases typical of its category (some name the category outright, many only
hint at it: "VPN drops" for Network, "invoice" for Billing), a priority, a channel, and the category the
help desk filed it under. A few tickets are filed under a category their words point away from, as happens
in real exports, and a few have an empty priority.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20261122
ROWS = 480
OUTPUT = Path(__file__).with_name("it-tickets.csv")

PHRASES = {
    "Access": [
        "I am locked out of my account", "password reset link does not work", "need access to the finance share",
        "my access badge stopped opening the door", "MFA prompt never arrives on my phone",
        "cannot log in after the password change", "please grant access to the HR folder",
        "account disabled after too many attempts", "SSO login loops back to the sign-in page",
        "new starter needs access to Jira and Confluence",
    ],
    "Billing": [
        "the invoice shows the wrong amount", "we were charged twice for the licence", "billing address is outdated",
        "need a refund for the cancelled seat", "purchase order number missing on the invoice",
        "credit card payment failed for the subscription", "billing contact must be changed",
        "VAT number is not on the receipt", "renewal quote looks higher than last year",
        "expense report rejected because of a billing error",
    ],
    "Email": [
        "Outlook keeps asking for my password", "emails to external addresses bounce back",
        "shared mailbox does not show new mail", "email signature lost after the update",
        "calendar invites arrive without the Teams link", "mailbox is full and I cannot send email",
        "spam filter blocks a customer's emails", "out of office reply does not switch on",
        "distribution list is missing two people", "phishing email reported by the sales team",
    ],
    "Hardware": [
        "laptop screen flickers", "docking station does not charge the laptop", "keyboard keys are sticking",
        "printer on floor 3 jams every time", "monitor stays black after the hardware swap",
        "battery drains in an hour", "the headset microphone crackles", "laptop fan is very loud and hot",
        "need a replacement charger", "the webcam is not detected",
    ],
    "Network": [
        "VPN drops every few minutes", "wifi in meeting room B is very slow", "network share is unreachable",
        "cannot reach the intranet from home", "ethernet port at my desk is dead",
        "DNS does not resolve internal hosts", "network latency makes calls choppy",
        "guest wifi password needs rotating", "firewall blocks the vendor portal", "packet loss on the office network",
    ],
    "Software": [
        "Excel crashes when opening large files", "need a licence for Adobe Acrobat",
        "the CRM app freezes on save", "software update failed with error 0x80070005",
        "please install Python on my workstation", "Teams will not start after the upgrade",
        "the accounting software shows a blank screen", "browser extension is blocked by policy",
        "license key for the design software expired", "the ERP client is very slow to load",
    ],
}
OPENERS = ["Hi team,", "Hello,", "Good morning,", "Hi,", "Urgent:", ""]
CLOSERS = ["Thanks!", "Please help.", "This blocks my work today.", "Not urgent.", "Thank you in advance.", ""]
PRIORITIES = ["low", "medium", "high", "urgent"]
CHANNELS = ["email", "portal", "chat", "phone"]


def make_rows(seed: int = SEED, count: int = ROWS) -> list[dict[str, str]]:
    rng = random.Random(seed)
    categories = sorted(PHRASES)
    weights = [0.15, 0.12, 0.16, 0.19, 0.2, 0.18]
    rows = []
    for number in range(count):
        category = rng.choices(categories, weights)[0]
        written_as = category if rng.random() > 0.04 else rng.choice(categories)  # a mis-filed ticket
        first, second = rng.sample(PHRASES[written_as], 2)
        subject = first[0].upper() + first[1:]
        body = " ".join(p for p in (rng.choice(OPENERS), f"{first}.", f"Also {second}." if rng.random() < 0.5
                                    else "", rng.choice(CLOSERS)) if p)
        rows.append({
            "ticket_id": f"INC{100200 + number * 7}",
            "subject": subject,
            "body": body,
            "priority": "" if rng.random() < 0.03 else rng.choice(PRIORITIES),
            "channel": rng.choice(CHANNELS),
            "category": category,
        })
    return rows


def main() -> None:
    with OUTPUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(make_rows(count=1)[0]))
        writer.writeheader()
        writer.writerows(make_rows())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
