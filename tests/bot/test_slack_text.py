"""What crosses between Rasa's Markdown and Slack's mrkdwn, and where settings come from."""

import pytest

from bot.slack import SlackSettings, from_mrkdwn, to_mrkdwn


def test_bot_markdown_becomes_slack_mrkdwn_with_control_characters_escaped():
    assert (to_mrkdwn("See **Trail boots** [guide](https://shop.example/boots) <b>&</b>")
            == "See *Trail boots* <https://shop.example/boots|guide> &lt;b&gt;&amp;&lt;/b&gt;")


def test_a_slack_reply_reaches_the_customer_as_plain_markdown_without_pings():
    assert (from_mrkdwn("<!channel> <@U0ALEX> refund is on its way &amp; see "
                        "<https://shop.example/refunds|our policy> &lt;3")
            == "refund is on its way & see [our policy](https://shop.example/refunds) <3")


def test_a_script_link_typed_in_slack_does_not_become_a_link_for_the_customer():
    assert from_mrkdwn("see [this](javascript:alert(1))") == r"see [this]\(javascript:alert(1))"
    assert from_mrkdwn("[ok](https://shop.example)") == "[ok](https://shop.example)"


def test_environment_wins_over_credentials_and_missing_settings_are_named(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    settings = SlackSettings.from_credentials({"bot_token": "xoxb-from-file"})
    assert settings.bot_token == "xoxb-from-env"
    assert settings.missing() == ["SLACK_SIGNING_SECRET"]


@pytest.mark.parametrize("flag, missing", [("true", ["SLACK_APP_TOKEN"]), ("false", [])])
def test_socket_mode_needs_an_app_token_instead_of_a_signing_secret(monkeypatch, flag, missing):
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_SOCKET_MODE", flag)
    settings = SlackSettings.from_credentials({"bot_token": "xoxb-1", "signing_secret": "s"})
    assert settings.missing() == missing
