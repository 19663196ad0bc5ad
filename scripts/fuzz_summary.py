#!/usr/bin/env python3
"""Figures of a schemathesis run from its NDJSON report (scripts/fuzz.sh):
requests sent, checks run, and every failed check (not only the unique
failures schemathesis lists) by check, status and operation.

    python3 scripts/fuzz_summary.py REPORT.ndjson [--top N]
"""

import argparse
import collections
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the .ndjson report of `st run --report ndjson`")
    parser.add_argument("--top", type=int, default=15, help="how many (check, status, operation) rows to show")
    args = parser.parse_args()

    requests = 0
    checks = 0
    statuses = collections.Counter()
    failed = collections.Counter()
    failed_where = collections.Counter()
    with open(args.report, encoding="utf-8") as report:
        for line in report:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if finished is None:
                continue
            recorder = finished["recorder"]
            responses = {}
            for case_id, interaction in recorder.get("interactions", {}).items():
                response = interaction.get("response")
                requests += 1
                if response is not None:
                    responses[case_id] = response["status_code"]
                    statuses[response["status_code"] // 100 * 100] += 1
            for case_id, results in recorder.get("checks", {}).items():
                case = recorder["cases"].get(case_id, {}).get("value", {})
                operation = f"{case.get('method', '?')} {case.get('path', '?')}"
                for result in results:
                    checks += 1
                    if result["status"] == "failure":
                        failed[result["name"]] += 1
                        failed_where[(result["name"], responses.get(case_id), operation)] += 1

    print(f"requests: {requests}")
    print("responses: " + ", ".join(f"{count} × {status // 100}xx" for status, count in sorted(statuses.items())))
    print(f"checks: {checks}, failed: {sum(failed.values())}")
    for name, count in failed.most_common():
        print(f"  {name}: {count}")
    if failed_where:
        print("most failed (check, status, operation):")
        for (name, status, operation), count in failed_where.most_common(args.top):
            print(f"  {count:6}  {name}  {status}  {operation}")


if __name__ == "__main__":
    main()
