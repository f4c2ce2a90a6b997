#!/usr/bin/env python3
"""Sums the gtest/JUnit XML reports under one or more bazel-testlogs directories.

Prints the failing test cases, then a last line "N passed, N failed, N skipped".
Exits 1 when anything failed or no test ran. A test target that crashed before writing gtest XML
is counted as one failure (Bazel then writes an XML with an error element).
"""
import os
import sys
import xml.etree.ElementTree as ET


def main(roots):
    passed = failed = skipped = 0
    failures = []
    walk = [w for root in roots for w in os.walk(root)]
    for dirpath, _, files in walk:
        if "test.xml" not in files:
            continue
        path = os.path.join(dirpath, "test.xml")
        target = dirpath
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            failed += 1
            failures.append(f"{target}: unreadable test.xml")
            continue
        cases = list(tree.iter("testcase"))
        if not cases:
            # Bazel's own XML for a target that died without gtest output.
            err = tree.find(".//error") is not None or tree.find(".//failure") is not None
            if err:
                failed += 1
                failures.append(f"{target}: crashed or timed out")
            continue
        for case in cases:
            name = f"{target}: {case.get('classname', '')}.{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(name)
            elif case.find("skipped") is not None or case.get("status") == "notrun" \
                    or case.get("result") == "skipped":
                skipped += 1
            else:
                passed += 1
    for f in failures:
        print("FAILED:", f)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["bazel-testlogs"]))
