"""A Rasa user's own project with our intent classifier, sentiment analyser and escalation
policy: `rasa train` alone makes a self-contained model, and the project's own test stories
pass under `rasa test`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from project_helpers import Project, output_of, rasa_in

from bot.services import offline_env

PARSE = """
import asyncio, json, sys
from rasa.core.agent import Agent

async def main():
    agent = Agent.load(sys.argv[1])
    return [await agent.parse_message(text) for text in sys.argv[2:]]

print(json.dumps([{"intent": p["intent"]["name"], "sentiment": p.get("sentiment")}
                  for p in asyncio.run(main())]))
"""


def test_the_model_archive_alone_serves_intents_and_sentiment(voltmart: Project, tmp_path: Path):
    elsewhere = tmp_path / "another-server"
    elsewhere.mkdir()
    archive = Path(shutil.copy(voltmart.model, elsewhere))
    away = voltmart.root.rename(voltmart.root.with_name("voltmart-moved-away"))
    try:  # nothing of the project (its sentiment CSV, its data) can be reached from here
        result = subprocess.run(
            [sys.executable, "-c", PARSE, str(archive), "hey there, good morning",
             "could I talk to a real person please", "thank you so much, that was brilliant!",
             "this is awful, the laptop is broken and I'm furious"],
            cwd=elsewhere, env=offline_env(), capture_output=True, text=True, timeout=600)
    finally:
        away.rename(voltmart.root)
    assert result.returncode == 0, output_of(result)
    assert [p.name for p in elsewhere.iterdir()] == ["voltmart.tar.gz"]
    greet, human, thanks, angry = json.loads(result.stdout.strip().splitlines()[-1])
    assert (greet["intent"], human["intent"]) == ("greet", "request_human")
    for parsed in (greet, human, thanks, angry):
        assert parsed["sentiment"]["model"] == "lora:sentiment.csv"
    assert thanks["sentiment"]["label"] == "positive" and thanks["sentiment"]["score"] > 0
    assert angry["sentiment"]["label"] == "negative" and angry["sentiment"]["score"] < 0


def test_the_projects_own_test_stories_pass(voltmart: Project):
    out = voltmart.root / "results"
    result = rasa_in(voltmart.root, "test", "core", "--e2e", "--stories", "tests",
                     "--model", str(voltmart.model), "--out", str(out))
    assert result.returncode == 0, output_of(result)
    failed = yaml.safe_load((out / "failed_test_stories.yml").read_text()) or {}
    assert not failed.get("stories"), failed
    report = json.loads((out / "story_report.json").read_text())
    # every action of the three stories was predicted as the story says
    assert report["accuracy"] == 1.0 and report["weighted avg"]["support"] >= 10, report
