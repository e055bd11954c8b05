"""The load benchmark's counting (benchmarks/load.py) against the live assistant: what the
README's load table reports must be what the customers and the tracker store saw."""

import asyncio

import pytest

from benchmarks.load import Target, conversation_turns, drive, main, ratios


@pytest.mark.parametrize("transport", ["rest", "socketio", "socketio-polling"])
def test_every_message_is_counted_answered_and_found_stored_once(assistant, transport):
    target = Target(assistant.url(""), assistant.token, rasa_pids=[], action_pids=[])
    turns = conversation_turns(3, knowledge_every=3)  # two domain responses, one knowledge
    phase = asyncio.run(drive(target, "load", "test", transport, 3, turns, timeout=120,
                              time_limit=300))
    summary = phase.summary()
    assert (summary["sent"], summary["errors"], summary["lost"], summary["duplicated"]) == (
        9, 0, 0, 0), summary
    assert {kind: stats["messages"] for kind, stats in summary["by_kind"].items()} == {
        "non_generative": 6, "knowledge": 3}
    assert all(stats["p50_ms"] > 0 for stats in summary["by_kind"].values())


def test_a_phase_past_its_time_limit_sends_nothing_more_and_says_so(assistant):
    target = Target(assistant.url(""), assistant.token, rasa_pids=[], action_pids=[])
    phase = asyncio.run(drive(target, "load", "test", "rest", 2, conversation_turns(5, 0),
                              timeout=120, time_limit=0))
    assert (phase.sent, phase.results, phase.lost) == (0, [], 0)


def test_alternating_rounds_report_each_ratio_and_their_geometric_mean():
    def run(round_, pipeline, msg_per_s, p95_ms, cpu_ms, solo_p50_ms):
        load = {"phase": "load", "transport": "rest", "msg_per_s": msg_per_s,
                "rasa_cpu_ms_per_msg": cpu_ms,
                "by_kind": {"non_generative": {"p95_ms": p95_ms}}}
        solo = {"phase": "solo", "transport": "rest",
                "by_kind": {"non_generative": {"p50_ms": solo_p50_ms}}}
        return {"round": round_, "pipeline": pipeline, "topology": "single",
                "phases": [solo, load]}

    lines = ratios([run(1, "ours", 12.0, 9000, 85, 80), run(1, "stock", 10.0, 9500, 90, 100),
                    run(2, "stock", 12.0, 9100, 88, 90), run(2, "ours", 9.0, 9900, 86, 72)])
    assert lines == [
        "ours / stock, single, rest, round 1 (ours first): throughput 1.20×, "
        "p95 9000 / 9500 ms, Rasa CPU 85 / 90 ms a message, one conversation p50 80 / 100 ms",
        "ours / stock, single, rest, round 2 (stock first): throughput 0.75×, "
        "p95 9900 / 9100 ms, Rasa CPU 86 / 88 ms a message, one conversation p50 72 / 90 ms",
        "ours / stock, single, rest: throughput 0.95×, p95 1.02×, one conversation p50 0.80× "
        "(geometric means of 2 rounds)",
    ]


def test_a_solo_conversation_past_the_rate_limit_is_refused_before_anything_starts(capsys):
    with pytest.raises(SystemExit):
        main(["--turns", "10", "--solo-rounds", "10"])
    assert "--turns × --solo-rounds is 100" in capsys.readouterr().err
