"""Every Slack message gitopsguard sends is written here, and only here.

Text from objects and requests (names, field managers, capabilities, owners, commit messages) is the
attacker's: in Slack's mrkdwn, ``<!channel>`` pings a whole channel and ``<https://x|text>`` disguises a
link. Slack's documented escaping turns ``&``, ``<`` and ``>`` into entities, after which Slack shows the
text as typed. The templates below hold none of those characters, so a message that reaches Slack holds
none either: every interpolated value passes through :func:`escape`.
"""

from __future__ import annotations

from collections.abc import Sequence

FIELD_LIMIT = 1500  # characters of one value; Slack refuses messages over 40,000 (msg_too_long)


def escape(text: str) -> str:
    """Slack's escaping for mrkdwn; long values are cut first, so that an entity is never cut in half."""
    if len(text) > FIELD_LIMIT:
        text = text[:FIELD_LIMIT] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notice_text(title: str, subject: str, what: str, why: str, action: str) -> str:
    return (f"*{escape(title)}*: `{escape(subject)}`\n{escape(what)}\n"
            f"*Why:* {escape(why)}\n*What you can do:* {escape(action)}")  # fmt: skip


def digest_text(namespaces: Sequence[str], total: int, shown: Sequence[tuple[str, str]]) -> str:
    """One message for many notices: how many, of which namespaces, the first few (title, subject), the rest
    counted."""
    named = ", ".join(f"`{escape(n)}`" for n in namespaces[:5]) + (", …" if len(namespaces) > 5 else "")
    where = f"namespace {named}" if len(namespaces) == 1 else f"{len(namespaces)} namespaces ({named})"
    lines = [f"*{total} new notices in {where}* (sent as one: too many to tell one by one)"]
    lines += [f"• {escape(title)}: `{escape(subject)}`" for title, subject in shown]
    if total > len(shown):
        lines.append(f"…and {total - len(shown)} more; the audit log and `gitopsguard status` have every one.")
    return "\n".join(lines)
