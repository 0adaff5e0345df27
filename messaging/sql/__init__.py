"""SQL that the ORM cannot say cheaply, shared by messaging's services and selectors.

- `inserts`: set-based inserts of messages, stream counters, stream items and pending items.
- `pairs`: `(a, b) IN (...)` filters matching exact pairs of column values.
- `json_rows`: many rows sent as one JSON array parameter, which both of the above use.
- `sqlite`: connection tuning for SQLite that Django's settings cannot express.

Nothing here knows a business rule; callers hold the transactions.
"""
