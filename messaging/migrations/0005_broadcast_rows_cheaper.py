"""Fewer index entries and constraint checks per stream row: a broadcast writes 20,000.

- stream_item_message_idx leaves out rows without a message (notifications, conversation
  events): only lookups by message use it.
- PendingItem.user loses its foreign-key constraint (PendingItem.item implies it).
- On PostgreSQL the two time indexes, read only by the purges, become BRIN: rows arrive
  in time order, and a BRIN index costs next to nothing per insert. SQLite keeps B-trees.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, index, column) of the indexes that are BRIN on PostgreSQL.
TIME_INDEXES = [
    ("messaging_streamitem", "stream_item_created_idx", "created_at"),
    ("messaging_pendingitem", "pending_expires_idx", "expires_at"),
]


def use_brin(apps, schema_editor):
    _recreate(schema_editor, method="brin")


def use_btree(apps, schema_editor):
    _recreate(schema_editor, method="btree")


def _recreate(schema_editor, *, method: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for table, index, column in TIME_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {quote(index)}")
        schema_editor.execute(
            f"CREATE INDEX {quote(index)} ON {quote(table)} USING {method} ({quote(column)})"
        )


class Migration(migrations.Migration):
    # Renamed from 0004_broadcast_rows_cheaper (two migrations were numbered 0002, so `migrate messaging 0002`
    # was ambiguous). Databases that applied the old name count this one as applied.
    replaces = [("messaging", "0004_broadcast_rows_cheaper")]

    dependencies = [
        ("messaging", "0004_stream_indexes_without_duplicates"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="streamitem",
            name="stream_item_message_idx",
        ),
        migrations.AlterField(
            model_name="pendingitem",
            name="expires_at",
            field=models.DateTimeField(),
        ),
        migrations.AlterField(
            model_name="pendingitem",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="pendingitem",
            index=models.Index(fields=["expires_at"], name="pending_expires_idx"),
        ),
        migrations.AddIndex(
            model_name="streamitem",
            index=models.Index(
                condition=models.Q(("message__isnull", False)),
                fields=["message", "user"],
                name="stream_item_message_idx",
            ),
        ),
        # The model state keeps declaring plain indexes; only their method differs.
        migrations.RunPython(use_brin, use_btree),
    ]
