"""Runners that read files of customer texts and call the engine over them (today: `shopbot analyze`)."""

import csv

# csv's default limit (131,072 characters a field) would make one very long comment, kept whole in rows.csv, an
# unreadable row of the input and then of rows.csv on every rerun: comments have no such limit.
csv.field_size_limit(1 << 30)
