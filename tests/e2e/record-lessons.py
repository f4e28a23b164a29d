#!/usr/bin/env python3
"""Put the answers `MNEMO_LESSONS_RECORD=FILE node --test tests/e2e/lessons.test.mjs`
recorded (what the page showed) into the lesson files' `expected` fields, in place,
keeping the files' layout. Usage: tests/e2e/record-lessons.py FILE"""
import json
import re
import sys
from pathlib import Path

lessons = Path(__file__).resolve().parents[2] / "web" / "lessons"
for key, value in json.load(open(sys.argv[1])).items():
    lesson, qid = key.split("/")
    path = lessons / f"{lesson}.json"
    text = path.read_text()
    # The question's object starts at its id; its expected comes after it.
    m = re.search(r'"id": "%s"(.*?)"expected": ([-0-9.e]+)' % re.escape(qid), text, re.S)
    if not m:
        sys.exit(f"{key}: not found")
    text = text[: m.start(2)] + json.dumps(value) + text[m.end(2):]
    path.write_text(text)
    print(f"{key} = {value}")
