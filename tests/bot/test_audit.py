"""`bot audit`: the real lock files against small OSV advisory sources written here."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.audit import LOCK_FILES, Pin, affects, read_pins

ROOT = Path(__file__).resolve().parents[2]


def advisory(id_: str, package: str, events, aliases=(), **extra):
    return {"id": id_, "aliases": list(aliases), "summary": "test advisory", **extra,
            "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}


AIOHTTP = advisory("GHSA-5h86-8mv2-jq9f", "aiohttp", [{"introduced": "0"}, {"fixed": "3.10.2"}],
                   aliases=["CVE-2024-42367"])
NOT_PINNED = advisory("GHSA-0000-0000-0001", "aiohttp",
                      [{"introduced": "4.0.0a0"}, {"fixed": "4.0.1"}])
OTHER_PACKAGE = advisory("GHSA-0000-0000-0002", "left-pad", [{"introduced": "0"}])


def bot_audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "audit", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_an_affected_pin_is_listed_and_the_exit_code_says_so(tmp_path):
    source = tmp_path / "osv.json"
    source.write_text(json.dumps([AIOHTTP, NOT_PINNED, OTHER_PACKAGE]))
    result = bot_audit("--advisories", str(source))
    assert result.returncode == 1, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("rasa.lock")
            or line.startswith("actions.lock")]
    # Rasa's aiohttp pin is affected; the actions env's newer aiohttp is not
    assert rows == [["rasa.lock", "aiohttp", "3.9.5", "GHSA-5h86-8mv2-jq9f", "(CVE-2024-42367)",
                     "3.10.2"]]
    assert "checked against 3 advisories" in result.stdout


def test_nothing_affected_exits_0(tmp_path):
    (tmp_path / "PyPI").mkdir()
    withdrawn = {**AIOHTTP, "id": "GHSA-withdrawn", "withdrawn": "2024-08-01T00:00:00Z"}
    for record in (NOT_PINNED, OTHER_PACKAGE, withdrawn):  # a directory, as osv.dev exports
        (tmp_path / "PyPI" / f"{record['id']}.json").write_text(json.dumps(record))
    result = bot_audit("--advisories", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no pinned package is affected" in result.stdout


def test_osv_dev_zip_export_and_a_query_answer_are_read(tmp_path):
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("GHSA-5h86-8mv2-jq9f.json", json.dumps(AIOHTTP))
    query = tmp_path / "query.json"
    query.write_text(json.dumps({"vulns": [AIOHTTP]}))
    for source in (export, query):
        result = bot_audit("--advisories", str(source))
        assert result.returncode == 1 and "GHSA-5h86-8mv2-jq9f" in result.stdout


@pytest.mark.parametrize("content,problem", [("{not json", "is not valid JSON"),
                                             ('{"hello": 1}', "is not an OSV record")])
def test_an_unreadable_source_is_a_clear_error(tmp_path, content, problem):
    source = tmp_path / "osv.json"
    source.write_text(content)
    result = bot_audit("--advisories", str(source))
    assert result.returncode == 2 and problem in result.stdout and str(source) in result.stdout
    missing = bot_audit("--advisories", str(tmp_path / "nowhere.json"))
    assert missing.returncode == 2 and "does not exist" in missing.stdout


PIN = Pin("rasa.lock", "PyJWT", "2.4.0")


@pytest.mark.parametrize("events,expected", [
    ([{"introduced": "0"}, {"fixed": "2.4.0"}], None),            # fixed in this very version
    ([{"introduced": "2.0"}, {"fixed": "2.4.1"}], "2.4.1"),
    ([{"introduced": "2.4.1"}], None),                              # introduced later
    ([{"introduced": "0"}, {"last_affected": "2.4.0"}], "after 2.4.0"),
    ([{"introduced": "0"}, {"last_affected": "2.3.9"}], None),
    ([{"introduced": "1.0"}, {"fixed": "1.7.1"}, {"introduced": "2.0"}, {"fixed": "2.5"}], "2.5"),
    ([{"introduced": "0"}], "no fix yet"),
])
def test_osv_ranges_are_evaluated_as_the_schema_defines(events, expected):
    # the name is matched after PEP 503 normalisation (PyJWT == pyjwt)
    assert affects(advisory("GHSA-x", "pyjwt", events), PIN) == expected


def test_listed_versions_count_and_other_ecosystems_do_not():
    listed = {"id": "PYSEC-x", "affected": [{"package": {"ecosystem": "PyPI", "name": "PyJWT"},
                                             "versions": ["2.4.0"]}]}
    assert affects(listed, PIN) == "see advisory"
    npm = advisory("GHSA-y", "pyjwt", [{"introduced": "0"}])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    assert affects(npm, PIN) is None


def test_both_lock_files_are_read():
    pins = read_pins(LOCK_FILES)
    assert {p.lock for p in pins} == {"rasa.lock", "actions.lock"}
    assert Pin("rasa.lock", "rasa", "3.6.21") in pins
