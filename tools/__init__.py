"""Development and test tools (the local Slack stand-in); not part of the product packages."""
