#!/usr/bin/env python3
"""A harmless demo agent: reads the step's context (JSON) on stdin and prints one line.

What it says comes from DEMO_ACTION (set per agent in agents.yaml); the alert, if the run was
started by one, is read from the event on stdin as data and is never executed.
"""

import json
import os
import sys
import time

context = json.load(sys.stdin)
event = context.get("event") or {}
alert = (event.get("data") or {}).get("alert") or {}
labels = alert.get("labels") or {}
time.sleep(float(os.environ.get("DEMO_SLEEP_S", "0")))
given = context.get("input") if isinstance(context.get("input"), dict) else {}
subject = labels.get("alertname") or given.get("version") or context["workflow_id"]
print(f"{os.environ.get('HOOKLINE_AGENT')}: {os.environ.get('DEMO_ACTION', 'done')} [{subject}]", flush=True)
if os.environ.get("DEMO_FAIL"):
    sys.exit(int(os.environ["DEMO_FAIL"]))
