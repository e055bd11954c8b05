"""`bot test e2e` catches what it must: run against deliberately broken copies of the
action server, it fails and names the test case and the step.

One Rasa server (the trained model) serves the whole module; each breakage is a copy of
`actions/` with one line changed, run as the real action server on the port the Rasa server
calls. The unbroken copy passes every case first, so each failure is the breakage's doing.
The knowledge base answers extractively here: the question is whether sources arrive, not
how well SmolLM2 writes.
"""

import secrets
import shutil
import subprocess
import sys

import pytest

from bot.services import (
    MODELS_DIR, ROOT, Endpoints, action_server, free_port, ingest_knowledge, offline_env,
    rasa_server, seed_store,
)

CASES = """
test_cases:
  - test_case: order status of a shipped order
    steps:
      - user: where is ORD-10012? my email is joyce.wu@example.com
      - action: action_order_status
      - bot: /order ORD-10012 is on its way!/
  - test_case: a wrong email is refused
    steps:
      - user: has ORD-10013 shipped?
      - user: joyce.wu@example.com
      - slot_was_set: {email: null}
  - test_case: a hand-off is recorded
    steps:
      - user: I'd like to speak to a real person please
      - action: action_handoff
      - handoff: queued
  - test_case: a knowledge answer cites its sources
    steps:
      - user: do the hiking boots come in wide sizes?
      - action: action_answer_product_question
      - custom: {sources: nonempty}
"""

# (what is broken, file in actions/, the line as it is, the broken line, case, failing step)
BREAKAGES = [
    ("an action sets a wrong slot value", "handoff.py",
     '            return [SlotSet(HANDOFF_STATUS, "queued")]',
     '            return [SlotSet(HANDOFF_STATUS, "held")]',
     "a hand-off is recorded", "step 3:\n    - handoff: queued"),
    ("a form accepts an invalid value", "forms.py",
     '                replies.email_mismatch(order_id).send(dispatcher)\n'
     '                return {"email": None}',
     '                return {"email": email}',
     "a wrong email is refused", "step 3:\n    - slot_was_set:\n        email: null"),
    ("the order-status action sends no response", "orders.py",
     "            status_reply(order).send(dispatcher)",
     "            pass",
     "order status of a shipped order", "step 3:\n    - bot: /order ORD-10012 is on its way!/"),
    ("a knowledge answer has no sources", "knowledge_answer.py",
     "        if answer.sources:",
     "        if False:",
     "a knowledge answer cites its sources", "step 3:\n    - custom:\n        sources: nonempty"),
]


@pytest.fixture(scope="module")
def rasa(tmp_path_factory):
    """The Rasa server; its action endpoint is a port each test starts its own server on."""
    if not any(MODELS_DIR.glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run `bot train` (bot test does) first")
    work = tmp_path_factory.mktemp("e2e-runner")
    ingest_knowledge()
    store = work / "store.db"
    seed_store(store, reset=True)
    action_port, rasa_port = free_port(), free_port()
    endpoints = Endpoints(action_port, work / "tracker.db", work / "turns.jsonl").write(
        work / "endpoints.yml")
    (work / "cases.yml").write_text(CASES)
    token = secrets.token_urlsafe(24)  # the HTTP API's token, handed to the runner by env
    with rasa_server(rasa_port, endpoints, work / "rasa.log", token=token):
        yield {"url": f"http://localhost:{rasa_port}", "action_port": action_port,
               "store": store, "work": work, "token": token}


def run_broken(rasa, tmp_path, file=None, line=None, broken=None, case=None):
    """The runner on an action server made from a copy of actions/ and the demo store data
    it loads (with one line changed)."""
    copy = tmp_path / "project"
    for folder in ("actions", "demo"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    if file:
        source = copy / "actions" / file
        text = source.read_text()
        assert text.count(line) == 1, f"the line to break is no longer in actions/{file}"
        source.write_text(text.replace(line, broken))
    with action_server(rasa["action_port"], rasa["store"], tmp_path / "actions.log",
                       env={"CSBOT_KNOWLEDGE_BACKEND": "extractive"}, project=copy):
        return subprocess.run(
            [sys.executable, "-m", "bot", "test", "e2e", "--url", rasa["url"],
             str(rasa["work"] / "cases.yml"), "--junit", str(tmp_path / "junit.xml")]
            + (["-k", case] if case else []),
            cwd=ROOT, env=offline_env(RASA_AUTH_TOKEN=rasa["token"]), capture_output=True,
            text=True, timeout=600)


def test_the_unbroken_actions_pass_every_case(rasa, tmp_path):
    result = run_broken(rasa, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed" in result.stdout


@pytest.mark.parametrize("what,file,line,broken,case,step", BREAKAGES,
                         ids=[b[0] for b in BREAKAGES])
def test_a_breakage_fails_naming_the_case_and_the_step(rasa, tmp_path, what, file, line,
                                                         broken, case, step):
    result = run_broken(rasa, tmp_path, file, line, broken, case)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"test case {case!r}" in result.stdout
    assert f"at {step}" in result.stdout, result.stdout
    assert "0 passed, 1 failed" in result.stdout
    assert "<failure" in (tmp_path / "junit.xml").read_text()
