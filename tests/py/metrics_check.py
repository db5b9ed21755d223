"""Parses a Switchboard /metrics scrape with the Prometheus project's own parsers.

    python tests/py/metrics_check.py http://127.0.0.1:9090/metrics

Fetches the URL, checks the OpenMetrics content type, and parses the body with
`prometheus_client.openmetrics.parser` (strict: `# EOF` last, one TYPE per family, counters
ending in `_total`, histogram buckets cumulative and ending in `+Inf`, `_count` equal to the
`+Inf` bucket, escaping) and with the classic text parser `prometheus_client.parser`, which
Prometheus falls back to. Prints every sample as one JSON line
`{"family", "type", "name", "labels", "value"}`, then "metrics ok".
"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def main(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers.get("Content-Type")
        text = response.read().decode("utf-8")
    if content_type != CONTENT_TYPE:
        sys.exit(f"content type {content_type!r}, expected {CONTENT_TYPE!r}")
    families = list(parse_openmetrics(text))
    classic = {family.name for family in parse_classic(text)}
    for family in families:
        if family.name not in classic:
            sys.exit(f"the classic parser did not read family {family.name}")
        if family.type == "histogram":
            check_histogram(family)
        for sample in family.samples:
            print(json.dumps({
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": sample.value,
            }))
    print("metrics ok")


def check_histogram(family):
    """The parser checks bucket order and counts; this also checks every series has its +Inf."""
    series = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {})
        if sample.name.endswith("_bucket") and sample.labels["le"] == "+Inf":
            entry["inf"] = sample.value
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
    for key, entry in series.items():
        if entry.get("inf") != entry.get("count"):
            sys.exit(f"{family.name}{dict(key)}: +Inf bucket {entry.get('inf')} != count {entry.get('count')}")


if __name__ == "__main__":
    main(sys.argv[1])
